"""Promises about Cloudflare resources, checked by the generated ``tofu test``.

Each function takes the resource that makes the promise and attaches the assertion to it
(``node.add_assertion``), so the promise sits next to the resource that keeps it. The
firewall's promises live in ``firewall.py`` beside its provider-specific rules.
"""

from __future__ import annotations

from edgekit.core.elements import Resource


def tunnel_ends_with_catch_all(config: Resource) -> None:
    """A tunnel's ingress must end with a rule without hostname: cloudflared refuses a
    configuration whose last rule matches only some hostnames."""
    ingress = f"{config.address}.config.ingress"
    last = f"{ingress}[length({ingress}) - 1]"
    config.node.add_assertion(
        "tunnel-catch-all",
        f'{last}.hostname == null && startswith({last}.service, "http_status:")',
        "the tunnel's ingress must end with a catch-all rule (no hostname, http_status:404)")


def dns_record_proxied(record: Resource) -> None:
    """A public hostname is only reachable through Cloudflare: its record is proxied."""
    record.node.add_assertion(
        "dns-proxied", f"{record.address}.proxied == true",
        "every public hostname's DNS record is proxied through Cloudflare")
