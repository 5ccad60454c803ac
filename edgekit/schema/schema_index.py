"""Read only the parts of a committed provider schema that a stack uses.

A dump (``data/<name>-<version>.json.gz``, the compact sorted JSON of ``tofu providers
schema -json``) is megabytes of JSON for cloudflare; a stack uses a handful of its ~900
types. The dump is written as consecutive gzip members of about `MEMBER_BYTES` of JSON
each, cut where a type's schema ends (`compress`): ``gzip -d`` and `gzip.decompress` read
it as the one JSON document, and a synth inflates only the members that hold the types it
uses. Beside each dump, ``data/<name>-<version>.index.json`` holds the byte range of the
provider block and of every resource and data source schema inside the decompressed dump,
and where each member starts (decompressed and compressed); a synth parses only those
ranges.

`build_index` computes an index from a dump; `tools/dump_schemas.py` writes both, and a
test checks every committed index against its dump.
"""

from __future__ import annotations

import bisect
import itertools
import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parent / "data"
SECTIONS = ("data_source_schemas", "resource_schemas")
"""The tables of an index, besides ``provider`` and ``members``: type name → [start, end]."""
MEMBER_BYTES = 64 * 1024
"""Decompressed JSON per gzip member, at least (a member ends where a type does). Inflating
a member costs about 0.3 ms; the deflate window is 32 KiB, so members of twice that
compress almost as well as one stream (cloudflare: 351 KB against 313 KB)."""


def dump_path(name: str, version: str) -> Path:
    return DATA / f"{name}-{version}.json.gz"


def index_path(name: str, version: str) -> Path:
    return DATA / f"{name}-{version}.index.json"


