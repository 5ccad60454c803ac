"""What every VPS-layer construct shares: validated props, the catalog, located errors."""

from __future__ import annotations

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
    """A provider-side name: the stack and the construct's path below it, dash-joined."""
    parts = construct.node.path.split("/")
    return "-".join(parts).lower().replace("_", "-")[:63]
