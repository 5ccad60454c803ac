"""Turn element bodies into plain JSON data, collecting the addresses they read.

`Ref`s become ``${...}`` strings, elements used as values become their address,
tuples become lists. Anything else that JSON cannot hold is a problem, reported
with its JSON pointer. Sets are refused: their order is not deterministic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from edgekit.core.construct import Construct
from edgekit.core.refs import Known, Ref, remote_expression, template_addresses

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


_NO_NAMES: frozenset[str] = frozenset()
_CROSS: ContextVar[tuple[str, list[Ref | Known]] | None] = ContextVar("edgekit_cross", default=None)
"""While a stack renders: its name, and where Refs to other stacks' elements go."""


def render(value: Any, reads: set[str], home: str | None = None,
           foreign: list[Ref | Known] | None = None, *, owned: bool = False) -> Any:
    """Plain JSON data for `value`; every address it reads is added to `reads`.

    Copy on write: a dict or list that holds only plain data is returned as it is, so
    a body shares what it does not change with the element's configuration (the
    document is read, never mutated: overrides copy the containers they change).
    A `Ref` to an element of another stack than `home` is added to `foreign` and
    rendered as a read of that stack's remote state (``edgekit.core.crossref``); a
    `Known` value of another stack is written as its literal and added to `foreign`.
    Raises `RenderError` with the pointer of the first value JSON cannot hold.
    `owned`: `value` is the caller's own new object, whose top level may be filled in place.
    """
    if home is None:  # the context `rendering_stack` set, if any
        return _render(value, reads, _NO_NAMES, owned)
    token = _CROSS.set((home, foreign if foreign is not None else []))
    try:
        return _render(value, reads, _NO_NAMES, owned)
    finally:
        _CROSS.reset(token)


@contextlib.contextmanager
def rendering_stack(home: str, foreign: list[Ref | Known]) -> Iterator[None]:
    """While active, `render` (without `home`) renders for stack `home`: a stack's
    elements share one context instead of setting it per element."""
    token = _CROSS.set((home, foreign))
    try:
        yield
    finally:
        _CROSS.reset(token)


_PLAIN = frozenset({int, bool, type(None)})
"""Values a container holds that render as themselves, read nothing and cannot be wrong:
checked inline by the loops below (most values of a body), without a call each."""


def _render(value: Any, reads: set[str], names: frozenset[str], owned: bool = False) -> Any:
    """`names`: local names in scope (iterators of the enclosing ``dynamic`` blocks);
    `owned`: a dict `value` is changed in place, not copied (see `render`)."""
    kind = type(value)
    if kind is str:
        if "{" in value:
            reads.update(template_addresses(value, names))
        return value
    if kind is dict:
        out = None
        for key, item in value.items():
            if type(key) is not str:
                raise RenderError("$", f"object keys must be strings, got {key!r}")
            item_kind = type(item)
            if item_kind is str:  # as `_render` does with a string, inline
                if "{" in item:
                    reads.update(template_addresses(item, names))
                continue
            if item_kind in _PLAIN:
                continue
            try:
                new = _dynamic(item, reads, names, labels=True) if key == "dynamic" \
                    else _render(item, reads, names)
            except RenderError as err:
                raise err._within(f".{key}") from None
            if new is not item:
                if out is None:
                    out = value if owned else dict(value)
                out[key] = new  # a key already there: the loop above is not disturbed
        return value if out is None else out
    if kind is list or kind is tuple:
        items = None
        for i, item in enumerate(value):
            item_kind = type(item)
            if item_kind is str:
                if "{" in item:
                    reads.update(template_addresses(item, names))
                continue
            if item_kind in _PLAIN:
                continue
            try:
                new = _render(item, reads, names)
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
        cross = _CROSS.get()
        if value.stack is not None and cross is not None and value.stack != cross[0]:
            cross[1].append(value)
            return "${" + remote_expression(value) + "}"
        if value.address.startswith("output."):
            raise RenderError("$", f"{value.address} is an output of this stack; read an "
                              "output only from another stack")
        reads.add(value.address)
        return str(value)
    if kind is Known:
        cross = _CROSS.get()
        if cross is not None and value.stack != cross[0]:
            cross[1].append(value)
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
        return _render(dict(value), reads, names)
    raise RenderError(
        "$", f"cannot write a {kind.__name__} as JSON; expected a string, number, bool, "
        "list, dict, Ref or element"
    )


def _dynamic(value: Any, reads: set[str], names: frozenset[str], *, labels: bool,
             iterator: str = "") -> Any:
    """A ``dynamic`` block: ``{label: body}`` (or a list of those), each body an object
    (or a list) whose ``content`` sees the iterator (``iterator``, else the label)."""
    if isinstance(value, list | tuple):
        return _each(value, lambda i, item: _dynamic(item, reads, names, labels=labels,
                                                     iterator=iterator))
    if type(value) is not dict:
        return _render(value, reads, names)
    if labels:
        return _each_key(value, lambda label, body: _dynamic(body, reads, names,
                                                             labels=False, iterator=label))
    own = value.get("iterator")
    inner = names | {own if isinstance(own, str) else iterator}
    return _each_key(value, lambda key, item: _render(item, reads, inner if key == "content"
                                                      else names))


def _each_key(value: dict[str, Any], render_item: Any) -> dict[str, Any]:
    out = None
    for key, item in value.items():
        try:
            new = render_item(key, item)
        except RenderError as err:
            raise err._within(f".{key}") from None
        if new is not item:
            if out is None:
                out = dict(value)
            out[key] = new
    return value if out is None else out


def _each(value: list[Any] | tuple[Any, ...], render_item: Any) -> list[Any]:
    items = list(value)
    for i, item in enumerate(value):
        try:
            items[i] = render_item(i, item)
        except RenderError as err:
            raise err._within(f"[{i}]") from None
    return value if isinstance(value, list) and all(
        a is b for a, b in zip(items, value, strict=True)) else items


def find_reads(value: Any, address: str, pointer: str = "$",
               names: frozenset[str] = _NO_NAMES, dynamic: str = "") -> Iterator[str]:
    """JSON pointers in `value` (already rendered) where `address` is read.

    `dynamic` follows the shape of a ``dynamic`` block as `_dynamic` does: ``labels``
    (label → body), ``body:<iterator>`` (a body whose ``content`` sees the iterator).
    """
    if isinstance(value, str):
        if "{" in value and address in set(template_addresses(value, names)):
            yield pointer
    elif isinstance(value, dict):
        for key, item in value.items():
            here = f"{pointer}.{key}"
            if dynamic == "labels":
                yield from find_reads(item, address, here, names, f"body:{key}")
            elif dynamic.startswith("body:"):
                own = value.get("iterator")
                inner = names | {own if isinstance(own, str) else dynamic[5:]}
                yield from find_reads(item, address, here,
                                      inner if key == "content" else names)
            else:
                yield from find_reads(item, address, here, names,
                                      "labels" if key == "dynamic" else "")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from find_reads(item, address, f"{pointer}[{i}]", names, dynamic)