def _compact(value: Any) -> bytes:
    """The bytes `tools/dump_schemas.py` writes for `value` (sorted, compact, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def inflate(dump: bytes | memoryview) -> bytes:
    """Every gzip member of `dump`, decompressed and joined (`zlib.decompress` alone would
    stop after the first member)."""
    parts = []
    data = memoryview(dump)
    while data:
        inflater = zlib.decompressobj(31)  # gzip; zlib imports faster than gzip
        parts.append(inflater.decompress(data))
        if not inflater.eof:
            raise ValueError("truncated gzip member")
        data = data[len(data) - len(inflater.unused_data):]
    return b"".join(parts)


def read_dump(name: str, version: str) -> bytes:
    """The whole decompressed dump of provider `name` at `version` (tools and tests)."""
    return inflate(dump_path(name, version).read_bytes())


def _spans(index: dict[str, Any]) -> list[tuple[int, int]]:
    """The provider block's range and every type's."""
    return [(start, end) for start, end in (index["provider"], *(
        span for section in SECTIONS for span in index.get(section, {}).values()))]


def compress(raw: bytes) -> bytes:
    """`raw` (a dump) as consecutive gzip members of at least `MEMBER_BYTES` each, every
    one ending where a type's schema (or the provider block) ends, so no schema spans two
    members. Deterministic: level 9, no timestamp."""
    import gzip

    cuts = [0]
    for _, end in sorted(_spans(build_index(raw))):
        if end - cuts[-1] >= MEMBER_BYTES:
            cuts.append(end)
    if cuts[-1] != len(raw):
        cuts.append(len(raw))
    return b"".join(gzip.compress(raw[a:b], 9, mtime=0) for a, b in itertools.pairwise(cuts))


def members(dump: bytes) -> list[list[int]]:
    """Where each gzip member of `dump` starts: [offset in the decompressed dump, offset in
    `dump`]."""
    table = []
    data = memoryview(dump)
    at = inflated = 0
    while at < len(dump):
        inflater = zlib.decompressobj(31)
        size = len(inflater.decompress(data[at:]))
        if not inflater.eof:
            raise ValueError("truncated gzip member")
        table.append([inflated, at])
        at = len(dump) - len(inflater.unused_data)
        inflated += size
    return table


def build_index(raw: bytes, dump: bytes | None = None) -> dict[str, Any]:
    """Byte ranges of the provider block and of every type's schema in the dump `raw`,
    and, given the compressed `dump`, where its gzip members start.

    Each range is found by searching for the exact bytes of its value, so by construction
    ``raw[start:end]`` parses to that schema. Types are sorted in the dump, so each
    search starts where the previous one ended: linear in the dump's size.
    """
    (schema,) = orjson.loads(raw)["provider_schemas"].values()
    index: dict[str, Any] = {"provider": _find(raw, "provider", schema["provider"], 0)[:2]}
    for section in SECTIONS:
        table: dict[str, list[int]] = {}
        cursor = raw.find(f'"{section}":{{'.encode())
        for type_name, entry in sorted(schema.get(section, {}).items()):
            start, end, cursor = _find(raw, type_name, entry, cursor)
            table[type_name] = [start, end]
        index[section] = table
    if dump is not None:
        index["members"] = members(dump)
        starts = [start for start, _ in index["members"]]
        for start, end in _spans(index):
            member = bisect.bisect_right(starts, start)
            if member < len(starts) and starts[member] < end:
                raise ValueError(f"a schema at {start}-{end} spans two gzip members; write "
                                 "the dump with compress()")
    return index


def _find(raw: bytes, key: str, value: Any, cursor: int) -> tuple[int, int, int]:
    needle = f'"{key}":'.encode() + _compact(value)
    at = raw.find(needle, max(cursor, 0))
    if at < 0:
        raise ValueError(f"{key!r} not found as written in the dump; was it written by "
                         "tools/dump_schemas.py (sorted, compact JSON)?")
    start = at + len(key) + 3
    return start, at + len(needle), at + len(needle)


def render_index(index: dict[str, Any]) -> bytes:
    return orjson.dumps(index, option=orjson.OPT_SORT_KEYS) + b"\n"


class ProviderSchema:
    """One provider's committed schema, inflated a member and parsed a type at a time."""

    def __init__(self, dump: bytes, index: dict[str, Any]) -> None:
        self._dump = dump
        self._index = index
        # An index without members (written before they existed): the dump is one member.
        self._members: list[list[int]] = index.get("members") or [[0, 0]]
        self._starts = [start for start, _ in self._members]
        self._inflated: dict[int, bytes] = {}
        self._blocks: dict[tuple[str, str], dict[str, Any]] = {}

    def _json(self, span: list[int]) -> Any:
        """The JSON value at `span` of the decompressed dump; inflates its member once."""
        start, end = span
        member = bisect.bisect_right(self._starts, start) - 1
        data = self._inflated.get(member)
        if data is None:
            low = self._members[member][1]
            high = self._members[member + 1][1] if member + 1 < len(self._members) \
                else len(self._dump)
            data = self._inflated[member] = inflate(memoryview(self._dump)[low:high])
        base = self._starts[member]
        return orjson.loads(data[start - base:end - base])

    def types(self, section: str) -> dict[str, list[int]]:
        """The type names of `section` (``resource_schemas``, ``data_source_schemas``)."""
        table: dict[str, list[int]] = self._index.get(section, {})
        return table

    def provider_block(self) -> dict[str, Any]:
        block: dict[str, Any] = self._json(self._index["provider"])["block"]
        return block

    def block(self, section: str, type_name: str) -> dict[str, Any] | None:
        """The schema block of one type, or None if the provider has no such type. Parsed
        once (the schema check and the rules share it); treat it as read-only."""
        block = self._blocks.get((section, type_name))
        if block is None:
            span = self.types(section).get(type_name)
            if span is None:
                return None
            block = self._blocks[section, type_name] = self._json(span)["block"]
        return block


@cache
def load(name: str, version: str) -> ProviderSchema | None:
    """The committed schema of provider `name` at `version`, or None if not committed."""
    dump, index = dump_path(name, version), index_path(name, version)
    if not dump.is_file():
        return None
    data = dump.read_bytes()
    if not index.is_file():  # a dump without its index still works, only slower
        return ProviderSchema(data, build_index(inflate(data), data))
    return ProviderSchema(data, orjson.loads(index.read_bytes()))
