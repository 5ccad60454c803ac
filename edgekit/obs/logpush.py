"""Cloudflare's Logpush files in the logs bucket (ADR 0035): the fields edgekit's jobs ask for,
how `edgekit logs sync` checks a line of them, and the DuckDB views `edgekit logs` reads them
through.

Each Logpush object is gzip NDJSON, one record per line, with Cloudflare's own field names and
only the fields the job lists (``output_options.field_names``). Field names and types are
Cloudflare's (developers.cloudflare.com/logs/logpush/logpush-job/datasets/zone/http_requests/
and .../account/workers_trace_events/, read 2026-12-06); edgekit's jobs write timestamps as
``unixnano`` (integers, nanoseconds: Cloudflare's ``rfc3339`` keeps whole seconds, too coarse to
order an edge line against a node's). Workers Trace Events carry milliseconds whatever the
format (``EventTimestampMs``).

How a Logpush line joins the nodes' lines (``edgekit logs trace``):

- ``workers_trace_events``: ``Logs[].Message[0]`` is the edge record the Worker prints with
  ``console.log`` in ``logpush`` mode (the nodes' line shape: ``trace_id``, ``span_id``,
  ``attributes."request.id"``, ``attributes."cf.ray"``); ``Event.RayID`` is the client's request.
- ``http_requests``: by ray id. The client's request is the line whose ``RayID`` is the Worker's
  ``cf.ray`` (without its ``-<colo>`` suffix); the Worker's request to the origin is a line of
  its own (``WorkerSubrequest`` true) whose ``ParentRayID`` is the client's. Its request headers
  (``traceparent``) are not logged: that needs a zone ruleset of custom fields
  (``http_log_custom_fields``), one per zone, and environments share a zone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edgekit.obs.contract import (
    LOGPUSH_DATASETS,
    LOGPUSH_PATH_RE_SQL,
    LOGPUSH_ROOT,
    OBJECT_SUFFIX,
)

FieldType = type | tuple[type, ...]

FIELDS: dict[str, dict[str, FieldType]] = {
    "http_requests": {
        "RayID": str, "ParentRayID": str, "EdgeStartTimestamp": int, "EdgeEndTimestamp": int,
        "ClientRequestHost": str, "ClientRequestMethod": str, "ClientRequestURI": str,
        "EdgeResponseStatus": int, "OriginResponseStatus": int, "CacheCacheStatus": str,
        "EdgeColoCode": str, "WorkerSubrequest": bool, "WorkerStatus": str,
    },
    "workers_trace_events": {
        "EventTimestampMs": int, "Event": dict, "EventType": str, "Outcome": str,
        "ScriptName": str, "Logs": list, "Exceptions": list, "CPUTimeMs": int, "WallTimeMs": int,
    },
}
"""Per dataset, the fields edgekit's job asks for (``output_options.field_names``, in this
order: `edgekit.constructs.edge_logs` reads them here) and their JSON types."""
REQUIRED = {"http_requests": ("RayID", "EdgeStartTimestamp"),
            "workers_trace_events": ("EventTimestampMs", "Event")}
"""Fields every line must have: what the views order and join on."""
TIMESTAMP_FORMAT = "unixnano"
"""The jobs' ``output_options.timestamp_format``: integers, nanoseconds since the epoch."""

assert set(FIELDS) == set(LOGPUSH_DATASETS)


def _type_name(kind: FieldType) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", dict: "an object",
             list: "an array"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names[k] for k in kinds)


def check_record(dataset: str, record: Any) -> str | None:
    """Why `record` (one parsed line of a `dataset` file) is not what edgekit's job writes,
    or None. Fields the job does not ask for are ignored; absent optional ones are fine."""
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    for name in REQUIRED[dataset]:
        if record.get(name) is None:
            return f"{name} is missing (every {dataset} line of edgekit's job has it)"
    for name, kind in FIELDS[dataset].items():
        value = record.get(name)
        if value is None:
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            hint = (f" (edgekit's jobs write timestamps as {TIMESTAMP_FORMAT})"
                    if name.endswith("Timestamp") else "")
            return f"{name} is not {_type_name(kind)}{hint}"
    return None


# -- DuckDB -----------------------------------------------------------------------------------

LOGPUSH_GLOB = "edge-logpush/*/{dataset}/*/*.log.gz"
"""Below the mirror (or any folder above stacks' mirrors): one dataset's files."""

_SQL_TYPES = {str: "VARCHAR", int: "BIGINT", bool: "BOOLEAN", dict: "JSON", list: "JSON"}


def columns_sql(dataset: str) -> str:
    """The ``columns={…}`` argument of ``read_json`` for one dataset's files."""
    def sql_type(kind: FieldType) -> str:
        return _SQL_TYPES[kind if isinstance(kind, type) else kind[0]]
    return ", ".join(f"'{name}': '{sql_type(kind)}'" for name, kind in FIELDS[dataset].items())


def _stack() -> str:
    return f"regexp_extract(filename, '{LOGPUSH_PATH_RE_SQL}', 1)"


def _edge_record() -> str:
    """The edge record among the invocation's console lines (``Logs[].Message[0]``)."""
    messages = "json_extract_string(Logs, '$[*].Message[0]')"
    return (f"list_filter({messages}, lambda m: json_valid(m) AND "
            "json_extract_string(m, '$.resources.\"service.name\"') = 'edge-worker')[1]")


