"""Stack → OpenTofu JSON document, read top to bottom:

    aspects → render elements → check addresses and references → terraform block
    → overrides → (the app adds schema checks) → document

Nothing here touches the disk; every problem is collected, none raised early.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import attrs

from edgekit.core.construct import Construct, TestAssertion, tree_has_aspects
from edgekit.core.elements import (
    DataSource,
    Element,
    Local,
    Module,
    Output,
    Provider,
    Resource,
    Variable,
)
from edgekit.core.errors import Problem
from edgekit.core.gcpause import gc_paused, thaw
from edgekit.core.overrides import apply_override
from edgekit.core.refs import Known, Ref
from edgekit.core.render import RenderError, find_reads, render, rendering_stack
from edgekit.core.stack import Stack
from edgekit.core.version import edgekit_version


@attrs.frozen(kw_only=True)
class ProviderPin:
    """Where a provider comes from and the exact version a stack requires."""

    name: str
    source: str
    version: str


@attrs.frozen
class Rendered:
    """One element and its body as plain JSON data."""

    element: Element
    body: Any


class RenderedList(Sequence[Rendered]):
    """Every element of a stack with its body, in tree order. Kept as two lists and paired
    when read: at 100,000 elements a `Rendered` object each is 5 MB held for nothing."""

    __slots__ = ("_bodies", "_elements")

    def __init__(self) -> None:
        self._elements: list[Element] = []
        self._bodies: list[Any] = []

    def append(self, element: Element, body: Any) -> None:
        self._elements.append(element)
        self._bodies.append(body)

    def __len__(self) -> int:
        return len(self._elements)

    @overload
    def __getitem__(self, index: int) -> Rendered: ...

    @overload
    def __getitem__(self, index: slice) -> list[Rendered]: ...

    def __getitem__(self, index: int | slice) -> Rendered | list[Rendered]:
        if isinstance(index, slice):
            return [Rendered(e, b) for e, b in zip(self._elements[index], self._bodies[index],
                                                   strict=True)]
        return Rendered(self._elements[index], self._bodies[index])

    def __iter__(self) -> Iterator[Rendered]:
        return map(Rendered, self._elements, self._bodies)

    def pairs(self) -> Iterator[tuple[Element, Any]]:
        return zip(self._elements, self._bodies, strict=True)


def rendered_pairs(rendered: Sequence[Rendered]) -> Iterator[tuple[Element, Any]]:
    """(element, body) of every rendered element, without a `Rendered` each if it can."""
    if isinstance(rendered, RenderedList):
        return rendered.pairs()
    return ((item.element, item.body) for item in rendered)


@attrs.define
class StackResult:
    stack: Stack
    document: dict[str, Any]
    rendered: Sequence[Rendered]
    providers: list[str]
    problems: list[Problem]
    warnings: list[Problem] = attrs.field(factory=list)
    foreign: list[Ref | Known] = attrs.field(factory=list)
    """References to elements of other stacks (read through their remote state), and
    `Known` values of other stacks (written as literals; dependencies only)."""
    assertions: list[TestAssertion] = attrs.field(factory=list)
    """The promises of the stack's constructs (``node.add_assertion``), in tree order."""


def run_aspects(root: Construct) -> None:
    """One documented pass: every aspect visits its construct and all descendants.

    Constructs are visited in tree order (depth first, insertion order). Aspects
    registered on an ancestor run before those registered lower down. Constructs
    an aspect adds are not visited in the same pass.
    """
    if not tree_has_aspects(root):
        return  # no aspect anywhere (the common case): nothing can add one either
    constructs = root.node.find_all()
    for construct in constructs:
        inherited = [a for scope in construct.node.scopes for a in scope.node.aspects]
        for aspect in inherited:
            aspect.visit(construct)


BUILTIN_PROVIDER = "terraform"
"""OpenTofu's built-in provider (``terraform_data``, ``terraform_remote_state``): needs no
pin, no download, no mock."""


def provider_name(resource_type: str) -> str:
    """The provider a resource or data source type belongs to: its first word
    (``hcloud_server`` → ``hcloud``), as OpenTofu infers it without a `provider` argument."""
    return resource_type.split("_", 1)[0]


def split_address(address: str) -> tuple[str, str]:
    """An address as (root, name): ``hcloud_server.web`` → (``hcloud_server``, ``web``),
    ``data.hcloud_image.debian`` → (``data.hcloud_image``, ``debian``), ``provider.hcloud.eu``
    → (``provider``, ``hcloud.eu``). Names (logical ids) hold no dot."""
    if address.startswith("provider."):
        return "provider", address[9:]
    root, _, name = address.rpartition(".")
    return root, name


