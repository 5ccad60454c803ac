"""Mesh: every node of an environment in one WireGuard mesh, whatever its provider (ADR 0010).

Pure planning (`MeshPlan`, `peers_of`, `wg_setconf`; an environment's plan is made by
`edgekit.estate.mesh_plan`) and the `Mesh` construct, which opens the WireGuard port of each
node's provider firewall to the public addresses of the other mesh nodes only — the one,
explicit exception to the closed firewall — and outputs those addresses (plain values,
imported back into CUE as endpoints).

Addresses come from CUE: ``mesh.cidr`` + each node's ``mesh_host``. Private keys are made on
the node at first boot and never leave it; public keys come back into CUE
(``envs.<env>.mesh.public_keys``, via ``edgekit mesh import-keys``,
`edgekit.cue.mesh_keys`). A peer whose key or endpoint is not known yet is left out of the
others' configuration until it is.

    hetzner  an hcloud_firewall of its own + hcloud_firewall_attachment (a rule on the node's
             firewall would read the other servers' addresses while they read its firewall:
             a cycle)
    linode   an inbound rule on the node's linode_firewall
    vultr    vultr_firewall_rule(s) in the node's firewall group
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from edgekit.constructs.node import VpsNode
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Resource, stack_of
from edgekit.core.errors import ConstructError

INTERFACE = "wg-edgekit"
ENDPOINTS_OUTPUT = "mesh_endpoints"
PUBLIC_IP_ATTRIBUTE = {"hetzner": "ipv4_address", "linode": "ipv4", "vultr": "main_ip"}
"""linode: `ipv4` is the set of the instance's IPv4 addresses (`ip_address` is deprecated);
with a VPC interface the VPC address is not in it, so its one element is the public one."""


def public_ip_expression(node: VpsNode) -> str:
    """The expression (without ``${}``) of a node's public IPv4."""
    ref = node.resource.attr(PUBLIC_IP_ATTRIBUTE[node.provider]).expression
    return f"tolist({ref})[0]" if node.provider == "linode" else ref


class MeshError(ValueError):
    """A mesh CUE cannot describe: duplicate or out-of-range host numbers."""


@attrs.frozen(kw_only=True)
class MeshPlan:
    cidr: str
    port: int
    addresses: dict[str, str]
    """node -> mesh address (no prefix length), for the nodes in the mesh."""
    public_keys: dict[str, str]

    def address(self, node: str) -> str:
        return self.addresses[node]


def peers_of(plan: MeshPlan, node: str, endpoints: Mapping[str, str]) -> list[dict[str, Any]]:
    """The peers of `node`: every other mesh node whose public key and endpoint are known.
    Each may send from its own mesh address only (AllowedIPs = address/32)."""
    peers = []
    for name, address in sorted(plan.addresses.items()):
        key, host = plan.public_keys.get(name), endpoints.get(name)
        if name == node or key is None or host is None:
            continue
        peers.append({"name": name, "publicKey": key, "allowedIPs": [f"{address}/32"],
                      "endpoint": f"{host}:{plan.port}", "endpointHost": host,
                      "persistentKeepalive": 25})
    return peers


def wg_setconf(plan: MeshPlan, node: str, endpoints: Mapping[str, str],
               private_key_file: str) -> str:
    """The peers of `node` in ``wg setconf`` form (what NixOS' networking.wireguard sets up
    from the same data); the private key is read from its file on the node, never written."""
    with open(private_key_file) as handle:  # the node's own key file, for `wg setconf`
        private_key = handle.read().strip()
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {plan.port}"]
    for peer in peers_of(plan, node, endpoints):
        lines += ["", "[Peer]", f"PublicKey = {peer['publicKey']}",
                  f"AllowedIPs = {', '.join(peer['allowedIPs'])}",
                  f"Endpoint = {peer['endpoint']}",
                  f"PersistentKeepalive = {peer['persistentKeepalive']}"]
    return "\n".join(lines) + "\n"


