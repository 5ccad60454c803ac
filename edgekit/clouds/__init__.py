"""Cloud adapters: one module per cloud behind one interface (`Cloud`, ADR 0018, ADR 0030).

`cloud(name)` returns the adapter the constructs call; `CLOUDS` maps every supported
provider name to its adapter; `kind_of(resource_type)` is what the check rules know about a
resource type of any cloud. Adding a cloud: a module here with its `Catalog`, its `Kind`
table and a `Cloud` subclass, and its name in `CloudName` and `CLOUDS` below; outside this
package only its provider build (``tools/versions.env``), its committed provider schema
(``edgekit/schema/data``, `make schemas`) and its name in CUE's ``#Provider``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast, get_args

from edgekit.clouds import digitalocean, hetzner, linode, vultr
from edgekit.clouds.base import Catalog, CatalogError, Cloud
from edgekit.clouds.kinds import Kind

CloudName = Literal["hetzner", "linode", "vultr", "digitalocean"]
"""The name of a supported cloud: a typo is refused by the type checker (a test keeps it
equal to `CLOUDS` and to CUE's ``#Provider``)."""

CLOUDS: dict[str, Cloud] = {c.name: c for c in (hetzner.CLOUD, linode.CLOUD, vultr.CLOUD,
                                                digitalocean.CLOUD)}
PROVIDERS: tuple[CloudName, ...] = cast(tuple[CloudName, ...], get_args(CloudName))
CATALOGS: dict[str, Catalog] = {name: c.catalog for name, c in CLOUDS.items()}


def cloud(name: str) -> Cloud:
    """The adapter of `name`, or a `CatalogError` listing the supported clouds."""
    found = CLOUDS.get(name)
    if found is None:
        raise CatalogError(f"unknown provider {name!r}; expected one of: {', '.join(CLOUDS)}")
    return found


_BY_PREFIX: dict[str, Cloud] = {}
_INDEXED: list[tuple[str, ...]] = [()]


def cloud_of_type(resource_type: str) -> Cloud | None:
    """The cloud whose OpenTofu provider owns `resource_type` (``hcloud_server`` → Hetzner),
    or None (Cloudflare, random, ...: not a cloud adapter's)."""
    if _INDEXED[0] != tuple(CLOUDS):  # (re)built when a cloud is registered
        _BY_PREFIX.clear()
        _BY_PREFIX.update({c.tofu_provider: c for c in CLOUDS.values()})
        _INDEXED[0] = tuple(CLOUDS)
    return _BY_PREFIX.get(resource_type.split("_", 1)[0])


def kind_of(resource_type: str) -> Kind | None:
    """What the rules know about `resource_type`, or None when no cloud describes it."""
    owner = cloud_of_type(resource_type)
    return owner.kinds.get(resource_type) if owner is not None else None


@contextmanager
def registered(adapter: Cloud) -> Iterator[Cloud]:
    """`adapter` is a supported cloud inside the block (tests register a fake cloud the way
    a fifth cloud's module would be registered)."""
    if adapter.name in CLOUDS:
        raise ValueError(f"cloud {adapter.name!r} is registered already")
    CLOUDS[adapter.name] = adapter
    CATALOGS[adapter.name] = adapter.catalog
    try:
        yield adapter
    finally:
        del CLOUDS[adapter.name], CATALOGS[adapter.name]


__all__ = [
    "CATALOGS",
    "CLOUDS",
    "PROVIDERS",
    "Catalog",
    "CatalogError",
    "Cloud",
    "CloudName",
    "Kind",
    "cloud",
    "cloud_of_type",
    "kind_of",
    "registered",
]
