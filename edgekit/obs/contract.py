"""Names and layout shared by the sync and the query side (see :mod:`edgekit.obs`)."""

from __future__ import annotations

import re

import attrs

from edgekit.core.errors import EdgekitError

KEY_ROOT = "otel"
EDGE_ROOT = "edge"
"""The Worker's own records (ADR 0035): ``edge/<stack>/<colo>/date=…/hour=…/…log.gz``, the
same layout and line shape as the nodes' ``otel/`` objects."""
LOGPUSH_ROOT = "edge-logpush"
"""Cloudflare Logpush jobs (ADR 0035) write under ``edge-logpush/<stack>/<dataset>/<YYYYMMDD>/``
(the job's ``{DATE}``), one gzip NDJSON object per batch, named by Logpush
(``<start>_<end>_<hash>.log.gz``), each line one record with Cloudflare's own field names."""
LOGPUSH_DATASETS = ("http_requests", "workers_trace_events")
"""The Logpush datasets edgekit's jobs write and `edgekit logs sync` mirrors."""
LOG_PREFIXES = ("otel/", "traces/", f"{EDGE_ROOT}/", f"{LOGPUSH_ROOT}/")
"""Every key prefix that holds logs: locked for the retention, then deleted (ADR 0037).
Other keys of a logs bucket (`NODE_KEYS`) are rewritten by the nodes: never locked, never
expired, never synced."""
NODE_KEYS = ("status/", "mesh/", "pg-tls/")
"""Keys of a logs bucket the nodes rewrite: the status object (ADR 0033), the WireGuard
public keys (ADR 0010) and the Postgres primary's authority certificate (ADR 0025)."""
OBJECT_SUFFIX = ".log.gz"
STATE_FILE = ".edgekit-sync.json"
"""Written in the sync destination; names starting with a dot are never read as logs."""

SYNCED_ROOTS = (KEY_ROOT, EDGE_ROOT, LOGPUSH_ROOT)
"""The key roots `edgekit logs sync` mirrors, each as ``<root>/<stack>/``: the nodes' logs, the
edge Worker's, and Cloudflare's Logpush files (only the `LOGPUSH_DATASETS` folders). Nothing
else in the bucket (`NODE_KEYS`, ``traces/``) is listed."""

KEY_RE = re.compile(
    r"^(?P<root>otel|edge)/(?P<stack>[A-Za-z0-9_.-]+)/(?P<node>[A-Za-z0-9_.-]+)/"
    r"date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/(?P<name>[A-Za-z0-9_.-]+\.log\.gz)$"
)
"""An object key written by the Vector ``aws_s3`` sink (``otel/``) or by the edge Worker
(``edge/``, the node folder being the Cloudflare colo) under the contract."""

LOGPUSH_KEY_RE = re.compile(
    rf"^{LOGPUSH_ROOT}/(?P<stack>[A-Za-z0-9_.-]+)/(?P<dataset>{'|'.join(LOGPUSH_DATASETS)})/"
    r"(?P<day>\d{8})/(?P<name>[A-Za-z0-9_.-]+\.log\.gz)$"
)
"""An object key a Logpush job of edgekit writes (``{DATE}`` is ``YYYYMMDD``, Cloudflare's
"API configuration" page)."""

PATH_RE_SQL = r"(otel|edge)/([^/]+)/([^/]+)/date=[^/]+/hour=[^/]+/[^/]+$"
"""The same layout as a regular expression DuckDB applies to a local file name: groups 1
root, 2 stack, 3 node."""
LOGPUSH_PATH_RE_SQL = rf"{LOGPUSH_ROOT}/([^/]+)/([^/]+)/[0-9]{{8}}/[^/]+$"
"""A Logpush file's local name: groups 1 stack, 2 dataset."""
NODE_FILES = "date=*/hour=*/*.log.gz"
"""Below any folder: the files laid out as the nodes' and the Worker's objects."""


class LogsError(EdgekitError):
    """Logs could not be synced or queried; the message says why and what to do."""


@attrs.frozen
class ObjectKey:
    root: str
    stack: str
    node: str
    """The node, the edge's colo, or (``edge-logpush``) the dataset."""
    date: str
    hour: str
    """``""`` for a Logpush file (its folders are days)."""
    name: str


def stack_prefix(stack: str, root: str = KEY_ROOT) -> str:
    """The key prefix holding every object of one stack under `root`, e.g. ``otel/prod/``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", stack) or stack in {".", ".."}:
        raise LogsError(f"invalid stack name {stack!r}: expected letters, digits, '_', '.', '-'")
    return f"{root}/{stack}/"


def stack_prefixes(stack: str) -> tuple[str, ...]:
    """Every prefix `edgekit logs sync` mirrors for one stack (`SYNCED_ROOTS`)."""
    return tuple(stack_prefix(stack, root) for root in SYNCED_ROOTS)


def parse_key(key: str) -> ObjectKey | None:
    """The parts of a contract key, or None when the key is laid out neither as Vector (and
    the edge Worker) nor as edgekit's Logpush jobs write it."""
    if any(part in {".", ".."} for part in key.split("/")):
        return None
    if (m := KEY_RE.match(key)) is not None:
        return ObjectKey(m["root"], m["stack"], m["node"], m["date"], m["hour"], m["name"])
    if (p := LOGPUSH_KEY_RE.match(key)) is not None:
        day = p["day"]
        return ObjectKey(LOGPUSH_ROOT, p["stack"], p["dataset"],
                         f"{day[:4]}-{day[4:6]}-{day[6:]}", "", p["name"])
    return None


def logpush_dataset(key: str) -> str | None:
    """The Logpush dataset of a key under ``edge-logpush/<stack>/<dataset>/``, else None."""
    parts = key.split("/", 3)
    if len(parts) >= 3 and parts[0] == LOGPUSH_ROOT and parts[2] in LOGPUSH_DATASETS:
        return parts[2]
    return None


def folder_synced(folder: str) -> bool:
    """Whether a folder ``<root>/<stack>/<name>/`` is one `edgekit logs sync` mirrors: every
    node (or colo) folder, and of the Logpush folders only the `LOGPUSH_DATASETS`."""
    return not folder.startswith(f"{LOGPUSH_ROOT}/") or logpush_dataset(folder) is not None