class Mesh(Construct):
    """Opens each mesh node's WireGuard port to the other mesh nodes' public addresses."""

    def __init__(self, scope: Construct, id: str, *, plan: MeshPlan,
                 nodes: Mapping[str, VpsNode]) -> None:
        super().__init__(scope, id)
        self.plan = plan
        members = {n: nodes[n] for n in sorted(plan.addresses) if n in nodes}
        missing = sorted(set(plan.addresses) - set(members))
        if missing:
            raise ConstructError(f"[{self.node.path}] mesh nodes {', '.join(missing)} are "
                                 "not nodes of this stack")
        self.public_ips = {n: public_ip_expression(node) for n, node in members.items()}
        for name, node in members.items():
            others = [ip for other, ip in self.public_ips.items() if other != name]
            if others:
                self._open(name, node, others)
            node.boot["mesh"] = {"interface": INTERFACE, "address": plan.address(name),
                                 "cidr": plan.cidr, "port": plan.port}
        Output(stack_of(self), ENDPOINTS_OUTPUT,
               value={n: f"${{{ip}}}" for n, ip in self.public_ips.items()},
               description="Public IPv4 of every mesh node (WireGuard endpoints).")

    def _open(self, name: str, node: VpsNode, sources: Sequence[str]) -> None:
        """Open the mesh port to `sources` (the other nodes' public IPv4 expressions), and
        promise in the generated `tofu test` that it is open to nothing else."""
        port, why = str(self.plan.port), "wireguard mesh"
        cidrs = [f"${{{expr}}}/32" for expr in sources]
        peers = ", ".join(f'format("%s/32", {expr})' for expr in sources)
        promise = (f"the WireGuard port of {name} admits UDP {port} from the other mesh "
                   "nodes' public addresses only")
        if node.provider == "hetzner":
            firewall = Resource(self, f"{name}-firewall", type="hcloud_firewall", config={
                "name": f"{stack_of(self).node.id}-{name}-mesh",
                "rule": [{"direction": "in", "protocol": "udp", "port": port,
                          "source_ips": cidrs, "description": why}]})
            Resource(self, f"{name}-attachment", type="hcloud_firewall_attachment", config={
                "firewall_id": firewall.attr("id"), "server_ids": [node.id_ref]})
            firewall.node.add_assertion("mesh-peers-only", (
                f'alltrue([for r in {firewall.address}.rule : r.protocol == "udp" && '
                f'r.port == "{port}" && length(setsubtract(r.source_ips, [{peers}])) == 0])'),
                promise)
        elif node.provider == "linode":
            resource = node.firewall.resource
            inbound = resource.config.setdefault("inbound", [])
            inbound.append({"label": "wireguard-mesh", "action": "ACCEPT", "protocol": "UDP",
                            "ports": port, "ipv4": cidrs})
            node.firewall.node.add_assertion("mesh-peers-only", (
                f'alltrue([for r in {resource.address}.inbound : r.label != "wireguard-mesh" '
                f'|| (r.protocol == "UDP" && r.ports == "{port}" && length(setsubtract('
                f"r.ipv4 == null ? [] : r.ipv4, [{peers}])) == 0 && "
                "length(r.ipv6 == null ? [] : r.ipv6) == 0)])"), promise)
        else:
            rules = [Resource(self, f"{name}-rule-{index}", type="vultr_firewall_rule", config={
                "firewall_group_id": node.firewall.id_ref, "protocol": "udp",
                "port": port, "ip_type": "v4", "subnet": f"${{{expr}}}",
                "subnet_size": 32, "notes": why}) for index, expr in enumerate(sources)]
            addresses = ", ".join(r.address for r in rules)
            rules[0].node.add_assertion("mesh-peers-only", (
                f'alltrue([for r in [{addresses}] : r.protocol == "udp" && r.port == "{port}" '
                f"&& r.subnet_size == 32 && contains([{', '.join(sources)}], r.subnet)])"),
                promise)
