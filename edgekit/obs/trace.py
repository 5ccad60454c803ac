"""`edgekit logs trace ID`: every line of one request, from the edge to the database, in time
order (ADR 0035).

The edge Worker gives each request a request id (``x-request-id``) and starts its W3C trace;
its edge record carries both (``attributes."request.id"``, ``trace_id``). The origin gets
both headers, and the services continue the trace, so their lines carry the same
``trace_id`` (and the request id as ``attributes."request.id"``). `ID` may be either: a trace
id (32 hex digits) or a request id; the lines are those of the traces it names, plus any
line with that request id.
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


def trace_sql() -> str:
    cols = ", ".join(COLUMNS)
    request = "json_extract_string(attributes, '$.\"request.id\"')"
    return (
        f"WITH wanted AS (SELECT DISTINCT trace_id FROM logs WHERE trace_id = ? OR "
        f"{request} = ?) "
        f"SELECT {cols} FROM logs WHERE trace_id IN (SELECT trace_id FROM wanted "
        f"WHERE trace_id IS NOT NULL AND trace_id <> '') OR {request} = ? "
        "ORDER BY timestamp, source DESC, service, span_id"
    )


def trace(dest: Path, ident: str) -> tuple[list[str], Rows]:
    """The lines of request or trace `ident` in `dest`, oldest first (the edge's record before
    the service's when they share a millisecond: the edge saw the request first)."""
    ident = ident.strip()
    if TRACE_ID.match(ident.lower()):
        ident = ident.lower()
    elif not REQUEST_ID.match(ident):
        raise QueryRefused(f"not a trace id or request id: {ident!r}; expected 32 hex digits "
                           "(a trace id) or up to 128 of A-Z a-z 0-9 . _ - (an x-request-id)")
    return query(dest, trace_sql(), [ident, ident, ident])
