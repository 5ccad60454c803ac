"""Read only the parts of a committed provider schema that a stack uses.

A dump (``data/<name>-<version>.json.gz``, the compact sorted JSON of ``tofu providers
schema -json``) is megabytes of JSON for cloudflare; a stack uses a handful of its ~900
types. Beside each dump, ``data/<name>-<version>.index.json`` holds the byte range of
the provider block and of every resource and data source schema inside the
decompressed dump, so a synth decompresses the dump and parses only those ranges.

`build_index` computes an index from a dump; `tools/dump_schemas.py` writes it with the
dump, and a test checks every committed index against its dump.
"""

from __future__ import annotations

import json
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).resolve().parent / "data"
SECTIONS = ("data_source_schemas", "resource_schemas")
"""The tables of an index, besides ``provider``: type name → [start, end]."""


def dump_path(name: str, version: str) -> Path:
    return DATA / f"{name}-{version}.json.gz"


def index_path(name: str, version: str) -> Path:
    return DATA / f"{name}-{version}.index.json"


def _compact(value: Any) -> bytes:
    """The bytes `tools/dump_schemas.py` writes for `value` (sorted, compact, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build_index(raw: bytes) -> dict[str, Any]:
    """Byte ranges of the provider block and of every type's schema in the dump `raw`.

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
    """One provider's committed schema, parsed a type at a time."""

    def __init__(self, raw: bytes, index: dict[str, Any]) -> None:
        self._raw = raw
        self._index = index
        self._blocks: dict[tuple[str, str], dict[str, Any]] = {}

    def types(self, section: str) -> dict[str, list[int]]:
        """The type names of `section` (``resource_schemas``, ``data_source_schemas``)."""
        table: dict[str, list[int]] = self._index.get(section, {})
        return table

    def provider_block(self) -> dict[str, Any]:
        start, end = self._index["provider"]
        block: dict[str, Any] = orjson.loads(self._raw[start:end])["block"]
        return block

    def block(self, section: str, type_name: str) -> dict[str, Any] | None:
        """The schema block of one type, or None if the provider has no such type. Parsed
        once (the schema check and the rules share it); treat it as read-only."""
        block = self._blocks.get((section, type_name))
        if block is None:
            span = self.types(section).get(type_name)
            if span is None:
                return None
            block = self._blocks[section, type_name] = \
                orjson.loads(self._raw[span[0]:span[1]])["block"]
        return block


@cache
def load(name: str, version: str) -> ProviderSchema | None:
    """The committed schema of provider `name` at `version`, or None if not committed."""
    dump, index = dump_path(name, version), index_path(name, version)
    if not dump.is_file():
        return None
    raw = zlib.decompress(dump.read_bytes(), wbits=31)  # gzip; zlib imports faster
    if not index.is_file():  # a dump without its index still works, only slower
        return ProviderSchema(raw, build_index(raw))
    return ProviderSchema(raw, orjson.loads(index.read_bytes()))
