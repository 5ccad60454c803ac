"""Regions and sizes a provider offers, from edgekit's committed catalogue."""

from __future__ import annotations

from collections.abc import Iterator

from edgekit.check.engine import Context, Hit, rule
from edgekit.clouds import cloud_of_type


@rule("EK151", title="regions and sizes are ones the provider offers (its adapter's catalogue)",
      severity="error",
      source="edgekit/clouds/<cloud>.py (committed per-cloud tables; which arguments hold "
      "a region or size is the adapter's `Kind.region`/`Kind.size`)",
      fix="pick one of the listed values, or add the new one to the cloud's catalogue in "
      "edgekit/clouds/ with its source")
def region_size_available(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            owner = cloud_of_type(type_name)
            kind = owner.kinds.get(type_name) if owner is not None else None
            if owner is None or kind is None:
                continue
            provider, cat = owner.name, owner.catalog
            checks = [(field, known, what) for field, known, what in (
                (kind.region, cat.regions, "region"), (kind.size, cat.sizes, "size"))
                if field is not None]
            for field, known, what in checks:
                value = body.get(field)
                if isinstance(value, str) and "${" not in value and value not in known:
                    offered = ", ".join(sorted(known))
                    yield stack.hit(address, f"{what} {value!r} is not offered by {provider} "
                                    f"(edgekit/clouds/{provider}.py: {offered})", f"$.{field}")
