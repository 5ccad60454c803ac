"""What the rules over layouts share: a located hit, and what is placed where.

A layout is the CUE estate's environment or a Python stack, in one shape
(`edgekit.constructs.facts`); a hit names the construct path (or the CUE export), the
pointer, and the file the user edits, and carries its message as its key, so a fault that
the CUE estate and the constructs built from it both show is reported once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgekit.check.engine import Hit

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import Layout, PlacementFact, Where
    from edgekit.constructs.values import Service


def hit(layout: Layout, where: Where, message: str, suffix: str = "") -> Hit:
    at = where.at(suffix) if suffix else where
    return Hit(message=message, stack=layout.stack, path=at.path, address=at.address,
               pointer=at.pointer, key=message,
               files={"file": layout.file, "services_file": layout.services_file})


def placed(fact: PlacementFact) -> Iterator[tuple[str, int, str, Service | None]]:
    """(node, index, service name, the service if given) of every entry, in order."""
    for node, names in sorted(fact.placement.items()):
        for index, name in enumerate(names):
            yield node, index, name, fact.services.get(name)


def primary(layout: Layout) -> str | None:
    """The node the Postgres primary runs on: a PgPrimary's, else the node with the
    ``postgres`` role; None when Postgres is managed or there is none."""
    if any(p.node is None for p in layout.postgres):
        return None
    for fact in layout.postgres:
        return fact.node
    return next((n for n, node in sorted(layout.nodes.items()) if "postgres" in node.roles),
                None)


def has_postgres(layout: Layout) -> bool:
    return bool(layout.postgres) or any("postgres" in n.roles for n in layout.nodes.values())
