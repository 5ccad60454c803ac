"""The only code that writes synth output to disk, and it does so atomically.

All files are rendered in memory first. They are written into a fresh sibling
folder, which then replaces the output folder by rename. If anything fails on
the way, the previous output folder is left exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from edgekit.core.errors import OutputError

_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dump_json(data: Any) -> bytes:
    """Canonical JSON: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(data, option=_JSON_OPTIONS)  # the newline without a copy


def write_tree(outdir: Path, files: Mapping[str, bytes], keep: Mapping[str, Path] = {}) -> None:
    """Replace `outdir` with exactly `files` (relative paths → bytes).

    `keep` maps relative folder names to existing folders copied in unchanged
    (stacks not synthesized this time). Raises `OutputError`; on error the old
    `outdir` is untouched.
    """
    outdir = outdir.absolute()
    parent = outdir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=parent))
    except OSError as err:
        raise OutputError(
            f"cannot write output folder {outdir}: {err.strerror or err}; "
            "check that its parent folder exists and is writable"
        ) from err
    try:
        for rel, source in sorted(keep.items()):
            shutil.copytree(source, staging / rel)
        for rel, data in sorted(files.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _swap(staging, outdir)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write output folder {outdir}: {err}") from err


def _swap(staging: Path, outdir: Path) -> None:
    if not outdir.exists():
        os.rename(staging, outdir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
    os.rmdir(retired)
    os.rename(outdir, retired)
    try:
        os.rename(staging, outdir)
    except OSError:
        os.rename(retired, outdir)  # put the old output back
        raise
    shutil.rmtree(retired, ignore_errors=True)
