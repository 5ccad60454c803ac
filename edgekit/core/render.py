"""Turn element bodies into plain JSON data, collecting the addresses they read.

`Ref`s become ``${...}`` strings, elements used as values become their address,
tuples become lists. Anything else that JSON cannot hold is a problem, reported
with its JSON pointer. Sets are refused: their order is not deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgekit.core.construct import Construct
from edgekit.core.refs import Ref, interpolations, referenced_addresses

_SCALARS = (str, int, float, bool, type(None))


class RenderError(Exception):
    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message
        self._inner: list[str] = []

    def _within(self, part: str) -> RenderError:
        """Record that the bad value sits below `part`; the pointer is built only on error."""
        self._inner.append(part)
        self.pointer = "$" + "".join(reversed(self._inner))
        return self


def render(value: Any, reads: set[str]) -> Any:
    """Plain JSON data for `value`; every address it reads is added to `reads`.

    Copy on write: a dict or list that holds only plain data is returned as it is, so
    a body shares what it does not change with the element's configuration (the
    document is read, never mutated: overrides copy the containers they change).
    Raises `RenderError` with the pointer of the first value JSON cannot hold.
    """
    return _render(value, reads)


def _render(value: Any, reads: set[str]) -> Any:
    kind = type(value)
    if kind is str:
        if "{" in value:
            _scan(value, reads)
        return value
    if kind is dict:
        out = None
        for key, item in value.items():
            if type(key) is not str:
                raise RenderError("$", f"object keys must be strings, got {key!r}")
            try:
                new = _render(item, reads)
            except RenderError as err:
                raise err._within(f".{key}") from None
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if kind is list or kind is tuple:
        items = None
        for i, item in enumerate(value):
            try:
                new = _render(item, reads)
            except RenderError as err:
                raise err._within(f"[{i}]") from None
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        if items is None:
            return value if kind is list else list(value)
        return items
    if kind is Ref:
        reads.add(value.address)
        return str(value)
    if value is None or kind in _SCALARS:
        if kind is float and value != value:
            raise RenderError("$", "NaN cannot be written as JSON")
        return value
    if isinstance(value, Construct) and hasattr(value, "address"):
        address: str = value.address
        reads.add(address)
        return address
    if isinstance(value, set | frozenset):
        raise RenderError("$", "sets have no stable order; pass a sorted list")
    if isinstance(value, dict):
        return _render(dict(value), reads)
    raise RenderError(
        "$", f"cannot write a {kind.__name__} as JSON; expected a string, number, bool, "
        "list, dict, Ref or element"
    )


def _scan(text: str, reads: set[str]) -> None:
    for expression in interpolations(text):
        reads.update(referenced_addresses(expression))


def find_reads(value: Any, address: str, pointer: str = "$") -> Iterator[str]:
    """JSON pointers in `value` (already rendered) where `address` is read."""
    if isinstance(value, str):
        if "{" in value:
            for expression in interpolations(value):
                if address in set(referenced_addresses(expression)):
                    yield pointer
                    return
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from find_reads(item, address, f"{pointer}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from find_reads(item, address, f"{pointer}[{i}]")
