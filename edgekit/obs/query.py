"""Query synced logs with DuckDB: views ``logs`` and ``logs_all`` over the nodes' and the edge
Worker's files (``<dest>/**/date=*/hour=*/*.log.gz``), and a view per Logpush dataset
(``logpush_http_requests``, ``logpush_workers_trace_events``, :mod:`edgekit.obs.logpush`).

``logs_all`` is one ``read_json`` scan over every object file, with the column types given
(no sampling, no schema inference) and no join or union on top, so DuckDB inlines it: only
the columns a query uses are converted, and its filters apply during the same single scan.
``logs`` is ``logs_all`` with one row per ``record_id`` (a record Vector delivered twice
after a crash is counted once, ADR 0036); rows without a record id are all kept.
``stack`` and ``node`` come from DuckDB's virtual ``filename`` column, which costs nothing
unless a query uses them. ``query``/``export``/``tail`` go one step further: DuckDB's JSON
reader pays for every *declared* column, used or not, so they plan the statement first and
declare only the fields its plan reads (see :func:`connect_for`).

Columns of ``logs``:

=================== ============ ===========================================================
``timestamp``       TIMESTAMPTZ  the event's time (``timestamp`` in the contract)
``stack``, ``node`` VARCHAR      from the file's path ``<source>/<stack>/<node>/...``
                                 (a node, or the edge's Cloudflare colo)
``service``         VARCHAR      ``resources."service.name"``
``severity``        VARCHAR      ``severity_text``
``severity_number`` INTEGER
``body``            VARCHAR      ``message``
``trace_id``        VARCHAR
``span_id``         VARCHAR
``attributes``      JSON         e.g. ``attributes->>'$."http.route"'``
``resources``       JSON
``observed_timestamp`` TIMESTAMPTZ
``record_id``       VARCHAR      ``attributes."log.record.uid"``, the record's unique id
``source``          VARCHAR      ``otel`` (a node's service) or ``edge`` (the Worker)
=================== ============ ===========================================================

Times are shown in UTC.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb

from edgekit.core.files import publish
from edgekit.obs import logpush
from edgekit.obs.contract import NODE_FILES, OBJECT_SUFFIX, PATH_RE_SQL, LogsError
from edgekit.obs.sandbox import QueryRefused, refusal, sandboxed

RAW_COLUMNS: dict[str, str] = {
    "timestamp": "TIMESTAMPTZ",
    "observed_timestamp": "TIMESTAMPTZ",
    "message": "VARCHAR",
    "severity_text": "VARCHAR",
    "severity_number": "INTEGER",
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "attributes": "JSON",
    "resources": "JSON",
}
"""The contract fields read from each NDJSON line, with their types."""

VIEW_COLUMNS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # (name, type, expression over the raw scan, the raw fields it reads)
    ("timestamp", "TIMESTAMPTZ", "timestamp", ("timestamp",)),
    ("stack", "VARCHAR", f"regexp_extract(filename, '{PATH_RE_SQL}', 2)", ()),
    ("node", "VARCHAR", f"regexp_extract(filename, '{PATH_RE_SQL}', 3)", ()),
    ("service", "VARCHAR", "json_extract_string(resources, '$.\"service.name\"')",
     ("resources",)),
    ("severity", "VARCHAR", "severity_text", ("severity_text",)),
    ("severity_number", "INTEGER", "severity_number", ("severity_number",)),
    ("body", "VARCHAR", "message", ("message",)),
    ("trace_id", "VARCHAR", "trace_id", ("trace_id",)),
    ("span_id", "VARCHAR", "span_id", ("span_id",)),
    ("attributes", "JSON", "attributes", ("attributes",)),
    ("resources", "JSON", "resources", ("resources",)),
    ("observed_timestamp", "TIMESTAMPTZ", "observed_timestamp", ("observed_timestamp",)),
    ("record_id", "VARCHAR", "json_extract_string(attributes, '$.\"log.record.uid\"')",
     ("attributes",)),
    ("source", "VARCHAR", f"regexp_extract(filename, '{PATH_RE_SQL}', 1)", ()),
)
"""``filename`` is DuckDB's virtual column: it costs nothing unless a query uses it."""

UNIQUE = "QUALIFY record_id IS NULL OR row_number() OVER (PARTITION BY record_id) = 1"
"""Vector delivers at least once: after a crash a record can be stored twice, with the same
``log.record.uid`` (ADR 0036). ``logs`` keeps one row per record id; ``logs_all`` is every
stored line."""

