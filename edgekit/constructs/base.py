"""What every VPS-layer construct shares: validated props, the catalog, located errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, TypeVar

from edgekit.constructs.catalog import CatalogError
from edgekit.core.construct import Construct
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
