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

How the port is opened is the node's cloud adapter's (`Cloud.open_mesh`): a firewall of
its own where a rule on the node's firewall would read the other servers' addresses while
they read its firewall (a cycle), otherwise rules on the node's firewall.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from edgekit.constructs.node import VpsNode
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, stack_of
from edgekit.core.errors import ConstructError

INTERFACE = "wg-edgekit"
ENDPOINTS_OUTPUT = "mesh_endpoints"


def public_ip_expression(node: VpsNode) -> str:
    """The expression (without ``${}``) of a node's public IPv4 (`Cloud.public_ip_attribute`)."""
    return node.cloud.public_ip_expression(node.resource)


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
        promise = (f"the WireGuard port of {name} admits UDP {port} from the other mesh "
                   "nodes' public addresses only")
        node.cloud.open_mesh(self, id=name, label=f"{stack_of(self).node.id}-{name}-mesh",
                             server=node.resource, firewall=node.firewall.parts, port=port,
                             sources=sources, why=why, promise=promise)

