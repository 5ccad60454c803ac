"""One module per concern; importing this package registers every rule."""

from edgekit.check.rules import (  # noqa: F401
    catalog,
    dns,
    documents,
    estate,
    lifecycle,
    names,
    network,
    ownership,
    plan,
    secrets,
    stacks,
)
