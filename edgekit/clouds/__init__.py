"""Cloud adapters: one module per cloud behind one interface (`Cloud`, ADR 0018).

`cloud(name)` returns the adapter the constructs call; `CLOUDS` maps every supported
provider name to its adapter. Adding a cloud: a module here with its `Catalog` and a
`Cloud` subclass, its entry in `CLOUDS`, its pin in `edgekit.providers.pins`, its name in
CUE's ``#Provider``.
"""

from __future__ import annotations

from edgekit.clouds import digitalocean, hetzner, linode, vultr
from edgekit.clouds.base import Catalog, CatalogError, Cloud

CLOUDS: dict[str, Cloud] = {c.name: c for c in (hetzner.CLOUD, linode.CLOUD, vultr.CLOUD,
                                                digitalocean.CLOUD)}
PROVIDERS: tuple[str, ...] = tuple(CLOUDS)
CATALOGS: dict[str, Catalog] = {name: c.catalog for name, c in CLOUDS.items()}


def cloud(name: str) -> Cloud:
    """The adapter of `name`, or a `CatalogError` listing the supported clouds."""
    found = CLOUDS.get(name)
    if found is None:
        raise CatalogError(f"unknown provider {name!r}; expected one of: {', '.join(PROVIDERS)}")
    return found


__all__ = ["CATALOGS", "CLOUDS", "PROVIDERS", "Catalog", "CatalogError", "Cloud", "cloud"]
