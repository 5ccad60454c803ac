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
        # Only for stacks that are really applied on this machine (tests, local files).
        ProviderPin(name="local", source="hashicorp/local", version="2.9.0"),
        ProviderPin(name="cloudflare", source="cloudflare/cloudflare", version="5.24.0"),
        # The module proxy refuses these three: tools/build.sh builds them from the
        # source tarballs in EDGEKIT_GO_SRC (or installs them from the tool bundle).
        ProviderPin(name="linode", source="linode/linode", version="3.13.0"),
        ProviderPin(name="vultr", source="vultr/vultr", version="2.32.0"),
        ProviderPin(name="digitalocean", source="digitalocean/digitalocean", version="2.99.1"),
    )
}


def pin_for(name: str) -> ProviderPin:
    try:
        return PINS[name]
    except KeyError:
        pinned = ", ".join(sorted(PINS))
        raise KeyError(f"provider {name!r} is not pinned (pinned: {pinned})") from None


MOCK_DEFAULTS: dict[str, dict[str, str]] = {
    # hcloud ids are numbers that other resources take as numbers (server_id,
    # network_id); `tofu test`'s random mock strings would not convert.
    "hcloud": {"id": "1001"},
    # linode ids are numbers too (vpc_id, firewall_id, linode_id take numbers).
    "linode": {"id": "1002"},
    # digitalocean droplet ids are numbers where other resources take them (droplet_id,
    # droplet_ids); its other ids are strings, which "1003" also is.
    "digitalocean": {"id": "1003"},
}
"""Defaults for mocked resources of a provider in the generated `tofu test` file."""

MOCK_TYPE_DEFAULTS: dict[str, dict[str, object]] = {
    # Public addresses other resources validate as IPs (the WireGuard mesh's firewall
    # rules, ADR 0010); documentation addresses (RFC 5737), never reachable.
    "hcloud_server": {"ipv4_address": "203.0.113.11"},
    "linode_instance": {"ipv4": ["203.0.113.21"]},
    "vultr_instance": {"main_ip": "203.0.113.31"},
    "digitalocean_droplet": {"ipv4_address": "203.0.113.41"},
    # reserved IP assignments validate ip_address as IPv4 (IsIPv4Address)
    "digitalocean_reserved_ip": {"ip_address": "203.0.113.42"},
}
"""Per resource type, merged over `MOCK_DEFAULTS` in the generated `tofu test` file."""