class Owners:
    """The elements of a stack by address, kept as root → name → element: a large stack's
    elements are looked up without an address string made and held for each of them."""

    __slots__ = ("_data_roots", "_roots")

    def __init__(self) -> None:
        self._roots: dict[str, dict[str, Element]] = {}
        self._data_roots: dict[str, str] = {}  # type → "data.<type>", made once per type

    def _key(self, element: Element) -> tuple[str, str]:
        kind = type(element)
        if kind is Resource and isinstance(element, Resource):
            return element.type, element.logical_id
        if kind is DataSource and isinstance(element, DataSource):
            root = self._data_roots.get(element.type)
            if root is None:
                root = self._data_roots[element.type] = f"data.{element.type}"
            return root, element.logical_id
        if kind in _ROOTED:
            return element.address_root, element.logical_id
        return split_address(element.address)  # any other element: as it says

    def add(self, element: Element) -> Element | None:
        """Add `element`; if its address is taken, add nothing and return the owner."""
        root, name = self._key(element)
        names = self._roots.get(root)
        if names is None:
            names = self._roots[root] = {}
        other = names.get(name)
        if other is None:
            names[name] = element
        return other

    def __contains__(self, address: str) -> bool:
        root, name = split_address(address)
        names = self._roots.get(root)
        return names is not None and name in names

    def missing(self, reads: Iterable[str]) -> tuple[str, ...]:
        """The addresses of `reads` that name no element (yet)."""
        roots, found = self._roots, []
        for address in reads:
            root, name = split_address(address)
            names = roots.get(root)
            if names is None or name not in names:
                found.append(address)
        return tuple(found)

    def addresses(self) -> list[str]:
        return [element.address for names in self._roots.values()
                for element in names.values()]


_ROOTED = frozenset({Variable, Output, Local, Module})
"""Element classes whose address is ``<address_root>.<logical id>``."""


@gc_paused
def synth_stack(stack: Stack, pins: Mapping[str, ProviderPin]) -> StackResult:
    thaw()  # the tree is built: what growing it froze goes back to the collector
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    rendered = RenderedList()
    owners = Owners()
    reads_by_element: list[tuple[Element, Any, tuple[str, ...]]] = []
    used_providers: set[str] = set()
    provider_configs: set[str] = set()
    moved: list[dict[str, str]] = []
    foreign: list[Ref | Known] = []
    imports: list[dict[str, str]] = []

    constructs = list(stack.node.walk())
    renamed = False  # does any construct have an old id (else no element has an old address)
    resource_types: set[str] = set()  # their providers are used
    keep_element, keep_body = rendered._elements.append, rendered._bodies.append
    tables: dict[tuple[str, str], dict[str, Any]] = {}  # (section, type) → its bodies
    assertions: list[TestAssertion] = []
    reads: set[str] = set()  # what the element being rendered reads
    with rendering_stack(stack.name, foreign):  # one context for every element
        for construct in constructs:
            node = construct.node
            rare = node._rare
            if rare is not None and rare.renamed_from:
                renamed = True
            if node._assertions:
                assertions.extend(node._assertions)
            if construct.is_stack and construct is not stack:
                problems.append(Problem(path=node.path,
                                        message="stacks cannot be nested inside other stacks"))
                continue
            if rare is not None and rare.validations:
                for message in node.validate():
                    problems.append(Problem(path=node.path, message=message))
            if not isinstance(construct, Element):
                continue
            element = construct
            other = owners.add(element)
            if other is not None:
                problems.append(Problem(
                    path=node.path, address=element.address,
                    message=f"address collides with {other.node.path}; give one of them "
                    "another id",
                ))
                continue
            reads.clear()  # one set for every element: a large tree makes no garbage here
            try:
                body, owned = element.body_to_render()
                body = render(body, reads, owned=owned)
            except RenderError as err:
                problems.append(Problem(path=node.path, address=element.address,
                                        message=err.message, pointer=err.pointer))
                continue
            except (ValueError, IndexError, TypeError) as err:
                problems.append(Problem(path=node.path, address=element.address,
                                        message=f"override failed: {err}"))
                continue
            if isinstance(element, Resource):  # also a DataSource
                resource_types.add(element.type)
                if isinstance(body, dict) and "depends_on" in body:
                    reads.update(body["depends_on"])
                # Kept for the end only what may fail there: reads of addresses not seen
                # yet (most read an element created before them), and aliased providers.
                pending = owners.missing(reads) if reads else ()
                if pending or (isinstance(body, dict) and "provider" in body):
                    reads_by_element.append((element, body, pending))
                table = tables.get((element.section, element.type))
                if table is None:
                    table = tables[element.section, element.type] = \
                        sections.setdefault(element.section, {}).setdefault(element.type, {})
                table[element.logical_id] = body
                if element.import_id is not None:
                    if isinstance(element, DataSource):
                        problems.append(Problem(path=node.path, address=element.address,
                                                message="a data source cannot be imported; "
                                                "drop import_id"))
                    else:
                        imports.append({"to": element.address, "id": element.import_id})
            else:
                if isinstance(element, Provider):
                    used_providers.add(element.type)
                    provider_configs.add(element.meta_ref)
                pending = owners.missing(reads) if reads else ()
                if pending:
                    reads_by_element.append((element, body, pending))
                _place(sections, element, body)
            keep_element(element)
            keep_body(body)

    for type_name in resource_types:
        if provider_name(type_name) != BUILTIN_PROVIDER:
            used_providers.add(provider_name(type_name))
    if renamed:
        for element in rendered._elements:
            if isinstance(element, Resource | Module) and not isinstance(element, DataSource):
                old = element.old_address()
                if old is not None:
                    moved.append({"from": old, "to": element.address})

    problems.extend(_check_reads(reads_by_element, owners, provider_configs))

    document: dict[str, Any] = {
        "//": {
            "metadata": {
                "generator": f"edgekit {edgekit_version()}",
                "note": "Generated by edgekit from stacks/; do not edit by hand.",
                "stackName": stack.name,
                "backend": next(iter(stack.state.backend(stack.name))),
            }
        },
        "terraform": _terraform_block(stack, used_providers, pins, problems),
    }
    if stack.encryption is not None:
        variable = stack.encryption.passphrase_variable
        if f"var.{variable}" in owners:
            problems.append(Problem(path=stack.node.path,
                                    message=f"variable {variable!r} is reserved for state "
                                    "encryption; rename yours"))
        sections.setdefault("variable", {})[variable] = stack.encryption.variable()
    document.update(sections)
    if moved:
        document["moved"] = sorted(moved, key=lambda m: (m["to"], m["from"]))
    if imports:
        document["import"] = sorted(imports, key=lambda m: m["to"])
    for path, value in stack.overrides:
        try:
            apply_override(document, path, value, copy_on_write=True)  # bodies are shared
        except (ValueError, IndexError) as err:
            problems.append(Problem(path=stack.node.path, message=f"override failed: {err}"))
    return StackResult(stack, document, rendered, sorted(used_providers), problems,
                       foreign=foreign, assertions=assertions)