Format = Literal["csv", "parquet"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def log_files_glob(dest: Path) -> str:
    """The nodes' and the Worker's files below `dest` (not Logpush's: other fields)."""
    return (dest.resolve() / "**" / NODE_FILES).as_posix()


def raw_scan_sql(
    dest: Path, fields: Collection[str] | None = None, *, files: str | None = None
) -> str:
    """The ``read_json`` call the view is built on: the contract's fields (or only ``fields``)
    of every ``*.log.gz`` under ``dest`` (or of ``files``, a path or glob)."""
    wanted = [name for name in RAW_COLUMNS if fields is None or name in fields]
    if not wanted:  # e.g. count(*): rows still have to be read; take the cheapest field
        wanted = ["severity_number"]
    columns = ", ".join(f"{_quote(name)}: {_quote(RAW_COLUMNS[name])}" for name in wanted)
    return (
        f"read_json({_quote(files or log_files_glob(dest))}, format='newline_delimited', "
        f"compression='gzip', columns={{{columns}}})"
    )


def first_log_file(dest: Path) -> Path | None:
    if not dest.is_dir():
        return None
    for root, _dirs, files in os.walk(dest):
        folder = Path(root)
        if not (folder.name.startswith("hour=") and folder.parent.name.startswith("date=")):
            continue
        for name in files:
            if name.endswith(OBJECT_SUFFIX) and not name.startswith("."):
                return folder / name
    return None


def has_log_files(dest: Path) -> bool:
    return first_log_file(dest) is not None


def view_sql(
    dest: Path, fields: Collection[str] | None = None, *, files: str | None = None
) -> str:
    """``CREATE VIEW logs_all`` (every stored line) and ``logs`` (one row per record id, see
    `UNIQUE`); over no files at all they are empty views with the same columns.

    With ``fields``, the scan declares only those raw fields and the view columns needing
    others are typed NULLs: same schema, less parsing. Only for a query whose plan reads
    no more than ``fields`` (see :func:`planned_fields`).
    """
    unique = f"CREATE OR REPLACE VIEW logs AS SELECT * FROM logs_all {UNIQUE}"
    if files is None and not has_log_files(dest):
        select = ", ".join(f"NULL::{kind} AS {name}" for name, kind, _e, _f in VIEW_COLUMNS)
        return f"CREATE OR REPLACE VIEW logs_all AS SELECT {select} WHERE false; {unique}"
    select = ", ".join(
        f"{expr} AS {name}" if fields is None or set(needs) <= set(fields)
        else f"NULL::{kind} AS {name}"
        for name, kind, expr, needs in VIEW_COLUMNS
    )
    scan = raw_scan_sql(dest, fields, files=files)
    return f"CREATE OR REPLACE VIEW logs_all AS SELECT {select} FROM {scan}; {unique}"


BAD_FILE_HINT = (
    "a file in the mirror breaks the log contract; `edgekit logs sync --stack <stack> "
    "--verify` checks every line of every file and removes the bad ones (a default sync "
    "checks each object's bytes and first line only, ADR 0022)"
)


def failed(what: str, exc: duckdb.Error, dest: Path | None = None) -> LogsError:
    """A DuckDB failure as a LogsError: the sandbox's refusal (`QueryRefused`) when it is
    one; one that names a malformed file says how to mend it (DuckDB's own advice,
    ``ignore_errors``, would silently drop rows)."""
    refused = refusal(exc, [dest] if dest is not None else [])
    if refused is not None:
        return refused
    text = str(exc)
    if ' in file "' in text and ("Malformed JSON" in text or "transform error" in text
                                 or "gzip" in text.lower()):
        text = text.split("\nTry setting 'auto_detect'")[0].rstrip()
        return LogsError(f"{what}: {text}\n{BAD_FILE_HINT}")
    return LogsError(f"{what}: {text}")


def connect(dest: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection, able to read only ``dest`` (`sandboxed`), with the
    view ``logs`` over the files in it."""
    con = sandboxed([dest])
    try:
        con.execute(view_sql(dest))
        con.execute(logpush.views_sql(dest))
    except duckdb.Error as exc:
        con.close()
        raise failed(f"cannot open the logs in {dest}", exc, dest) from exc
    return con


def planned_fields(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()
) -> frozenset[str] | None:
    """The raw fields DuckDB's plan for ``sql`` reads from the JSON scans, or None when that
    is not certain (not one plannable statement, a scan without a projection list)."""
    if ";" in sql:
        return None
    try:
        row = con.execute(f"EXPLAIN (FORMAT json) {sql}", list(params)).fetchone()
        plan = json.loads(row[1]) if row is not None and len(row) > 1 else None
    except (duckdb.Error, TypeError, ValueError):
        return None
    if plan is None:
        return None
    fields: set[str] = set()
    todo: list[Any] = [plan]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        todo.extend(node.get("children") or [])
        info = node.get("extra_info")
        info = info if isinstance(info, dict) else {}
        if node.get("name") != "READ_JSON" and info.get("Function") != "READ_JSON":
            continue
        projections = info.get("Projections")
        if projections is None:
            return None
        names = projections.split("\n") if isinstance(projections, str) else projections
        fields.update(str(n).strip() for n in names)
    return frozenset(fields & RAW_COLUMNS.keys())


def connect_for(
    dest: Path, sql: str, params: Sequence[object] = (), *, writes: Sequence[Path] = ()
) -> duckdb.DuckDBPyConnection:
    """A connection whose view ``logs`` reads only the fields ``sql`` uses.

    DuckDB's JSON reader does work for every declared column, used or not (about 10% for the
    whole contract against a group-by on three fields). So the statement is planned first over
    one file, and the view over all files declares just the fields that plan reads.
    """
    first = first_log_file(dest)
    con = sandboxed([dest], writes)
    try:
        con.execute(logpush.views_sql(dest))
        if first is None:
            con.execute(view_sql(dest))
            return con
        con.execute(view_sql(dest, files=first.as_posix()))
        fields = planned_fields(con, sql, params)
        con.execute(view_sql(dest, fields))
    except duckdb.Error as exc:
        con.close()
        raise failed(f"cannot open the logs in {dest}", exc, dest) from exc
    return con


Rows = list[tuple[Any, ...]]


def _strip(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


ALLOWED_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})


def check_read_only(sql: str) -> None:
    """Refuse anything but one read-only statement (SELECT, WITH, FROM, DESCRIBE, EXPLAIN):
    a query over the mirror never writes files (COPY ... TO), attaches databases, installs
    or loads extensions, or creates objects."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise failed("query failed", exc) from exc
    if len(statements) != 1:
        raise QueryRefused(f"expected one SQL statement, got {len(statements)}; queries over the "
                        "logs are read-only SELECTs")
    kind = statements[0].type.name
    if kind not in ALLOWED_STATEMENTS:
        raise QueryRefused(f"refused a {kind} statement: queries over the logs are read-only "
                        "(SELECT ... FROM logs); use --csv/--parquet to write a result")


def query(dest: Path, sql: str, params: Sequence[object] = ()) -> tuple[list[str], Rows]:
    """Run ``sql`` (which may use the view ``logs``); the column names and the rows."""
    sql = _strip(sql)
    check_read_only(sql)
    con = connect_for(dest, sql, params)
    try:
        con.execute(sql, list(params))
        if con.description is None:
            return [], []
        columns = [str(d[0]) for d in con.description]
        return columns, con.fetchall()
    except duckdb.Error as exc:
        raise failed("query failed", exc, dest) from exc
    finally:
        con.close()


def export(dest: Path, sql: str, out: Path, fmt: Format) -> None:
    """Write the result of ``sql`` to ``out`` as CSV (with a header) or Parquet.

    Written to a temp file beside ``out`` and renamed, so ``out`` is never half written.
    """
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet"
    out = out.resolve()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    sql = _strip(sql)
    check_read_only(sql)
    con = connect_for(dest, sql, writes=[tmp])
    try:
        con.execute(f"COPY ({sql}) TO {_quote(tmp.as_posix())} ({options})")
        publish(tmp, out)
    except duckdb.Error as exc:
        raise failed("query failed", exc, dest) from exc
    finally:
        tmp.unlink(missing_ok=True)
        con.close()


TAIL_COLUMNS = ("timestamp", "stack", "node", "service", "severity", "body", "trace_id")


def tail(
    dest: Path,
    service: str | None,
    since: timedelta,
    limit: int = 100,
    *,
    until: datetime | None = None,
) -> tuple[list[str], Rows]:
    """The last ``limit`` events of ``service`` (all services when None) in the window of
    length ``since`` that ends at ``until``, oldest first. Without ``until`` the window ends
    now and has no upper bound (a node's clock may run a little ahead of this one)."""
    cutoff = (until or datetime.now(UTC)) - since
    where = "timestamp >= ?"
    params: list[object] = [cutoff]
    if until is not None:
        where += " AND timestamp <= ?"
        params.append(until)
    if service is not None:
        where += " AND service = ?"
        params.append(service)
    cols = ", ".join(TAIL_COLUMNS)
    sql = (
        f"SELECT {cols} FROM (SELECT {cols} FROM logs WHERE {where} "
        f"ORDER BY timestamp DESC, stack DESC, node DESC LIMIT {int(limit)}) "
        "ORDER BY timestamp, stack, node"
    )
    return query(dest, sql, params)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time (``2026-11-29T09:00Z``, ``2026-11-29 09:00+09:00``); without an
    offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LogsError(f"not a time: {text!r}; expected ISO 8601, e.g. 2026-11-29T09:00Z "
                        "(UTC when no offset is given)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``, ``"1w"`` -> timedelta."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_RE.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise LogsError(f"invalid duration {text!r}: expected e.g. 30s, 15m, 1h, 1h30m, 2d, 1w")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(sep=" ", timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _numeric(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned table: a header, a rule, one line per row, numbers right-aligned."""
    if not columns:
        return ""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for line in cells:
        for i, text in enumerate(line):
            widths[i] = max(widths[i], len(text))
    right = [bool(rows) and all(_numeric(r[i]) or r[i] is None for r in rows)
             for i in range(len(columns))]

    def render(texts: Sequence[str]) -> str:
        out = [t.rjust(w) if r else t.ljust(w)
               for t, w, r in zip(texts, widths, right, strict=True)]
        return "  ".join(out).rstrip()

    lines = [render(columns), "  ".join("-" * w for w in widths)]
    lines += [render(line) for line in cells]
    noun = "row" if len(rows) == 1 else "rows"
    lines.append(f"({len(rows)} {noun})")
    return "\n".join(lines)
