"""Committed tables of what each VPS provider offers, with portable aliases.

A region or size may be given natively (``fsn1``, ``g6-standard-1``, ``vc2-2c-4gb``) or as a
portable alias (``tokyo``, ``small``). Anything else is an error listing the valid choices
for that provider. Update these tables when a provider adds a location or plan.
"""

from __future__ import annotations

from typing import Literal

import attrs

ProviderName = Literal["hetzner", "linode", "vultr"]
PROVIDERS: tuple[ProviderName, ...] = ("hetzner", "linode", "vultr")


@attrs.frozen(kw_only=True)
class Catalog:
    provider: ProviderName
    tofu_provider: str
    regions: dict[str, str]
    """Native region → a human name."""
    region_aliases: dict[str, str]
    sizes: dict[str, str]
    """Native size → a human description."""
    size_aliases: dict[str, str]
    images: dict[str, str | int]
    """Portable image name → the provider's image value."""


CATALOGS: dict[str, Catalog] = {
    "hetzner": Catalog(
        provider="hetzner", tofu_provider="hcloud",
        regions={"fsn1": "Falkenstein", "nbg1": "Nuremberg", "hel1": "Helsinki",
                 "ash": "Ashburn", "hil": "Hillsboro", "sin": "Singapore"},
        region_aliases={"falkenstein": "fsn1", "nuremberg": "nbg1", "helsinki": "hel1",
                        "germany": "fsn1", "finland": "hel1", "us-east": "ash",
                        "us-west": "hil", "singapore": "sin"},
        sizes={"cx22": "2 vCPU, 4 GB", "cx32": "4 vCPU, 8 GB", "cx42": "8 vCPU, 16 GB",
               "cpx11": "2 vCPU AMD, 2 GB", "cpx21": "3 vCPU AMD, 4 GB"},
        size_aliases={"small": "cx22", "medium": "cx32", "large": "cx42"},
        images={"debian-12": "debian-12"},
    ),
    "linode": Catalog(
        provider="linode", tofu_provider="linode",
        regions={"ap-northeast": "Tokyo", "jp-osa": "Osaka", "ap-south": "Singapore",
                 "eu-central": "Frankfurt", "us-east": "Newark", "us-west": "Fremont"},
        region_aliases={"tokyo": "ap-northeast", "osaka": "jp-osa", "singapore": "ap-south",
                        "frankfurt": "eu-central", "newark": "us-east"},
        sizes={"g6-nanode-1": "1 vCPU, 1 GB", "g6-standard-1": "1 vCPU, 2 GB",
               "g6-standard-2": "2 vCPU, 4 GB", "g6-standard-4": "4 vCPU, 8 GB"},
        size_aliases={"small": "g6-standard-1", "medium": "g6-standard-2",
                      "large": "g6-standard-4"},
        images={"debian-12": "linode/debian12"},
    ),
    "vultr": Catalog(
        provider="vultr", tofu_provider="vultr",
        regions={"nrt": "Tokyo", "itm": "Osaka", "sgp": "Singapore", "fra": "Frankfurt",
                 "ewr": "New Jersey", "lax": "Los Angeles"},
        region_aliases={"tokyo": "nrt", "osaka": "itm", "singapore": "sgp",
                        "frankfurt": "fra", "new-jersey": "ewr"},
        sizes={"vc2-1c-2gb": "1 vCPU, 2 GB", "vc2-2c-4gb": "2 vCPU, 4 GB",
               "vc2-4c-8gb": "4 vCPU, 8 GB"},
        size_aliases={"small": "vc2-1c-2gb", "medium": "vc2-2c-4gb", "large": "vc2-4c-8gb"},
        images={"debian-12": 2136},  # Vultr os_id of Debian 12 x64
    ),
}


class CatalogError(ValueError):
    pass


def catalog(provider: str) -> Catalog:
    found = CATALOGS.get(provider)
    if found is None:
        raise CatalogError(f"unknown provider {provider!r}; expected one of: "
                           f"{', '.join(PROVIDERS)}")
    return found


def resolve_region(provider: str, region: str) -> str:
    cat = catalog(provider)
    return _resolve(cat, "region", region, cat.regions, cat.region_aliases)


def resolve_size(provider: str, size: str) -> str:
    cat = catalog(provider)
    return _resolve(cat, "size", size, cat.sizes, cat.size_aliases)


def resolve_image(provider: str, image: str) -> str | int:
    cat = catalog(provider)
    if image in cat.images:
        return cat.images[image]
    raise CatalogError(f"unknown image {image!r} for {provider}; expected one of: "
                       f"{', '.join(sorted(cat.images))}")


def _resolve(cat: Catalog, what: str, value: str, native: dict[str, str],
             aliases: dict[str, str]) -> str:
    if value in native:
        return value
    if value in aliases:
        return aliases[value]
    choices = ", ".join([*sorted(native), *(f"{a} (={t})" for a, t in sorted(aliases.items()))])
    raise CatalogError(f"unknown {what} {value!r} for {cat.provider}; expected one of: {choices}")
