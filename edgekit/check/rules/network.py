"""Firewalls and addresses: nothing open to the internet, CIDRs that mean what they say,
port ranges in the format each provider parses. What a firewall of each cloud looks like in
the JSON is its adapter's (`edgekit.clouds.kinds`): no rule here names a cloud."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.layouts import primary
from edgekit.check.walk import blocks, is_expression, strings
from edgekit.clouds import kind_of
from edgekit.clouds.kinds import Inbound

WORLD = {"0.0.0.0/0", "::/0"}
CIDR_LIKE = re.compile(r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$")


def inbound_rules(stack: StackView) -> Iterator[tuple[str, Inbound]]:
    """(address, rule) of every inbound allow rule in the stack, read by the cloud adapter
    that owns the firewall's type (`Kind.inbound`; EK190 reports types no adapter knows)."""
    for type_name, address, body in stack.resources():
        kind = kind_of(type_name)
        if kind is not None and kind.inbound is not None:
            for found in kind.inbound(body):
                yield address, found


@rule("EK101", title="no inbound rule open to the whole internet",
      severity="error",
      source="adr/0001-edge-infrastructure.md (nodes accept no inbound traffic; "
      "cloudflared dials out)",
      fix="list the addresses that need access, or pass allow_from_anywhere=True with a "
      "reason to the Firewall (which records a suppression of EK101)")
