"""One module per concern; importing this package registers every rule."""

from edgekit.check.rules import (  # noqa: F401
    catalog,
    deploy,
    dns,
    documents,
    estate,
    lifecycle,
    names,
    network,
    secrets,
    stacks,
)