VIEW_SELECTS: dict[str, str] = {
    "http_requests": (
        "SELECT make_timestamp(EdgeStartTimestamp // 1000)::TIMESTAMPTZ AS timestamp, "
        "make_timestamp(EdgeEndTimestamp // 1000)::TIMESTAMPTZ AS end_timestamp, "
        f"{_stack()} AS stack, RayID AS ray_id, nullif(ParentRayID, '00') AS parent_ray_id, "
        "coalesce(WorkerSubrequest, false) AS worker_subrequest, "
        "ClientRequestHost AS host, ClientRequestMethod AS method, ClientRequestURI AS uri, "
        "EdgeResponseStatus AS status, OriginResponseStatus AS origin_status, "
        "CacheCacheStatus AS cache, EdgeColoCode AS colo, WorkerStatus AS worker_status "
        "FROM {scan}"),
    "workers_trace_events": (
        "SELECT make_timestamp(EventTimestampMs * 1000)::TIMESTAMPTZ AS timestamp, "
        f"{_stack()} AS stack, ScriptName AS script, Outcome AS outcome, "
        "EventType AS event_type, json_extract_string(Event, '$.RayID') AS ray_id, "
        "json_extract_string(Event, '$.Request.Method') AS method, "
        "json_extract_string(Event, '$.Request.URL') AS url, "
        "CAST(json_extract(Event, '$.Response.Status') AS INTEGER) AS status, "
        "json_extract_string(record, '$.trace_id') AS trace_id, "
        "json_extract_string(record, '$.span_id') AS span_id, "
        "json_extract_string(record, '$.attributes.\"request.id\"') AS request_id, "
        "json_extract_string(record, '$.attributes.\"edge.colo\"') AS colo, "
        "json_extract_string(record, '$.message') AS message, "
        "json_extract_string(record, '$.severity_text') AS severity, "
        "CAST(record AS JSON) AS record, Logs AS logs, Exceptions AS exceptions, "
        "CPUTimeMs AS cpu_time_ms, WallTimeMs AS wall_time_ms "
        f"FROM (SELECT *, {_edge_record()} AS record FROM {{scan}})"),
}
"""Per dataset, the view over its files (``{scan}``: the ``read_json`` of them)."""

VIEW_NULLS: dict[str, str] = {
    "http_requests": (
        "NULL::TIMESTAMPTZ AS timestamp, NULL::TIMESTAMPTZ AS end_timestamp, "
        "NULL::VARCHAR AS stack, NULL::VARCHAR AS ray_id, NULL::VARCHAR AS parent_ray_id, "
        "NULL::BOOLEAN AS worker_subrequest, NULL::VARCHAR AS host, NULL::VARCHAR AS method, "
        "NULL::VARCHAR AS uri, NULL::BIGINT AS status, NULL::BIGINT AS origin_status, "
        "NULL::VARCHAR AS cache, NULL::VARCHAR AS colo, NULL::VARCHAR AS worker_status"),
    "workers_trace_events": (
        "NULL::TIMESTAMPTZ AS timestamp, NULL::VARCHAR AS stack, NULL::VARCHAR AS script, "
        "NULL::VARCHAR AS outcome, NULL::VARCHAR AS event_type, NULL::VARCHAR AS ray_id, "
        "NULL::VARCHAR AS method, NULL::VARCHAR AS url, NULL::INTEGER AS status, "
        "NULL::VARCHAR AS trace_id, NULL::VARCHAR AS span_id, NULL::VARCHAR AS request_id, "
        "NULL::VARCHAR AS colo, NULL::VARCHAR AS message, NULL::VARCHAR AS severity, "
        "NULL::JSON AS record, NULL::JSON AS logs, NULL::JSON AS exceptions, "
        "NULL::BIGINT AS cpu_time_ms, NULL::BIGINT AS wall_time_ms"),
}
"""The same columns, typed, for a mirror without files of that dataset."""


def view_name(dataset: str) -> str:
    return f"logpush_{dataset}"


def has_files(dest: Path, dataset: str) -> bool:
    """Whether the mirror (or a folder of mirrors) holds a file of `dataset`."""
    if not dest.is_dir():
        return False
    for root, dirs, files in os.walk(dest):
        dirs[:] = [d for d in dirs if not d.startswith("date=")]  # the nodes' hour folders
        folder = Path(root)
        if folder.parent.name == dataset and folder.parent.parent.parent.name == LOGPUSH_ROOT \
                and any(f.endswith(OBJECT_SUFFIX) and not f.startswith(".") for f in files):
            return True
    return False


def views_sql(dest: Path) -> str:
    """``CREATE VIEW logpush_<dataset>`` for every dataset: over its files in `dest`, or empty
    with the same columns when there are none."""
    statements = []
    for dataset in LOGPUSH_DATASETS:
        if has_files(dest, dataset):
            files = (dest.resolve() / "**" / LOGPUSH_GLOB.format(dataset=dataset)).as_posix()
            quoted = "'" + files.replace("'", "''") + "'"
            scan = (f"read_json({quoted}, format='newline_delimited', compression='gzip', "
                    f"filename=true, columns={{{columns_sql(dataset)}}})")
            select = VIEW_SELECTS[dataset].replace("{scan}", scan)
        else:
            select = f"SELECT {VIEW_NULLS[dataset]} WHERE false"
        statements.append(f"CREATE OR REPLACE VIEW {view_name(dataset)} AS {select}")
    return "; ".join(statements)
