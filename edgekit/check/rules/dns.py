"""DNS: proxied hostnames the zone's certificate covers."""

from __future__ import annotations

from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule
from edgekit.check.walk import is_expression


def _zones(ctx: Context) -> dict[str, str]:
    """zone_id -> zone name, from the layouts (the zones constructs were given, or CUE's)."""
    return {zone_id: zone for layout in ctx.layouts for zone_id, zone in layout.zones.items()}


def depth_below(host: str, zone: str) -> int | None:
    """How many labels `host` has below `zone` (0 for the apex), None if outside it."""
    host, zone = host.lower().rstrip("."), zone.lower().rstrip(".")
    if host == zone:
        return 0
    if not host.endswith(f".{zone}"):
        return None
    return host[: -len(zone) - 1].count(".") + 1


@rule("EK161", title="proxied hostnames are at most one label below the zone",
      severity="error",
      source="https://developers.cloudflare.com/ssl/edge-certificates/universal-ssl/"
      "limitations/#hostname-coverage (Universal SSL covers the apex and one level)",
      fix="use <name>.<zone> (e.g. api-staging.example.com), or order an advanced "
      "certificate for the deeper name and suppress EK161 with that reason")
def proxied_too_deep(ctx: Context) -> Iterator[Hit]:
    zones = _zones(ctx)
    for stack in ctx.stacks:
        for _, address, body in stack.resources("cloudflare_dns_record"):
            name, zone_id = body.get("name"), body.get("zone_id")
            if body.get("proxied") is not True or not isinstance(name, str) or \
                    is_expression(name):
                continue
            zone = zones.get(zone_id) if isinstance(zone_id, str) else None
            if zone is None:  # no layout knows it: assume a two-label zone
                zone = ".".join(name.rstrip(".").split(".")[-2:])
            depth = depth_below(name, zone)
            if depth is not None and depth > 1:
                yield stack.hit(address, f"proxied hostname {name!r} is {depth} labels below "
                                f"the zone {zone!r}; Universal SSL covers one, so browsers "
                                "and Workers get a TLS error", "$.name")
