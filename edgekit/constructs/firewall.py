"""Firewall: closed by default. No inbound from the internet at all; outbound open.

The only inbound exceptions are admin SSH from explicit CIDRs and traffic between nodes
of the private networks (optionally only some ports). Asking for a public port is not
possible through this construct, by design.

hetzner: ``hcloud_firewall`` (no inbound rule means all inbound is dropped; no outbound
rule means all outbound is allowed); linode: ``linode_firewall`` with
``inbound_policy = DROP``; vultr: ``vultr_firewall_group`` + ``vultr_firewall_rule``
(a group drops what no rule accepts).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from edgekit.constructs.base import label, validated
from edgekit.constructs.props import FirewallProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.refs import Ref


class Firewall(Construct):
    def __init__(self, scope: Construct, id: str, *, provider: str,
                 admin_ssh_cidrs: Sequence[str] = (), private_cidrs: Sequence[str] = (),
                 private_ports: Sequence[int] = ()) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Firewall", FirewallProps, {
            "name": id, "provider": provider, "admin_ssh_cidrs": list(admin_ssh_cidrs),
            "private_cidrs": list(private_cidrs), "private_ports": list(private_ports),
        })
        self.provider = self.props.provider
        rules = self._rules()
        name = label(self)
        if self.provider == "hetzner":
            self.resource = Resource(self, "Resource", type="hcloud_firewall", config={
                "name": name,
                "rule": [{"direction": "in", "protocol": r["protocol"], "port": r["port"],
                          "source_ips": r["cidrs"], "description": r["why"]} for r in rules],
            })
        elif self.provider == "linode":
            self.resource = Resource(self, "Resource", type="linode_firewall", config={
                "label": name, "inbound_policy": "DROP", "outbound_policy": "ACCEPT",
                "inbound": [_linode_rule(i, r) for i, r in enumerate(rules)],
            })
        else:
            self.resource = Resource(self, "Resource", type="vultr_firewall_group",
                                     config={"description": name})
            for i, rule in enumerate(rules):
                for j, cidr in enumerate(rule["cidrs"]):
                    net = ipaddress.ip_network(cidr)
                    Resource(self, f"rule-{i}-{j}", type="vultr_firewall_rule", config={
                        "firewall_group_id": self.resource.attr("id"),
                        "protocol": rule["protocol"],
                        "port": rule["port"].replace("-", ":"),
                        "ip_type": "v6" if net.version == 6 else "v4",
                        "subnet": str(net.network_address), "subnet_size": net.prefixlen,
                        "notes": rule["why"],
                    })

    def _rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        if self.props.admin_ssh_cidrs:
            rules.append({"protocol": "tcp", "port": "22", "why": "admin ssh",
                          "cidrs": list(self.props.admin_ssh_cidrs)})
        if self.props.private_cidrs:
            ports = [str(p) for p in self.props.private_ports] or ["1-65535"]
            for port in ports:
                rules.append({"protocol": "tcp", "port": port, "why": "private network",
                              "cidrs": list(self.props.private_cidrs)})
        return rules

    @property
    def id_ref(self) -> Ref:
        return self.resource.attr("id")


def _linode_rule(index: int, rule: dict[str, Any]) -> dict[str, Any]:
    """A linode_firewall inbound rule. The provider's validators (linode 3.13.0,
    linode/firewall/framework_schema_resource.go): `label` 3-32 characters, `ipv4`/`ipv6`
    absent or non-empty."""
    out: dict[str, Any] = {"label": f"rule-{index}-{rule['why'].replace(' ', '-')}"[:32],
                           "action": "ACCEPT", "protocol": rule["protocol"].upper(),
                           "ports": rule["port"]}
    for key, cidrs in (("ipv4", [c for c in rule["cidrs"] if ":" not in c]),
                       ("ipv6", [c for c in rule["cidrs"] if ":" in c])):
        if cidrs:
            out[key] = cidrs
    return out
