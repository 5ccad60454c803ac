"""Mesh: nodes on any clouds in one WireGuard mesh, a private path between them (ADR 0010).

Pure planning (`plan_mesh` → `MeshPlan`, `peers_of`, `wg_setconf`, `hba_lines`) and the
public `Mesh` construct, which opens the WireGuard port of each node's provider firewall to
the public addresses of the other mesh nodes only — the one, explicit exception to the
closed firewall —, puts the node's mesh address into its boot document, and outputs the
public addresses (plain values; the reference estate imports them back into CUE as
endpoints). Services on one cloud reach a Postgres primary on another through it: the check
rule EK181 counts two nodes of one mesh as a private path.

A node's address is the mesh's network address + its host number: given (the reference
estate's ``mesh_host`` in CUE, `edgekit.estate.mesh_plan`) or, by default, 1, 2, ... in the
order the nodes are given. Private keys are made on the node at first boot and never leave
it; public keys come back as `public_keys` (in the reference estate through ``edgekit mesh
import-keys``, `edgekit.cue.mesh_keys`). A peer whose key or endpoint is not known yet is
left out of the others' configuration until it is.

How the port is opened is the node's cloud adapter's (`Cloud.open_mesh`): a firewall of
its own where a rule on the node's firewall would read the other servers' addresses while
they read its firewall (a cycle), otherwise rules on the node's firewall.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from edgekit.constructs.facts import MeshFact, Where, layout_of
from edgekit.constructs.node import VpsNode
from edgekit.constructs.values import Service
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, stack_of
from edgekit.core.errors import ConstructError

INTERFACE = "wg-edgekit"
ENDPOINTS_OUTPUT = "mesh_endpoints"
DEFAULT_CIDR = "10.100.0.0/24"
DEFAULT_PORT = 51820


def public_ip_expression(node: VpsNode) -> str:
    """The expression (without ``${}``) of a node's public IPv4 (`Cloud.public_ip_attribute`)."""
    return node.cloud.public_ip_expression(node.resource)


class MeshError(ValueError):
    """A mesh that cannot be: duplicate or out-of-range host numbers, keys of strangers."""


@attrs.frozen(kw_only=True)
class MeshPlan:
    cidr: str
    port: int
    addresses: dict[str, str]
    """node -> mesh address (no prefix length), for the nodes in the mesh."""
    public_keys: dict[str, str]

    def address(self, node: str) -> str:
        return self.addresses[node]


def plan_mesh(*, cidr: str, port: int, hosts: Mapping[str, int],
              public_keys: Mapping[str, str] | None = None) -> MeshPlan:
    """The mesh of `hosts` (node → host number): each node's address, every problem at
    once in one `MeshError`."""
    network = ipaddress.ip_network(cidr)
    addresses: dict[str, str] = {}
    owner: dict[int, str] = {}
    problems = []
    for name, host in sorted(hosts.items()):
        if host in owner:
            problems.append(f"nodes {owner[host]} and {name} both have mesh_host {host}; "
                            "each node needs its own")
            continue
        if not 1 <= host < network.num_addresses - 1:
            problems.append(f"node {name}: mesh_host {host} is outside {network} "
                            f"(1..{network.num_addresses - 2})")
            continue
        owner[host] = name
        addresses[name] = str(network.network_address + host)
    keys = dict(public_keys or {})
    unknown = sorted(set(keys) - set(addresses))
    if unknown:
        problems.append(f"public_keys for {', '.join(unknown)}, not in the mesh")
    if problems:
        raise MeshError("; ".join(problems))
    return MeshPlan(cidr=str(network), port=port, addresses=addresses, public_keys=keys)


