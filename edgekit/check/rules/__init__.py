"""One module per concern; importing this package registers every rule."""

from edgekit.check.engine import REGISTRY, Rule
from edgekit.check.rules import (  # noqa: F401  (importing a module registers its rules)
    buckets,
    catalog,
    clouds,
    deploy,
    dns,
    documents,
    edge,
    edge_logs,
    estate,
    lifecycle,
    names,
    network,
    ownership,
    plan,
    secrets,
    stacks,
)


def catalogue() -> list[Rule]:
    """Every rule, by id."""
    return [REGISTRY[key] for key in sorted(REGISTRY)]
