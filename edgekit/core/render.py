"""Turn element bodies into plain JSON data, collecting the addresses they read.

`Ref`s become ``${...}`` strings, elements used as values become their address,
tuples become lists. Anything else that JSON cannot hold is a problem, reported
with its JSON pointer. Sets are refused: their order is not deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgekit.core.construct import Construct
from edgekit.core.refs import Ref, interpolations, referenced_addresses, remote_expression

_SCALARS = (str, int, float, bool, type(None))


class RenderError(Exception):
    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message


def render(value: Any, reads: set[str], home: str | None = None,
           foreign: list[Ref] | None = None) -> Any:
    """Plain JSON data for `value`; every address it reads is added to `reads`.

    A `Ref` to an element of another stack than `home` is added to `foreign` and
    rendered as a read of that stack's remote state (``edgekit.core.crossref``).
    Raises `RenderError` with the pointer of the first value JSON cannot hold.
    """
    return _render(value, reads, "$", home, foreign if foreign is not None else [])


def _render(value: Any, reads: set[str], pointer: str, home: str | None = None,
            foreign: list[Ref] | None = None) -> Any:
    kind = type(value)
    if kind is str:
        if "{" in value:
            _scan(value, reads)
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise RenderError(f"{pointer}", f"object keys must be strings, got {key!r}")
            out[key] = _render(item, reads, f"{pointer}.{key}", home, foreign)
        return out
    if kind is list or kind is tuple:
        return [_render(item, reads, f"{pointer}[{i}]", home, foreign)
                for i, item in enumerate(value)]
    if kind is Ref:
        if value.stack is not None and home is not None and value.stack != home:
            if foreign is not None:
                foreign.append(value)
            return "${" + remote_expression(value) + "}"
        if value.address.startswith("output."):
            raise RenderError(pointer, f"{value.address} is an output of this stack; read "
                              "an output only from another stack")
        reads.add(value.address)
        return str(value)
    if value is None or kind in _SCALARS:
        if kind is float and value != value:
            raise RenderError(pointer, "NaN cannot be written as JSON")
        return value
    if isinstance(value, Construct) and hasattr(value, "address"):
        address: str = value.address
        reads.add(address)
        return address
    if isinstance(value, set | frozenset):
        raise RenderError(pointer, "sets have no stable order; pass a sorted list")
    if isinstance(value, dict):
        return _render(dict(value), reads, pointer)
    raise RenderError(
        pointer, f"cannot write a {kind.__name__} as JSON; expected a string, number, bool, "
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
