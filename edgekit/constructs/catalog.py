"""What each cloud offers (regions, sizes, images, portable aliases), looked up by name.

The tables and their sources live with each cloud's adapter (`edgekit.clouds`, one module
per cloud); this module is the constructs' view of them. A region or size may be given
natively or as a portable alias (``tokyo``, ``small``); anything else is an error listing
the valid choices; a retired name is an error naming its replacement.
"""

from __future__ import annotations

from edgekit.clouds import CATALOGS, PROVIDERS, Catalog, CatalogError, cloud

__all__ = ["CATALOGS", "PROVIDERS", "Catalog", "CatalogError", "catalog", "resolve_image",
           "resolve_region", "resolve_size"]


def catalog(provider: str) -> Catalog:
    return cloud(provider).catalog


def resolve_region(provider: str, region: str) -> str:
    return catalog(provider).region(region)


def resolve_size(provider: str, size: str) -> str:
    return catalog(provider).size(size)


def resolve_image(provider: str, image: str) -> str | int:
    return catalog(provider).image(image)
