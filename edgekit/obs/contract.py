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
"""Cloudflare Logpush jobs write under ``edge-logpush/<stack>/<dataset>/<YYYYMMDD>/``."""
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

SYNCED_ROOTS = (KEY_ROOT, EDGE_ROOT)
"""The key roots `edgekit logs sync` mirrors, each as ``<root>/<stack>/``: the nodes' logs and
the edge's. Nothing else in the bucket (`NODE_KEYS`, ``traces/``) is listed."""

KEY_RE = re.compile(
    r"^(?P<root>otel|edge)/(?P<stack>[A-Za-z0-9_.-]+)/(?P<node>[A-Za-z0-9_.-]+)/"
    r"date=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/(?P<name>[A-Za-z0-9_.-]+\.log\.gz)$"
)
"""An object key written by the Vector ``aws_s3`` sink (``otel/``) or by the edge Worker
(``edge/``, the node folder being the Cloudflare colo) under the contract."""

PATH_RE_SQL = r"(otel|edge)/([^/]+)/([^/]+)/date=[^/]+/hour=[^/]+/[^/]+$"
"""The same layout as a regular expression DuckDB applies to a local file name: groups 1
root, 2 stack, 3 node."""


class LogsError(EdgekitError):
    """Logs could not be synced or queried; the message says why and what to do."""


@attrs.frozen
class ObjectKey:
    root: str
    stack: str
    node: str
    date: str
    hour: str
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
    """The parts of a contract key, or None when the key is not laid out as Vector writes it."""
    m = KEY_RE.match(key)
    if m is None or any(part in {".", ".."} for part in key.split("/")):
        return None
    return ObjectKey(m["root"], m["stack"], m["node"], m["date"], m["hour"], m["name"])
