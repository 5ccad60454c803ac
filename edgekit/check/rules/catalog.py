"""Regions and sizes a provider offers, from edgekit's committed catalogue."""

from __future__ import annotations

from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule
from edgekit.clouds import CATALOGS

# resource type -> (catalogue provider, region attribute, size attribute or "")
PLACED_TYPES: dict[str, tuple[str, str, str]] = {
    "hcloud_server": ("hetzner", "location", "server_type"),
    "hcloud_volume": ("hetzner", "location", ""),
    "linode_instance": ("linode", "region", "type"),
    "linode_vpc": ("linode", "region", ""),
    "vultr_instance": ("vultr", "region", "plan"),
    "vultr_vpc": ("vultr", "region", ""),
    "vultr_block_storage": ("vultr", "region", ""),
    "digitalocean_droplet": ("digitalocean", "region", "size"),
    "digitalocean_vpc": ("digitalocean", "region", ""),
    "digitalocean_volume": ("digitalocean", "region", ""),
}


@rule("EK151", title="regions and sizes are ones the provider offers (catalog.py)",
      severity="error",
      source="edgekit/clouds/<cloud>.py (committed per-cloud tables, read through "
      "edgekit/constructs/catalog.py)",
      fix="pick one of the listed values, or add the new one to the cloud's catalogue in "
      "edgekit/clouds/ with its source")
def region_size_available(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources(*PLACED_TYPES):
            provider, region_field, size_field = PLACED_TYPES[type_name]
            cat = CATALOGS.get(provider)
            if cat is None:
                continue
            checks = [(region_field, cat.regions, "region")]
            if size_field:
                checks.append((size_field, cat.sizes, "size"))
            for field, known, what in checks:
                value = body.get(field)
                if isinstance(value, str) and "${" not in value and value not in known:
                    yield stack.hit(address, f"{what} {value!r} is not offered by {provider} "
                                    f"(catalog.py: {', '.join(sorted(known))})", f"$.{field}")
