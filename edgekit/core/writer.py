"""The only code that writes synth output to disk, and it does so atomically.

All files are rendered in memory first. They are written into a fresh sibling
folder, which then replaces the output folder by an exchange rename
(`edgekit.core.files`). If anything fails on the way, the previous output folder
is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from edgekit.core.files import Transaction

_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dump_json(data: Any) -> bytes:
    """Canonical JSON: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(data, option=_JSON_OPTIONS)  # the newline without a copy


def write_tree(outdir: Path, files: Mapping[str, bytes], keep: Mapping[str, Path] = {}) -> None:
    """Replace `outdir` with exactly `files` (relative paths → bytes).

    `keep` maps relative folder names to existing folders copied in unchanged
    (stacks not synthesized this time). Raises `OutputError`; on error the old
    `outdir` is untouched. The swap is an exchange rename: `outdir` never goes missing.
    """
    with Transaction() as transaction:
        transaction.stage_tree(outdir, files, keep)
        transaction.commit()
