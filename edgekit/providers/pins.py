"""Exact provider versions every stack requires.

These must equal the pins in ``tools/versions.env`` (the binaries the tests build
and the schemas in ``edgekit/schema/data`` come from); a test keeps them equal.
"""

from __future__ import annotations

from edgekit.core.synth import ProviderPin

PINS: dict[str, ProviderPin] = {
    pin.name: pin
    for pin in (
        ProviderPin(name="hcloud", source="hetznercloud/hcloud", version="1.68.0"),
        ProviderPin(name="random", source="hashicorp/random", version="3.9.0"),
        ProviderPin(name="cloudflare", source="cloudflare/cloudflare", version="5.24.0"),
    )
}


def pin_for(name: str) -> ProviderPin:
    try:
        return PINS[name]
    except KeyError:
        pinned = ", ".join(sorted(PINS))
        raise KeyError(f"provider {name!r} is not pinned (pinned: {pinned})") from None
