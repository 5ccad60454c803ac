"""DuckDB that can read the logs mirror and nothing else (ADR 0037).

A logs query is SQL a person types, and DuckDB's SQL reaches the file system and the network:
``read_csv('/etc/passwd')``, ``read_text``, ``glob``, ``ATTACH``, ``COPY … TO``, ``INSTALL``
and ``LOAD``. The statement-type check in :mod:`edgekit.obs.query` keeps a query to one
SELECT, but a SELECT alone can read any file. So every connection is opened with:

- ``temp_directory = ''`` (no spill directory: DuckDB would otherwise add ``./.tmp`` to the
  places a query may touch);
- ``allowed_directories`` = the mirror (resolved, with a trailing ``/`` so a sibling folder
  that merely shares the prefix is not allowed), ``allowed_paths`` = the one temporary file an
  export writes;
- ``enable_external_access = false``: every file system and network access outside those is
  refused, and extensions can be neither installed nor loaded from outside;
- ``autoinstall_known_extensions = false``, ``autoload_known_extensions = false``;
- ``lock_configuration = true``: the query cannot ``SET`` any of this back.

DuckDB resolves symbolic links before it checks a path, so a link inside the mirror that
leads outside it is refused too. DuckDB's permission errors become `QueryRefused`, which the
CLI turns into exit code 2 with a message that names the path and why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import duckdb

from edgekit.obs.contract import LogsError


class QueryRefused(LogsError):
    """The query asked for something a logs query may not do (exit code 2)."""


SETTINGS_BEFORE_LOCK = (
    "SET TimeZone = 'UTC'",
    "SET enable_progress_bar = false",
    "SET temp_directory = ''",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dir(path: Path) -> str:
    return path.resolve().as_posix().rstrip("/") + "/"


def sandboxed(roots: Sequence[Path], files: Sequence[Path] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that may read below ``roots`` and write only ``files``."""
    con = duckdb.connect(":memory:")
    try:
        for statement in SETTINGS_BEFORE_LOCK:
            con.execute(statement)
        dirs = ", ".join(_quote(_dir(root)) for root in roots)
        con.execute(f"SET allowed_directories = [{dirs}]")
        if files:
            paths = ", ".join(_quote(f.resolve().as_posix()) for f in files)
            con.execute(f"SET allowed_paths = [{paths}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


_FILE = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')


def refusal(exc: duckdb.Error, roots: Sequence[Path]) -> QueryRefused | None:
    """The sandbox's refusal in edgekit's words, or None when ``exc`` is another error."""
    text = str(exc)
    where = ", ".join(str(r) for r in roots) or "the logs mirror"
    if "extensions is disabled" in text or "/extensions/" in text:
        return QueryRefused(
            "refused: a logs query cannot install or load DuckDB extensions (the sandbox "
            "allows only the built-in ones: json, parquet)")
    if not isinstance(exc, duckdb.PermissionException) and "Permission Error" not in text:
        return None
    match = _FILE.search(text)
    path = match.group(1) if match else "a path"
    if match and _inside_but_leads_out(path, roots):
        return QueryRefused(
            f"refused: {path} lies in the logs mirror but is a symbolic link (or below one) "
            f"that leads to {os.path.realpath(path)}, outside {where}; a logs query reads "
            "only the synced files: remove the link")
    return QueryRefused(
        f"refused: the query tried to reach {path}, outside the logs mirror {where}; a logs "
        "query reads only the synced logs (no other files, no network, no ATTACH, no COPY; "
        "use --csv/--parquet to write a result)")


def _inside_but_leads_out(path: str, roots: Sequence[Path]) -> bool:
    absolute = os.path.abspath(path)
    real = os.path.realpath(path)
    for root in roots:
        plain, resolved = os.path.abspath(root), os.path.realpath(root)
        textually = absolute == plain or absolute.startswith(plain.rstrip("/") + "/") or \
            absolute.startswith(resolved.rstrip("/") + "/")
        if textually and not (real == resolved or real.startswith(resolved.rstrip("/") + "/")):
            return True
    return False