def _place(sections: dict[str, Any], element: Element, body: Any) -> None:
    table: dict[str, Any] | None = sections.get(element.section)
    if table is None:
        table = sections[element.section] = {}
    if isinstance(element, Resource):  # also DataSource
        by_type: dict[str, Any] | None = table.get(element.type)
        if by_type is None:
            by_type = table[element.type] = {}
        by_type[element.logical_id] = body
    elif isinstance(element, Provider):
        table.setdefault(element.type, []).append(body)
    else:
        table[element.logical_id] = body


def _check_reads(
    reads_by_element: Iterable[tuple[Element, Any, tuple[str, ...]]],
    owners: Owners,
    provider_configs: set[str],
) -> list[Problem]:
    problems: list[Problem] = []
    for element, body, reads in reads_by_element:
        for address in sorted(reads):
            if address in owners:
                continue
            if address.startswith("var.") and _is_encryption_var(element, address):
                continue
            pointers = list(find_reads(body, address)) or ["$.depends_on"]
            for pointer in pointers:
                problems.append(Problem(
                    path=element.node.path, address=element.address, pointer=pointer,
                    message=f"reference to {address}, which is not in stack "
                    f"{element.stack.node.id!r}" + _hint(address, owners, element.address),
                ))
        if isinstance(element, Resource) and isinstance(body, dict):
            meta = body.get("provider")
            if isinstance(meta, str) and "." in meta and meta not in provider_configs:
                problems.append(Problem(
                    path=element.node.path, address=element.address, pointer="$.provider",
                    message=f"provider configuration {meta!r} is not in the stack",
                ))
    return problems


def _is_encryption_var(element: Element, address: str) -> bool:
    encryption = getattr(element.stack, "encryption", None)
    return encryption is not None and address == f"var.{encryption.passphrase_variable}"


def _hint(address: str, owners: Owners, own: str) -> str:
    candidates = [a for a in owners.addresses() if a != own]
    import difflib  # only when a reference is dangling

    close = difflib.get_close_matches(address, candidates, n=1, cutoff=0.8)
    return f"; did you mean {close[0]}?" if close else ""


def _terraform_block(
    stack: Stack,
    used: set[str],
    pins: Mapping[str, ProviderPin],
    problems: list[Problem],
) -> dict[str, Any]:
    required: dict[str, Any] = {}
    for name in sorted(used):
        pin = pins.get(name)
        if pin is None:
            problems.append(Problem(
                path=stack.node.path,
                message=f"provider {name!r} is not pinned by edgekit (pinned: "
                f"{', '.join(sorted(pins))}); resource types must start with a pinned "
                "provider's name",
            ))
            continue
        required[name] = {"source": pin.source, "version": f"= {pin.version}"}
    block: dict[str, Any] = {
        "required_version": stack.required_version,
        "required_providers": required,
        "backend": stack.state.backend(stack.name),
    }
    if stack.encryption is not None:
        block["encryption"] = stack.encryption.block()
    return block


Check = Callable[[StackResult], list[Problem]]
"""A check over a synthesized stack (e.g. provider schemas); returns problems."""

