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
_OPENING = re.compile(r"[$%]\{")
_FOR_NAMES = re.compile(rf"\bfor\s+({_IDENT})(?:\s*,\s*({_IDENT}))?\s+in\b")
_PLAIN = r"[^$%{}]*"
_ONE_TRAVERSAL = re.compile(
    rf"{_PLAIN}\$\{{(?:({_IDENT}(?:\.{_IDENT})+)|{_IDENT}\(({_IDENT}(?:\.{_IDENT})+)\))\}}{_PLAIN}")
"""The common template: one ``${a.b.c}`` or ``${f(a.b.c)}`` in plain text (no other
template, no escape, no string literal), whose one address needs no scanning."""


class Known(str):
    """A value another stack establishes that is known at synth time (a bucket name, a
    zone id): written as the plain literal wherever it is used, and still a dependency on
    that stack in ``manifest.json`` (ADR 0020). Made by `Stack.known`. It is a `str`, so
    it goes wherever the literal would; a string built from it (an f-string, ``+``)
    is a new plain string and no longer carries the stack."""

    stack: str

    def __new__(cls, value: str, stack: str) -> Known:
        known = super().__new__(cls, value)
        known.stack = stack
        return known

    def __reduce__(self) -> tuple[type[Known], tuple[str, str]]:
        return Known, (str(self), self.stack)


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

    ``$${`` and ``%%{`` are escapes for literal text and are skipped. Inside an
    expression, quoted strings are skipped whole (they may hold braces and templates).
    """
    i = 0
    while True:
        match = _OPENING.search(text, i)
        if match is None:
            return
        j = match.start()
        ch = text[j]
        if j > 0 and text[j - 1] == ch and (j < 2 or text[j - 2] != ch):
            i = j + 2  # escaped: $${ or %%{
            continue
        end = _code(text, j + 2, nested=True)[2]
        yield text[j + 2 : end - 1]
        i = end


def _code(text: str, i: int, *, nested: bool) -> tuple[str, list[str], int]:
    """Scan expression code from `i`: (the code with every string literal blanked to
    ``""``, the bodies of those literals, the index just past the closing ``}`` when
    `nested`, else the end)."""
    n = len(text)
    if not nested and '"' not in text:
        return text[i:], [], n  # the common case: no string literal to skip
    if nested:
        close = text.find("}", i)
        if close >= 0 and '"' not in text[i:close] and "{" not in text[i:close]:
            return text[i:close], [], close + 1  # ${a.b}: nothing nested
    depth, start = 0, i
    bare: list[str] = []
    literals: list[str] = []
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i + 1)
            bare.append(text[start:i] + '""')
            literals.append(text[i + 1 : end - 1])
            i = start = end
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if nested and depth == 0:
                bare.append(text[start:i])
                return "".join(bare), literals, i + 1
            depth -= 1
        i += 1
    bare.append(text[start:])
    return "".join(bare), literals, n


def _string_end(text: str, i: int) -> int:
    """The index just past the quote closing the string whose body starts at `i`."""
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            return i + 1
        elif ch in "$%" and text.startswith("{", i + 1):
            i = _code(text, i + 2, nested=True)[2]  # a template inside the string
        elif ch in "$%" and text.startswith(ch + "{", i + 1):
            i += 3  # escaped
        else:
            i += 1
    return n


def template_addresses(text: str, names: frozenset[str] = frozenset()) -> Iterator[str]:
    """Element addresses a template string reads.

    `names` are local names in scope (iterators of enclosing ``dynamic`` blocks). A
    ``%{ for x in ... }`` directive brings ``x`` into scope up to its ``%{ endfor }``.
    """
    simple = _ONE_TRAVERSAL.fullmatch(text)
    if simple is not None:  # the fast path; test_refs checks it agrees with the scan
        address = _address_of((simple.group(1) or simple.group(2)).split("."), names)
        if address is not None:
            yield address
        return
    yield from _scanned_addresses(text, names)


def _scanned_addresses(text: str, names: frozenset[str]) -> Iterator[str]:
    scopes = [names]
    for expression in interpolations(text):
        directive = expression.strip().lstrip("~").strip()
        if directive.startswith("for ") or directive.startswith("for\t"):
            yield from referenced_addresses(expression, scopes[-1])
            found = {n for pair in _FOR_NAMES.findall(directive) for n in pair if n}
            scopes.append(scopes[-1] | found)
        elif directive.rstrip("~").strip() == "endfor":
            if len(scopes) > 1:
                scopes.pop()
        else:
            yield from referenced_addresses(expression, scopes[-1])


def referenced_addresses(expression: str, names: frozenset[str] = frozenset()
                         ) -> Iterator[str]:
    """Element addresses an expression reads, e.g. ``var.x``, ``hcloud_server.a``.

    Function names, string literals, built-ins (``each``, ``count``, ``self``,
    ``path``, ``terraform``), the encryption roots, the names a ``for`` expression
    binds and the local `names` in scope are not addresses.
    """
    bare, literals, _ = _code(expression, 0, nested=False)
    local_names = {name for pair in _FOR_NAMES.findall(bare) for name in pair if name}
    if local_names:
        names = names | local_names
    for literal in literals:  # templates nested in strings
        if "{" in literal:
            yield from template_addresses(literal, names)
    for match in _TRAVERSAL.finditer(bare):
        address = _address_of(match.group(0).split("."), names)
        if address is not None:
            yield address


def _address_of(parts: list[str], names: frozenset[str]) -> str | None:
    """The element address a traversal ``a.b.c`` starts with, if it names an element."""
    root = parts[0]
    if root in _BUILTIN_ROOTS or root in names:
        return None
    if root == "data":
        return f"data.{parts[1]}.{parts[2]}" if len(parts) >= 3 else None
    return f"{root}.{parts[1]}"
