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

from edgekit.constructs.base import check_cidrs, label, listed, validated
from edgekit.constructs.props import FirewallProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref


class Firewall(Construct):
    """A firewall that drops all inbound traffic from the internet; only admin SSH from the
    CIDRs listed and traffic between private networks get through. `VpsNode` makes one for
    each node unless given one.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import Firewall
    >>> fw = Firewall(stack, "fw", provider="linode", admin_ssh_cidrs=["203.0.113.7/32"],
    ...               private_cidrs=["10.0.0.0/16"], private_ports=[5432])
    >>> fw.resource.type
    'linode_firewall'
    """
    def __init__(self, scope: Construct, id: str, *, provider: str,
                 admin_ssh_cidrs: Sequence[str] = (), private_cidrs: Sequence[str] = (),
                 private_ports: Sequence[int] = (), allow_from_anywhere: bool = False,
                 reason: str | None = None) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "Firewall", FirewallProps, {
            "name": id, "provider": provider,
            "admin_ssh_cidrs": listed(self, "admin_ssh_cidrs", admin_ssh_cidrs),
            "private_cidrs": listed(self, "private_cidrs", private_cidrs),
            "private_ports": listed(self, "private_ports", private_ports),
        })
        check_cidrs(self, "admin_ssh_cidrs", self.props.admin_ssh_cidrs)
        check_cidrs(self, "private_cidrs", self.props.private_cidrs)
        if allow_from_anywhere:
            if not reason or not reason.strip():
                raise ConstructError(f"[{self.node.path}] allow_from_anywhere=True needs a "
                                     "reason (it is printed with every check and synth)")
            # an explicit, visible exception to rule EK101 (no inbound from the internet)
            self.node.suppress("EK101", reason=reason)
        elif reason is not None:
            raise ConstructError(f"[{self.node.path}] reason is only for "
                                 "allow_from_anywhere=True")
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
                "inbound": [linode_rule(r) for r in rules],
            })
        else:
            self.resource = Resource(self, "Resource", type="vultr_firewall_group",
                                     config={"description": name})
            self.vultr_rules: list[Resource] = []
            for i, rule in enumerate(rules):
                for j, cidr in enumerate(rule["cidrs"]):
                    net = ipaddress.ip_network(cidr)
                    self.vultr_rules.append(Resource(
                        self, f"rule-{i}-{j}", type="vultr_firewall_rule", config={
                        "firewall_group_id": self.resource.attr("id"),
                        "protocol": rule["protocol"], "port": rule["port"].replace("-", ":"),
                        "ip_type": "v6" if net.version == 6 else "v4",
                        "subnet": str(net.network_address), "subnet_size": net.prefixlen,
                        "notes": rule["why"],
                    }))
        if not allow_from_anywhere:  # else: the explicit, suppressed exception to EK101
            self.node.add_assertion(
                "firewall-closed", self._no_source_is(["0.0.0.0/0", "::/0"]),
                "no inbound rule admits the whole internet (0.0.0.0/0 or ::/0)")

    def promise_private_only(self, name: str, message: str) -> None:
        """Add the assertion that every inbound rule but admin SSH (port 22) admits only
        this firewall's private networks (e.g. for the Postgres node)."""
        private = _hcl_list(self.props.private_cidrs)
        address = self.resource.address
        if self.provider == "hetzner":
            condition = (f"alltrue([for r in {address}.rule : r.port == \"22\" || "
                         f"length(setsubtract(r.source_ips, {private})) == 0])")
        elif self.provider == "linode":
            condition = (f"alltrue([for r in {address}.inbound : r.ports == \"22\" || "
                         f"length(setsubtract(concat(r.ipv4 == null ? [] : r.ipv4, "
                         f"r.ipv6 == null ? [] : r.ipv6), {private})) == 0])")
        else:
            rules = ", ".join(r.address for r in self.vultr_rules)
            condition = (f"alltrue([for r in [{rules}] : r.port == \"22\" || "
                         f"contains({private}, format(\"%s/%d\", r.subnet, r.subnet_size))])")
        self.node.add_assertion(name, condition, message)

    def _no_source_is(self, cidrs: list[str]) -> str:
        """An OpenTofu condition: no inbound rule of this firewall admits any of `cidrs`."""
        banned = _hcl_list(cidrs)
        address = self.resource.address
        if self.provider == "hetzner":
            return (f"alltrue([for r in {address}.rule : length(setintersection("
                    f"r.source_ips == null ? [] : r.source_ips, {banned})) == 0])")
        if self.provider == "linode":
            return (f'{address}.inbound_policy == "DROP" && alltrue([for r in '
                    f"{address}.inbound : length(setintersection(concat(r.ipv4 == null ? [] "
                    f": r.ipv4, r.ipv6 == null ? [] : r.ipv6), {banned})) == 0])")
        rules = ", ".join(r.address for r in self.vultr_rules)
        return (f"alltrue([for r in [{rules}] : !contains({banned}, "
                f"format(\"%s/%d\", r.subnet, r.subnet_size))])")

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


def linode_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One ``inbound`` block of a ``linode_firewall``. The provider's validators (run by
    ``tofu validate``) want a 3-32 character label and non-empty ``ipv4``/``ipv6`` lists
    when given, so an address family without CIDRs is left out."""
    body: dict[str, Any] = {
        "label": f"{rule['why'].replace(' ', '-')}-{rule['port']}",
        "action": "ACCEPT", "protocol": rule["protocol"].upper(), "ports": rule["port"],
    }
    for family, cidrs in (("ipv4", [c for c in rule["cidrs"] if ":" not in c]),
                          ("ipv6", [c for c in rule["cidrs"] if ":" in c])):
        if cidrs:
            body[family] = cidrs
    return body


def _hcl_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"
