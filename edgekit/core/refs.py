"""References: frozen objects that render as OpenTofu interpolations.

``server.attr("ipv4_address")`` is a `Ref`; placed as a whole value it renders
``"${hcloud_server.edge_1.ipv4_address}"`` (OpenTofu passes the raw value through);
inside an f-string it renders the same text, so ``f"ssh root@{ip}"`` works.

Either way the synth checks every ``${...}`` it writes: each address it names must
be an element of the same stack. So a typo in a hand-written interpolation is
caught the same as a dangling `Ref`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

# Roots that are not addresses of elements we emit.
_BUILTIN_ROOTS = frozenset({"count", "each", "self", "path", "terraform", "key_provider", "method"})
_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_TRAVERSAL = re.compile(rf"(?<![A-Za-z0-9_.\-\"]){_IDENT}(?:\.{_IDENT})+")
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"')
_OPENING = re.compile(r"[$%]\{")
_FOR_NAMES = re.compile(rf"\bfor\s+({_IDENT})(?:\s*,\s*({_IDENT}))?\s+in\b")


@attrs.frozen
class Ref:
    """A reference to an element's address, optionally into one of its attributes.

    `address` is the element's own address (``hcloud_server.edge_1``, ``var.token``,
    ``data.hcloud_image.debian``, ``module.net``); `attr_path` the attributes below it.
    """

    address: str
    attr_path: tuple[str, ...] = ()

    def attr(self, name: str) -> Ref:
        """A reference one attribute deeper: ``ref.attr("ipv4_address")``."""
        return Ref(self.address, (*self.attr_path, name))

    def at(self, index: int | str) -> Ref:
        """An index into a list or map: ``ref.attr("network").at(0)``."""
        key = str(index) if isinstance(index, int) else f'"{index}"'
        return Ref(self.address, (*self.attr_path, f"[{key}]"))

    @property
    def expression(self) -> str:
        text = self.address
        for part in self.attr_path:
            text += part if part.startswith("[") else f".{part}"
        return text

    def __str__(self) -> str:
        return "${" + self.expression + "}"

    def __format__(self, spec: str) -> str:
        return str(self)


def interpolations(text: str) -> Iterator[str]:
    """The expressions inside ``${...}`` and ``%{...}`` of a template string.

    ``$${`` and ``%%{`` are escapes for literal text and are skipped.
    """
    end = 0
    for match in _OPENING.finditer(text):
        i = match.start()
        if i < end:
            continue  # inside the expression yielded last
        ch = text[i]
        if i > 0 and text[i - 1] == ch and (i < 2 or text[i - 2] != ch):
            continue  # escaped: $${ or %%{
        end = _closing(text, i + 2)
        yield text[i + 2 : end - 1]


def _closing(text: str, j: int) -> int:
    """The index just past the ``}`` that closes the brace opened before `j`."""
    depth, n = 1, len(text)
    while j < n and depth:
        close = text.find("}", j)
        opening = text.find("{", j, close if close >= 0 else n)
        if opening >= 0:
            depth, j = depth + 1, opening + 1
        elif close >= 0:
            depth, j = depth - 1, close + 1
        else:
            j = n
    return j


def referenced_addresses(expression: str) -> Iterator[str]:
    """Element addresses an expression reads, e.g. ``var.x``, ``hcloud_server.a``.

    Function names, string literals, built-ins (``each``, ``count``, ``self``,
    ``path``, ``terraform``) and the encryption roots are not addresses.
    """
    for literal in _STRING_LITERAL.findall(expression):  # templates nested in strings
        for inner in interpolations(literal):
            yield from referenced_addresses(inner)
    bare = _STRING_LITERAL.sub('""', expression)
    local_names = {name for pair in _FOR_NAMES.findall(bare) for name in pair if name}
    for match in _TRAVERSAL.finditer(bare):
        parts = match.group(0).split(".")
        root = parts[0]
        if root in _BUILTIN_ROOTS or root in local_names:
            continue
        if root in ("var", "local", "module"):
            yield f"{root}.{parts[1]}"
        elif root == "data":
            if len(parts) >= 3:
                yield f"data.{parts[1]}.{parts[2]}"
        else:
            yield f"{root}.{parts[1]}"
