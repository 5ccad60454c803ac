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
_FOR_NAMES = re.compile(rf"\bfor\s+({_IDENT})(?:\s*,\s*({_IDENT}))?\s+in\b")


@attrs.frozen
class Ref:
    """A reference to an element's address, optionally into one of its attributes.

    `address` is the element's own address (``hcloud_server.edge_1``, ``var.token``,
    ``data.hcloud_image.debian``, ``module.net``); `attr_path` the attributes below it.
    """

    address: str
    attr_path: tuple[str, ...] = ()
    stack: str | None = None
    """The stack the element lives in, when known. Used as a value in another stack, the
    reference is read through that stack's remote state (see ``edgekit.core.crossref``)."""

    def attr(self, name: str) -> Ref:
        """A reference one attribute deeper: ``ref.attr("ipv4_address")``."""
        return Ref(self.address, (*self.attr_path, name), self.stack)

    def at(self, index: int | str) -> Ref:
        """An index into a list or map: ``ref.attr("network").at(0)``."""
        key = str(index) if isinstance(index, int) else f'"{index}"'
        return Ref(self.address, (*self.attr_path, f"[{key}]"), self.stack)

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


REMOTE_STATE = "terraform_remote_state"
"""The data source type a stack reads another stack's outputs through."""


def output_name(ref: Ref) -> str:
    """The producer's output a cross-stack `ref` reads: its own name for an output
    (``other.output("x")``), else one edgekit adds: ``xref_<address>_<attrs>``."""
    if ref.address.startswith("output."):
        return ref.address.split(".", 1)[1]
    return "xref_" + re.sub(r"[^A-Za-z0-9_]+", "_", ref.expression).strip("_")


def remote_expression(ref: Ref) -> str:
    """How a consumer stack reads `ref`: through the producer's remote state."""
    head = f"data.{REMOTE_STATE}.{ref.stack}.outputs.{output_name(ref)}"
    if ref.address.startswith("output."):
        for part in ref.attr_path:
            head += part if part.startswith("[") else f".{part}"
    return head


def interpolations(text: str) -> Iterator[str]:
    """The expressions inside ``${...}`` and ``%{...}`` of a template string.

    ``$${`` and ``%%{`` are escapes for literal text and are skipped.
    """
    i, n = 0, len(text)
    while i < n - 1:
        ch = text[i]
        if ch in "$%" and text[i + 1] == "{":
            if i > 0 and text[i - 1] == ch and (i < 2 or text[i - 2] != ch):
                i += 2  # escaped: $${ or %%{
                continue
            depth, j = 1, i + 2
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            yield text[i + 2 : j - 1]
            i = j
        else:
            i += 1


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
