"""Committed tables of what each VPS provider offers, with portable aliases and sources.

A region or size may be given natively (``fsn1``, ``g6-standard-1``, ``vc2-2c-4gb``) or as a
portable alias (``tokyo``, ``small``). Anything else is an error listing the valid choices
for that provider; a retired name is an error naming its replacement. Every table says
where its facts come from (`Catalog.sources`): update both together.

What edgekit needs from a region: a private network (VPC) and cloud-init user data at first
boot (Linode: the Metadata service; nodes in Linode's legacy regions would never receive
their boot document).
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
    """Native region → a human name (only regions with a VPC and first-boot user data)."""
    region_aliases: dict[str, str]
    sizes: dict[str, str]
    """Native size → a human description (only sizes that can be ordered now)."""
    size_aliases: dict[str, str]
    images: dict[str, str | int]
    """Portable image name → the provider's image value."""
    sources: dict[str, str]
    """Which document each table (regions, sizes, images, retired) was checked against."""
    retired: dict[str, str] = attrs.field(factory=dict)
    """A name that used to be valid → why not any more, and what to use instead."""


CATALOGS: dict[str, Catalog] = {
    "hetzner": Catalog(
        provider="hetzner", tofu_provider="hcloud",
        regions={"fsn1": "Falkenstein", "nbg1": "Nuremberg", "hel1": "Helsinki",
                 "ash": "Ashburn", "hil": "Hillsboro", "sin": "Singapore"},
        region_aliases={"falkenstein": "fsn1", "nuremberg": "nbg1", "helsinki": "hel1",
                        "germany": "fsn1", "finland": "hel1", "us-east": "ash",
                        "us-west": "hil", "singapore": "sin"},
        sizes={"cx23": "2 vCPU Intel/AMD shared, 4 GB", "cx33": "4 vCPU shared, 8 GB",
               "cx43": "8 vCPU shared, 16 GB", "cx53": "16 vCPU shared, 32 GB",
               "cpx22": "2 vCPU AMD, 4 GB", "cpx32": "4 vCPU AMD, 8 GB",
               "cax11": "2 vCPU Arm, 4 GB", "cax21": "4 vCPU Arm, 8 GB"},
        size_aliases={"small": "cx23", "medium": "cx33", "large": "cx43"},
        images={"debian-12": "debian-12"},
        retired={
            **{old: f"Hetzner deprecated {old} on 2025-10-16 and stopped selling it in "
                    f"January 2026; use {new}" for old, new in
               (("cx22", "cx23"), ("cx32", "cx33"), ("cx42", "cx43"), ("cx52", "cx53"),
                ("cpx11", "cpx22"), ("cpx21", "cpx22"), ("cpx31", "cpx32"))},
        },
        sources={
            "sizes": "https://docs.hetzner.cloud/changelog#2025-10-16-server-types-deprecated "
                     "(cx22..cx52 and cpx11..cpx51 deprecated); hcloud provider docs "
                     "(data source hcloud_server_type example uses cx23)",
            "regions": "https://docs.hetzner.com/cloud/general/locations/",
            "images": "hcloud_server.image: the image name, `debian-12`",
            "retired": "https://docs.hetzner.cloud/changelog#2025-10-16-server-types-deprecated",
        },
    ),
    "linode": Catalog(
        provider="linode", tofu_provider="linode",
        regions={"jp-tyo-3": "Tokyo 3", "jp-osa": "Osaka", "sg-sin-2": "Singapore 2",
                 "de-fra-2": "Frankfurt 2", "us-iad": "Washington, DC",
                 "us-ord": "Chicago"},
        region_aliases={"tokyo": "jp-tyo-3", "osaka": "jp-osa", "singapore": "sg-sin-2",
                        "frankfurt": "de-fra-2", "washington": "us-iad",
                        "chicago": "us-ord"},
        sizes={"g6-nanode-1": "1 vCPU, 1 GB", "g6-standard-1": "1 vCPU, 2 GB",
               "g6-standard-2": "2 vCPU, 4 GB", "g6-standard-4": "4 vCPU, 8 GB"},
        size_aliases={"small": "g6-standard-1", "medium": "g6-standard-2",
                      "large": "g6-standard-4"},
        images={"debian-12": "linode/debian12"},
        retired={
            old: f"{old} is a legacy Linode region ({name}) without the Metadata service "
                 f"edgekit's first boot needs (cloud-init user data) and without VPCs; "
                 f"use {new}"
            for old, name, new in (("ap-northeast", "Tokyo 2", "jp-tyo-3 (tokyo)"),
                                   ("ap-south", "Singapore", "sg-sin-2 (singapore)"),
                                   ("eu-central", "Frankfurt", "de-fra-2 (frankfurt)"),
                                   ("us-east", "Newark", "us-iad"),
                                   ("us-west", "Fremont", "us-ord"))
        },
        sources={
            "regions": "Linode API GET /v4/regions `capabilities` (VPCs, Metadata) as listed "
                       "by https://techdocs.akamai.com/cloud-computing/docs/"
                       "overview-of-the-metadata-service (availability) and "
                       "https://techdocs.akamai.com/cloud-computing/docs/vpc (availability)",
            "sizes": "https://techdocs.akamai.com/cloud-computing/docs/shared-cpu-compute-"
                     "instances",
            "images": "linode/debian12: Metadata-compatible (cloud-init) Debian 12 image",
            "retired": "Linode regions API: legacy regions lack the Metadata capability",
        },
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
        sources={
            "regions": "Vultr API GET /v2/regions",
            "sizes": "Vultr API GET /v2/plans (type vc2)",
            "images": "Vultr API GET /v2/os: 2136 = Debian 12 x64 (bookworm)",
            "retired": "none",
        },
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
    if value in cat.retired:
        raise CatalogError(f"{cat.provider} {what} {value!r} cannot be used: "
                           f"{cat.retired[value]}")
    choices = ", ".join([*sorted(native), *(f"{a} (={t})" for a, t in sorted(aliases.items()))])
    raise CatalogError(f"unknown {what} {value!r} for {cat.provider}; expected one of: {choices}")