def hba_lines(plan: MeshPlan, services: Mapping[str, Service],
              placement: Mapping[str, Sequence[str]], also: Sequence[str] = ()) -> list[str]:
    """pg_hba lines admitting, over TLS only (``hostssl``; ADR 0025), per service role
    exactly the mesh addresses of the nodes that service is placed on, then the lines
    `also` (e.g. Hyperdrive's role from the primary's own address); then no other TCP
    login."""
    lines = ["# edgekit: each service's role, from the mesh addresses of its nodes only"]
    for node, placed in sorted(placement.items()):
        for name in sorted(placed):
            service = services.get(name)
            if service is None or service.pg_role is None or node not in plan.addresses:
                continue
            lines.append(f"hostssl {service.pg_database} {service.pg_role} "
                         f"{plan.addresses[node]}/32 scram-sha-256")
    lines += [*also, "host all all 0.0.0.0/0 reject", "host all all ::/0 reject"]
    return lines


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
    """`nodes` (on any clouds) in one WireGuard mesh: each node's WireGuard port opened to
    the other mesh nodes' public addresses only, its mesh address in its boot document,
    the public addresses as the output ``mesh_endpoints``. `hosts` gives node → host number
    (default 1, 2, ... in the order given), `public_keys` the keys the nodes published.

    >>> from edgekit import PROVIDERS, App, LocalState, Mesh, Stack, VpsNode
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> web = VpsNode(stack, "web-1", provider=PROVIDERS[0], region="singapore", size="small")
    >>> db = VpsNode(stack, "db", provider=PROVIDERS[-1], region="singapore", size="small")
    >>> mesh = Mesh(stack, "mesh", nodes=[db, web])
    >>> mesh.address("db"), mesh.address("web-1")
    ('10.100.0.1', '10.100.0.2')
    """

    def __init__(self, scope: Construct, id: str, *, nodes: Sequence[VpsNode],
                 cidr: str = DEFAULT_CIDR, port: int = DEFAULT_PORT,
                 hosts: Mapping[str, int] | None = None,
                 public_keys: Mapping[str, str] | None = None) -> None:
        super().__init__(scope, id)
        members = {n.name: n for n in nodes}
        numbers = dict(hosts) if hosts is not None else {
            n.name: index for index, n in enumerate(nodes, start=1)}
        strangers = sorted(set(numbers) - set(members))
        try:
            if strangers:
                raise MeshError(f"hosts for {', '.join(strangers)}, which are not among the "
                                "nodes given")
            self.plan = plan_mesh(cidr=cidr, port=port, hosts=numbers, public_keys=public_keys)
        except (MeshError, ValueError) as err:
            raise ConstructError(f"[{self.node.path}] {err}") from err
        members = {n: members[n] for n in sorted(self.plan.addresses)}
        self.public_ips = {n: public_ip_expression(node) for n, node in members.items()}
        for name, node in members.items():
            others = [ip for other, ip in self.public_ips.items() if other != name]
            if others:
                self._open(name, node, others)
            node.boot["mesh"] = {"interface": INTERFACE, "address": self.plan.address(name),
                                 "cidr": self.plan.cidr, "port": self.plan.port}
        Output(stack_of(self), ENDPOINTS_OUTPUT,
               value={n: f"${{{ip}}}" for n, ip in self.public_ips.items()},
               description="Public IPv4 of every mesh node (WireGuard endpoints).")
        layout_of(self).meshes.append(MeshFact(nodes=tuple(members),
                                               where=Where(path=self.node.path)))

    def address(self, node: str) -> str:
        """The node's address in the mesh (without the prefix length)."""
        return self.plan.address(node)

    def hba(self, services: Mapping[str, Service],
            placement: Mapping[str, Sequence[str]]) -> list[str]:
        """The primary's pg_hba on mesh addresses (`hba_lines`)."""
        return hba_lines(self.plan, services, placement)

    def _open(self, name: str, node: VpsNode, sources: Sequence[str]) -> None:
        """Open the mesh port to `sources` (the other nodes' public IPv4 expressions), and
        promise in the generated `tofu test` that it is open to nothing else."""
        port, why = str(self.plan.port), "wireguard mesh"
        promise = (f"the WireGuard port of {name} admits UDP {port} from the other mesh "
                   "nodes' public addresses only")
        node.cloud.open_mesh(self, id=name, label=f"{stack_of(self).node.id}-{name}-mesh",
                             server=node.resource, firewall=node.firewall.parts, port=port,
                             sources=sources, why=why, promise=promise)

