"""Small helpers the rules share: walking JSON values and the references inside strings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from edgekit.clouds.kinds import blocks, text_list

__all__ = ["at", "blocks", "is_expression", "reaches", "strings", "text_list"]

REFERENCE = re.compile(r"\b(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)")
CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\(")


def strings(value: Any, pointer: str = "$") -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value, with its pointer (``$.a.b[2]``)."""
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from strings(value[key], f"{pointer}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{pointer}[{index}]")


def at(value: Any, *keys: str | int) -> Any:
    """``value[k1][k2]...`` or None; a one-element list stands for its block (HCL JSON)."""
    for key in keys:
        if isinstance(value, list) and isinstance(key, str) and len(value) == 1:
            value = value[0]
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and -len(value) <= key < len(
                value) else None
        else:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def reaches(document: Mapping[str, Any], value: Any,
            seen: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ``var.x`` and every function called that `value` depends on,
    following ``local.x`` through the document's locals."""
    seen = set() if seen is None else seen
    for _, text in strings(value):
        if "${" not in text:
            continue
        for call in CALL.findall(text):
            yield "call", call
        for kind, name in REFERENCE.findall(text):
            key = f"{kind}.{name}"
            if key in seen:
                continue
            seen.add(key)
            if kind == "var":
                yield "var", name
            else:
                locals_ = document.get("locals")
                if isinstance(locals_, Mapping) and name in locals_:
                    yield from reaches(document, locals_[name], seen)
