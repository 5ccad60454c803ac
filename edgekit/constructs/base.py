"""What every VPS-layer construct shares: validated props, the catalog, located errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from edgekit.clouds import CatalogError
from edgekit.core.construct import Construct
from edgekit.core.elements import DataSource, Resource
from edgekit.core.errors import ConstructError
from edgekit.schema.props import structure

P = TypeVar("P")


def validated(construct: Construct, definition: str, cls: type[P], data: dict[str, Any]) -> P:
    """Props checked against CUE's ``#<definition>`` JSON Schema, as an attrs instance."""
    return structure(definition, cls, {k: v for k, v in data.items() if v is not None},
                     construct.node.path)


def located(construct: Construct, err: CatalogError | ValueError) -> ConstructError:
    return ConstructError(f"[{construct.node.path}] {err}")


def label(construct: Construct) -> str:
    """A provider-side name: the stack and the construct's path below it, dash-joined.

    Never truncated: a name too long for a provider is reported by check rule EK141, and
    two paths that map to one name (case, '_' vs '-') by EK142, each naming both paths."""
    parts = construct.node.path.split("/")
    return "-".join(parts).lower().replace("_", "-")


def listed(construct: Construct, name: str, value: Iterable[Any]) -> list[Any]:
    """A list property as a list; a lone string is refused (it would split into characters)."""
    if isinstance(value, str | bytes):
        raise ConstructError(f"[{construct.node.path}] {name} must be a list of strings, got "
                             f"the string {value!r}; write [{value!r}]")
    return list(value)


def check_cidrs(construct: Construct, name: str, cidrs: Iterable[str]) -> None:
    """CIDRs must be networks: ``203.0.113.7/24`` (host bits set) is refused, not widened."""
    bad = []
    for index, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            try:
                network = ipaddress.ip_network(cidr, strict=False).with_prefixlen
            except ValueError:
                bad.append(f"{cidr!r} is not a network @ $.{name}[{index}]")
            else:
                bad.append(f"{cidr!r} has host bits set (the network is {network}, one host "
                           f"is {cidr.split('/')[0]}/{'32' if ':' not in cidr else '128'})"
                           f" @ $.{name}[{index}]")
    if bad:
        raise ConstructError(f"[{construct.node.path}] {name}: " + "; ".join(bad))


DEFAULT_CHILD_IDS = ("Resource", "Default")
"""The id of a construct's main resource (its `VpsNode` server, a `Firewall`'s firewall)."""


def adopt(construct: Construct, import_ids: Mapping[str, str]) -> None:
    """Adopt objects that already exist into the resources below `construct`: synth emits
    an OpenTofu ``import`` block for each (as ``Resource(..., import_id=...)`` does), so
    the next apply takes them over instead of creating them. Works for every construct
    without it knowing: call it after the construct is built.

    Each key names one resource below `construct`: its path relative to `construct`
    (``""`` for the construct's own main resource, ``"firewall"`` for a child construct's
    main resource, ``"firewall/Resource"`` in full), or its address
    (``<server type>.edge_1``, as `edgekit plan` prints it). Each value is the provider's
    import id (``edgekit import --type T --id ID`` checks one).

    >>> from edgekit import PROVIDERS, App, LocalState, Stack, VpsNode
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> node = VpsNode(stack, "edge-1", provider=PROVIDERS[0], region="singapore",
    ...                size="small")
    >>> adopt(node, {"": "4711", "firewall": "815"})
    >>> [r.import_id for r in node.node.walk() if isinstance(r, Resource)]
    ['815', '4711']
    """
    chosen = {key: _resource_at(construct, key) for key in import_ids}
    for key, resource in chosen.items():
        value = import_ids[key]
        where = f"[{resource.node.path}] ({resource.address})"
        if isinstance(resource, DataSource):
            raise ConstructError(f"{where} a data source cannot be imported; adopt names "
                                 "resources only")
        if not isinstance(value, str) or not value:
            raise ConstructError(f"{where} the import id must be a non-empty string, got "
                                 f"{value!r} @ import_ids[{key!r}]")
        if resource.import_id not in (None, value):
            raise ConstructError(f"{where} already imports {resource.import_id!r}; "
                                 f"cannot also import {value!r}")
    for key, resource in chosen.items():  # all checked first: nothing half adopted
        resource.import_id = import_ids[key]


def _resource_at(construct: Construct, key: str) -> Resource:
    base = construct.node.path
    below = [c for c in construct.node.walk() if isinstance(c, Resource)]
    if "." in key:
        found = [r for r in below if r.address == key]
    else:
        target = f"{base}/{key}" if key else base
        found = [r for r in below if r.node.path == target]
        if not found:
            found = [r for r in below if r.node.path in
                     {f"{target}/{child}" for child in DEFAULT_CHILD_IDS}]
    if len(found) == 1:
        return found[0]
    known = ", ".join(f"{r.node.path[len(base) + 1:]} ({r.address})"
                      for r in below) or "none"
    raise ConstructError(f"[{base}] adopt: no resource {key!r} below it; its resources: "
                         f"{known}")
