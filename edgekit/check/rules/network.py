"""Firewalls and addresses: nothing open to the internet, CIDRs that mean what they say,
port ranges in the format each provider parses."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import blocks, is_expression, strings, text_list

WORLD = {"0.0.0.0/0", "::/0"}
CIDR_LIKE = re.compile(r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$")


def _inbound(stack: StackView) -> Iterator[tuple[str, str, list[str]]]:
    """(address, pointer, source CIDRs) of every inbound allow rule in the stack."""
    for type_name, address, body in stack.resources():
        if type_name == "hcloud_firewall":
            for i, rule_ in enumerate(blocks(body.get("rule"))):
                if rule_.get("direction") == "in":
                    yield address, f"$.rule[{i}].source_ips", text_list(rule_.get("source_ips"))
        elif type_name == "linode_firewall":
            if body.get("inbound_policy") == "ACCEPT":
                yield address, "$.inbound_policy", ["0.0.0.0/0"]
            for i, rule_ in enumerate(blocks(body.get("inbound"))):
                if rule_.get("action") == "ACCEPT":
                    cidrs = text_list(rule_.get("ipv4")) + text_list(rule_.get("ipv6"))
                    yield address, f"$.inbound[{i}]", cidrs
        elif type_name == "vultr_firewall_rule":
            subnet, size = body.get("subnet"), body.get("subnet_size")
            if isinstance(subnet, str) and isinstance(size, int):
                yield address, "$.subnet", [f"{subnet}/{size}"]
        elif type_name == "digitalocean_firewall":
            for i, rule_ in enumerate(blocks(body.get("inbound_rule"))):
                yield (address, f"$.inbound_rule[{i}].source_addresses",
                       text_list(rule_.get("source_addresses")))


@rule("EK101", title="no inbound rule open to the whole internet",
      severity="error",
      source="adr/0001-edge-infrastructure.md (nodes accept no inbound traffic; "
      "cloudflared dials out)",
      fix="list the addresses that need access, or pass allow_from_anywhere=True with a "
      "reason to the Firewall (which records a suppression of EK101)")
def world_open_inbound(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for address, pointer, cidrs in _inbound(stack):
            open_to = sorted(c for c in cidrs if c in WORLD)
            if open_to:
                yield stack.hit(address, f"inbound traffic allowed from {', '.join(open_to)} "
                                "(the whole internet)", pointer)


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


HCLOUD_PORT = re.compile(r"^(any|[0-9]{1,5}(-[0-9]{1,5})?)$")
VULTR_PORT = re.compile(r"^[0-9]{1,5}(:[0-9]{1,5})?$")
DO_PORT = re.compile(r"^(all|[0-9]{1,5}(-[0-9]{1,5})?)$")
LINODE_PORTS = re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?(, ?[0-9]{1,5}(-[0-9]{1,5})?)*$")


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


PORT_FIELDS: dict[str, tuple[str, str, re.Pattern[str], str]] = {
    "hcloud_firewall": ("rule", "port", HCLOUD_PORT, "'80', '80-85' or 'any'"),
    "linode_firewall": ("inbound", "ports", LINODE_PORTS, "'22', '80, 443' or '1000-2000'"),
    "digitalocean_firewall": ("inbound_rule", "port_range", DO_PORT, "'22', '1-65535' or 'all'"),
}


@rule("EK103", title="firewall ports in the format each provider parses",
      severity="error",
      source="vultr 2.32.0 vultr/resource_vultr_firewall_rule.go (port '22' or '1:65535'); "
      "hcloud docs/resources/firewall.md (port '80' or '80-85'); linode 3.13.0 "
      "docs/resources/firewall.md (ports '22, 80, 443' or ranges); digitalocean 2.99.1 "
      "docs/resources/firewall.md (port_range)",
      fix="vultr ranges use a colon (1:65535), hetzner/linode/digitalocean a dash (1-65535)")
def port_range_format(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for type_name, address, body in stack.resources():
            if type_name == "vultr_firewall_rule":
                checks: list[tuple[str, Any, re.Pattern[str], str]] = [
                    ("$.port", body.get("port"), VULTR_PORT, "'22' or '1:65535'")]
            elif type_name in PORT_FIELDS:
                block, field, pattern, form = PORT_FIELDS[type_name]
                checks = [(f"$.{block}[{i}].{field}", rule_.get(field), pattern, form)
                          for i, rule_ in enumerate(blocks(body.get(block)))]
            else:
                continue
            for pointer, value, pattern, form in checks:
                if isinstance(value, str) and not is_expression(value):
                    problem = _range_problem(value, pattern, form)
                    if problem:
                        yield stack.hit(address, problem, pointer)


@rule("EK104", title="linode firewall rules: label 3-32 characters, address lists not empty",
      severity="error",
      source="linode 3.13.0 linode/firewall/framework_schema_resource.go (rule label "
      "LengthBetween(3, 32); ipv4/ipv6 SizeAtLeast(1))",
      fix="give each rule a label of 3-32 characters; leave out ipv4 or ipv6 when empty")
def linode_firewall_rules(ctx: Context) -> Iterator[Hit]:
    for stack in ctx.stacks:
        for _, address, body in stack.resources("linode_firewall"):
            for direction in ("inbound", "outbound"):
                for i, rule_ in enumerate(blocks(body.get(direction))):
                    label = rule_.get("label")
                    if isinstance(label, str) and not is_expression(label) and \
                            not 3 <= len(label) <= 32:
                        yield stack.hit(address, f"rule label {label!r} is {len(label)} "
                                        "characters; expected 3-32",
                                        f"$.{direction}[{i}].label")
                    for family in ("ipv4", "ipv6"):
                        if rule_.get(family) == []:
                            yield stack.hit(address, f"{family} is an empty list; the "
                                            "provider wants at least one address (or no "
                                            f"{family} at all)", f"$.{direction}[{i}].{family}")


@rule("EK126", title="a tunnel routes at least one hostname (not only the 404 catch-all)",
      severity="error",
      source="https://developers.cloudflare.com/cloudflare-one/networks/connectors/"
      "cloudflare-tunnel/configure-tunnels/local-management/configuration-file/ (ingress "
      "rules; the last one catches everything)",
      fix="place at least one service on the tunnel's node(s) in cue/envs.cue, or drop the "
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