def world_open_inbound(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for address, found in inbound_rules(stack):
            open_to = sorted(c for c in found.cidrs if c in WORLD)
            if open_to:
                yield stack.hit(address, f"inbound traffic allowed from {', '.join(open_to)} "
                                "(the whole internet)", found.pointer)


def _cidr_problem(text: str) -> str | None:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return f"{text!r} is not a valid CIDR ({err})"
        return (f"CIDR {text!r} has host bits set; the network is "
                f"{network.with_prefixlen}")
    return None


@rule("EK102", title="CIDRs are networks, without host bits",
      severity="error",
      source="https://docs.python.org/3/library/ipaddress.html#ipaddress.ip_network "
      "(strict); providers reject or silently widen such ranges",
      fix="write the network address (e.g. 203.0.113.0/24), or a /32 (/128) for one host")
def cidr_host_bits(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for _, address, body in stack.resources():
            for pointer, text in strings(body):
                if CIDR_LIKE.match(text):
                    problem = _cidr_problem(text)
                    if problem:
                        yield stack.hit(address, problem, pointer)


def _range_problem(text: str, pattern: re.Pattern[str], form: str) -> str | None:
    if not pattern.match(text):
        return f"port {text!r} is not in the provider's format: {form}"
    for part in re.split(r", ?", text):
        if part in ("any", "all"):
            continue
        numbers = [int(n) for n in re.split(r"[-:]", part)]
        if any(not 1 <= n <= 65535 for n in numbers):
            return f"port {text!r} is out of range 1-65535"
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            return f"port range {part!r} runs backwards"
    return None


@rule("EK103", title="firewall ports in the format each provider parses",
      severity="error",
      source="per resource type, the cloud adapter's `Kind.ports` (edgekit/clouds/<cloud>.py): "
      "vultr 2.32.0 vultr/resource_vultr_firewall_rule.go (port '22' or '1:65535'); "
      "hcloud docs/resources/firewall.md (port '80' or '80-85'); linode 3.13.0 "
      "docs/resources/firewall.md (ports '22, 80, 443' or ranges); digitalocean 2.99.1 "
      "docs/resources/firewall.md (port_range)",
      fix="write the port in the form the message names (vultr ranges use a colon, 1:65535; "
      "hetzner, linode and digitalocean a dash, 1-65535)")
def port_range_format(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            kind = kind_of(type_name)
            for spec in kind.ports if kind is not None else ():
                if spec.block is None:
                    checks: list[tuple[str, Any]] = [(f"$.{spec.field}", body.get(spec.field))]
                else:
                    checks = [(f"$.{spec.block}[{i}].{spec.field}", rule_.get(spec.field))
                              for i, rule_ in enumerate(blocks(body.get(spec.block)))]
                for pointer, value in checks:
                    if isinstance(value, str) and not is_expression(value):
                        problem = _range_problem(value, spec.pattern, spec.form)
                        if problem:
                            yield stack.hit(address, problem, pointer)


@rule("EK104", title="each provider's own apply-time checks of a resource (linode firewall "
      "rules: label 3-32 characters, address lists not empty)",
      severity="error",
      source="per resource type, the cloud adapter's `Kind.checks`: linode 3.13.0 "
      "linode/firewall/framework_schema_resource.go (rule label LengthBetween(3, 32); "
      "ipv4/ipv6 SizeAtLeast(1))",
      fix="see the message; e.g. give each linode firewall rule a label of 3-32 characters "
      "and leave out ipv4 or ipv6 when empty")
def provider_checks(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            kind = kind_of(type_name)
            for check in kind.checks if kind is not None else ():
                for pointer, message in check(body):
                    yield stack.hit(address, message, pointer)


def _firewall_of(address: str, found: Inbound) -> str:
    return found.firewall or address


@rule("EK188", title="the Postgres node's firewall admits no more than its private networks",
      severity="error",
      source="adr/0001-edge-infrastructure.md (Postgres is reachable from the private "
      "network only); the cloud adapters' `Kind.inbound` (edgekit/clouds/<cloud>.py)",
      fix="list only the node's private network ranges in the Firewall's private_cidrs (in "
      "{file}); reach Postgres from other clouds through a Mesh")
def postgres_firewall_wider(ctx: Context) -> Iterator[Hit]:
    layouts = {layout.stack: layout for layout in ctx.layouts if layout.origin == "constructs"}
    for stack in ctx.stacks:
        layout = layouts.get(stack.name)
        pg = primary(layout) if layout is not None else None
        node = layout.nodes.get(pg) if layout is not None and pg is not None else None
        if layout is None or node is None or node.firewall is None:
            continue
        private = [ipaddress.ip_network(n.cidr) for key in node.networks
                   if (n := layout.networks.get(key)) is not None and n.cidr is not None]
        for address, found in inbound_rules(stack):
            if _firewall_of(address, found) != node.firewall or found.port == "22":
                continue
            for cidr in found.cidrs:
                if is_expression(cidr) or _cidr_problem(cidr):
                    continue  # a peer's address (the mesh), or EK102's
                network = ipaddress.ip_network(cidr)
                if not any(network.version == p.version and network.subnet_of(p)  # type: ignore[arg-type]
                           for p in private):
                    within = ", ".join(map(str, private)) or "none"
                    yield Hit(message=f"the firewall of the Postgres node {pg!r} admits "
                              f"{cidr} (port {found.port or 'any'}), wider than its private "
                              f"networks ({within})", stack=stack.name,
                              path=stack.path_of(address), address=address,
                              pointer=found.pointer, key="",
                              files={"file": layout.file, "services_file": layout.file})


@rule("EK126", title="a tunnel routes at least one hostname (not only the 404 catch-all)",
      severity="error",
      source="https://developers.cloudflare.com/cloudflare-one/networks/connectors/"
      "cloudflare-tunnel/configure-tunnels/local-management/configuration-file/ (ingress "
      "rules; the last one catches everything)",
      fix="place at least one service on the tunnel's node(s) in {file}, or drop the "
      "tunnel")
def tunnel_serves_only_404(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for _, address, body in stack.resources(
                "cloudflare_zero_trust_tunnel_cloudflared_config"):
            config = body.get("config")
            ingress = blocks(config.get("ingress") if isinstance(config, dict) else None)
            if ingress and not any(rule_.get("hostname") for rule_ in ingress):
                yield stack.hit(address, "the tunnel's ingress has no hostname rule: every "
                                "request gets the catch-all "
                                f"({ingress[-1].get('service', '?')})", "$.config.ingress")
