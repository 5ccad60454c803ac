"""`edgekit logs trace ID`: every line of one request, from the edge to the database, in time
order (ADR 0035).

The edge Worker gives each request a request id (``x-request-id``) and starts its W3C trace;
its edge record carries both (``attributes."request.id"``, ``trace_id``). The origin gets
both headers, and the services continue the trace, so their lines carry the same
``trace_id`` (and the request id as ``attributes."request.id"``). `ID` may be either: a trace
id (32 hex digits) or a request id; the lines are those of the traces it names, plus any
line with that request id.

Cloudflare's Logpush lines join in too (:mod:`edgekit.obs.logpush`): a Workers Trace Event by
the edge record it carries; an ``http_requests`` line by its ray id: the client's request is
the ray of the Worker's record (``cf.ray``, ``Event.RayID``), and the Worker's request to the
origin names it as ``ParentRayID``.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.obs.query import Rows, query
from edgekit.obs.sandbox import QueryRefused

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
"""What the Worker keeps of a request id (services/edge-worker `requestId`)."""
COLUMNS = ("timestamp", "source", "node", "service", "severity", "body", "trace_id", "span_id")

_SEVERITY = ("CASE WHEN status >= 500 THEN 'ERROR' WHEN status >= 400 THEN 'WARN' "
             "ELSE 'INFO' END")
LINES = (
    # (source rank: who saw the request first, when two lines share a timestamp), the lines
    "SELECT 2 AS rank, timestamp, source, node, service, severity, body, trace_id, span_id, "
    "json_extract_string(attributes, '$.\"request.id\"') AS request_id, "
    "nullif(split_part(json_extract_string(attributes, '$.\"cf.ray\"'), '-', 1), '') AS ray, "
    "NULL::VARCHAR AS parent_ray FROM logs "
    "UNION ALL BY NAME "
    "SELECT 1 AS rank, timestamp, 'workers_trace_events' AS source, colo AS node, "
    "script AS service, coalesce(severity, CASE WHEN outcome = 'ok' THEN 'INFO' ELSE 'ERROR' "
    "END) AS severity, coalesce(message, concat_ws(' ', method, url, status)) AS body, "
    "trace_id, span_id, request_id, ray_id AS ray, NULL::VARCHAR AS parent_ray "
    "FROM logpush_workers_trace_events "
    "UNION ALL BY NAME "
    "SELECT CASE WHEN worker_subrequest THEN 2 ELSE 0 END AS rank, timestamp, "
    "'http_requests' AS source, colo AS node, 'cloudflare' AS service, "
    f"{_SEVERITY} AS severity, concat(method, ' ', host, uri, ' ', status, "
    "CASE WHEN worker_subrequest THEN ' (Worker subrequest)' ELSE '' END) AS body, "
    "NULL::VARCHAR AS trace_id, NULL::VARCHAR AS span_id, NULL::VARCHAR AS request_id, "
    "ray_id AS ray, parent_ray_id AS parent_ray "
    "FROM logpush_http_requests"
)
"""Every line that can belong to a request, with the ids it can be found by."""


def trace_sql() -> str:
    """Parameters: the id four times (trace or request id; request id; request id; request
    id)."""
    cols = ", ".join(COLUMNS)
    return (
        f"WITH lines AS ({LINES}), "
        "ids AS (SELECT DISTINCT trace_id FROM lines WHERE (trace_id = ? OR request_id = ?) "
        "AND trace_id IS NOT NULL AND trace_id <> ''), "
        "rays AS (SELECT DISTINCT ray FROM lines WHERE ray IS NOT NULL AND "
        "(trace_id IN (SELECT trace_id FROM ids) OR request_id = ?)) "
        f"SELECT {cols} FROM lines WHERE trace_id IN (SELECT trace_id FROM ids) "
        "OR request_id = ? OR ray IN (SELECT ray FROM rays) "
        "OR parent_ray IN (SELECT ray FROM rays) "
        "ORDER BY timestamp, rank, service, span_id"
    )


def trace(dest: Path, ident: str) -> tuple[list[str], Rows]:
    """The lines of request or trace `ident` in `dest`, oldest first (when two share a
    timestamp: Cloudflare's record of the client's request, the Worker's, then the origin's)."""
    ident = ident.strip()
    if TRACE_ID.match(ident.lower()):
        ident = ident.lower()
    elif not REQUEST_ID.match(ident):
        raise QueryRefused(f"not a trace id or request id: {ident!r}; expected 32 hex digits "
                           "(a trace id) or up to 128 of A-Z a-z 0-9 . _ - (an x-request-id)")
    return query(dest, trace_sql(), [ident, ident, ident, ident])
