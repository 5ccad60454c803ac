"""One module per concern; importing this package registers every rule."""

from edgekit.check.rules import (  # noqa: F401
    buckets,
    catalog,
    dns,
    documents,
    edge_logs,
    estate,
    lifecycle,
    names,
    network,
    secrets,
    stacks,
)
