"""The only code that writes synth output to disk, and it does so atomically.

All files are checked in memory first. They are written into a fresh sibling
folder, which then replaces the output folder by an exchange rename
(`edgekit.core.files`). If anything fails on the way, the previous output folder
is left exactly as it was.

A large stack's document is written in pieces (`json_chunks`), each file rendered only
when it is written (`LazyFiles`): the whole output is never held in memory as bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from edgekit.core.files import Chunk, LazyFiles, Transaction

__all__ = ["Chunk", "LazyFiles", "LazyList", "dump_json", "json_chunks", "write_tree"]

S = TypeVar("S")

_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_NESTED_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


class LazyList(Collection[Any], Generic[S]):
    """A JSON array whose items are made from `source` one at a time while it is written
    (`json_chunks` never holds more than one of them)."""

    def __init__(self, source: Sequence[S], make: Callable[[S], Any]) -> None:
        self._source = source
        self._make = make

    def __iter__(self) -> Iterator[Any]:
        return map(self._make, self._source)

    def __len__(self) -> int:
        return len(self._source)

    def __contains__(self, item: object) -> bool:
        return any(made == item for made in self)


def _default(value: Any) -> Any:
    if type(value) is LazyList:
        return list(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dump_json(data: Any) -> bytes:
    """Canonical JSON: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(data, default=_default, option=_JSON_OPTIONS)  # newline: no copy


def json_chunks(data: Any, depth: int = 2) -> Iterator[Chunk]:
    """`dump_json(data)` in pieces, byte for byte: the objects and lists of the top
    `depth` levels are opened here, item by item, and what is below them is dumped one
    value at a time (depth 2: a document's section → resource type → its resources)."""
    yield from _chunks(data, 0, depth)
    yield b"\n"


BATCH = 256
"""Items of a large object or array dumped per call (a resource type with 20,000
resources is written 256 at a time, not as one 7 MB piece)."""


def _chunks(value: Any, level: int, depth: int) -> Iterator[Chunk]:
    kind = type(value)
    if (kind is not dict and kind is not list and kind is not LazyList) or not value:
        yield _dump(value, level)  # a scalar, or empty
    elif depth == 0:
        yield from _batches(value, level)
    elif kind is dict and all(type(key) is str for key in value):
        pad = b"\n" + b"  " * (level + 1)
        separator = b"{"
        for key in sorted(value):  # code point order is UTF-8 byte order: orjson's order
            yield separator + pad + orjson.dumps(key) + b": "
            yield from _chunks(value[key], level + 1, depth - 1)
            separator = b","
        yield b"\n" + b"  " * level + b"}"
    elif kind is dict:  # keys orjson refuses: its error
        yield _dump(value, level)
    else:
        pad = b"\n" + b"  " * (level + 1)
        separator = b"["
        for item in value:
            yield separator + pad
            yield from _chunks(item, level + 1, depth - 1)
            separator = b","
        yield b"\n" + b"  " * level + b"]"


def _dump(value: Any, level: int) -> Chunk:
    """`value` as it is written `level` levels deep (its first line not indented).

    Dumped inside `level` one-key objects, so orjson indents every line itself, and
    returned as a view of that one output: a large value (a pool of 10,000 origins) is
    never copied to be re-indented."""
    if not level:
        return orjson.dumps(value, default=_default, option=_NESTED_OPTIONS)
    for _ in range(level):
        value = {"": value}
    out = orjson.dumps(value, default=_default, option=_NESTED_OPTIONS)
    # '{\n  "": ' opens each wrapper and '\n}' (indented) closes it
    head = sum(6 + 2 * k for k in range(1, level + 1))
    tail = sum(2 + 2 * k for k in range(level))
    return memoryview(out)[head:len(out) - tail]


FEW = 8
"""An object of at most this many items is looked into for one that holds a long list or
object (`_holds_many`)."""


def _holds_many(value: Any) -> bool:
    """Whether `value` is an object with a list or object of more than `BATCH` items."""
    return type(value) is dict and any(
        (type(item) is list or type(item) is dict) and len(item) > BATCH
        for item in value.values())


def _batches(value: dict[str, Any] | list[Any] | LazyList[Any], level: int
             ) -> Iterator[Chunk]:
    """A non-empty object or array dumped `BATCH` items at a time: each batch is dumped
    as an object (array) of its own and written without its brackets. A `LazyList`'s
    items are made a batch at a time."""
    if type(value) is dict and len(value) <= FEW and any(map(_holds_many, value.values())):
        # a few items, one of them large (two pools of 10,000 origins): each item opened,
        # its long lists and objects written a batch at a time, never one 7 MB piece
        yield from _chunks(value, level, 2)
        return
    if type(value) is not LazyList and len(value) <= BATCH:
        yield _dump(value, level)
        return
    parts: Iterator[Any]
    if isinstance(value, dict):
        keys = sorted(value) if all(type(key) is str for key in value) else list(value)
        parts = ({k: value[k] for k in keys[i:i + BATCH]} for i in range(0, len(keys), BATCH))
        opening, closing = b"{", b"}"
    else:
        items = iter(value)
        parts = iter(lambda: list(itertools.islice(items, BATCH)), [])
        opening, closing = b"[", b"]"
    separator = opening
    for part in parts:
        yield separator
        dumped = _dump(part, level)
        yield memoryview(dumped)[1:len(dumped) - (2 + 2 * level)]  # "{" … "\n<indent>}"
        separator = b","
    yield b"\n" + b"  " * level + closing


def write_tree(outdir: Path, files: Mapping[str, bytes], keep: Mapping[str, Path] = {}) -> None:
    """Replace `outdir` with exactly `files` (relative paths → bytes; a `LazyFiles`
    renders each file while it is written).

    `keep` maps relative folder names to existing folders copied in unchanged
    (stacks not synthesized this time). Raises `OutputError`; on error the old
    `outdir` is untouched. The swap is an exchange rename: `outdir` never goes missing.
    """
    with Transaction() as transaction:
        transaction.stage_tree(outdir, files, keep)
        transaction.commit()
