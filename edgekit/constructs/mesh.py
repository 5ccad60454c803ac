"""Mesh: every node of an environment in one WireGuard mesh, whatever its provider (ADR 0010).

Pure planning (`mesh_plan`, `peers_of`, `wg_setconf`, `mesh_hba`, `private_path_problems`)
and the `Mesh` construct, which opens the WireGuard port of each node's provider firewall to
the public addresses of the other mesh nodes only — the one, explicit exception to the closed
firewall — and outputs those addresses (plain values, imported back into CUE as endpoints).

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

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from edgekit.clouds import cloud
from edgekit.constructs.node import VpsNode
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.stack import r2_endpoint
from edgekit.cue.mesh_keys import object_key
from edgekit.cue.model import Env, Service

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


def mesh_plan(env: Env) -> MeshPlan:
    network = ipaddress.ip_network(env.mesh.cidr)
    addresses: dict[str, str] = {}  # same arithmetic as Env.mesh_address
    owner: dict[int, str] = {}
    problems = []
    for name, node in sorted(env.nodes.items()):
        if node.mesh_host is None:
            continue
        if node.mesh_host in owner:
            problems.append(f"nodes {owner[node.mesh_host]} and {name} both have mesh_host "
                            f"{node.mesh_host}; each node needs its own")
            continue
        if node.mesh_host >= network.num_addresses - 1:
            problems.append(f"node {name}: mesh_host {node.mesh_host} is outside "
                            f"{network} (1..{network.num_addresses - 2})")
            continue
        owner[node.mesh_host] = name
        addresses[name] = str(network.network_address + node.mesh_host)
    unknown = sorted(set(env.mesh.public_keys) - set(addresses))
    if unknown:
        problems.append(f"public_keys for {', '.join(unknown)}, not in the mesh")
    if problems:
        raise MeshError(f"envs.{env.name}.mesh: " + "; ".join(problems))
    return MeshPlan(cidr=str(network), port=env.mesh.port, addresses=addresses,
                    public_keys=dict(env.mesh.public_keys))


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


def primary_node(env: Env) -> str | None:
    return next((n for n, spec in sorted(env.nodes.items()) if "postgres" in spec.roles), None)


def mesh_hba(env: Env, services: Mapping[str, Service], plan: MeshPlan) -> list[str]:
    """pg_hba lines admitting, per service role, exactly the mesh addresses of the nodes
    that service is placed on; then no other TCP login."""
    lines = ["# edgekit: each service's role, from the mesh addresses of its nodes only"]
    for node, placed in sorted(env.placement.items()):
        for name in sorted(placed):
            service = services[name]
            if service.pg_role is None or node not in plan.addresses:
                continue
            lines.append(f"host {service.pg_database} {service.pg_role} "
                         f"{plan.addresses[node]}/32 scram-sha-256")
    lines += ["host all all 0.0.0.0/0 reject", "host all all ::/0 reject"]
    return lines


def private_path_problems(env: Env, services: Mapping[str, Service]) -> list[str]:
    """Every placed service that needs Postgres but cannot reach the primary privately."""
    primary = primary_node(env)
    problems = []
    for node, placed in sorted(env.placement.items()):
        for name in sorted(placed):
            mode = services[name].needs.postgres if name in services else None
            if mode is None or node == primary:
                continue
            if primary is None:
                problems.append(f"service {name} on node {node} needs Postgres ({mode}) but "
                                f"environment {env.name} has no node with role 'postgres'")
                continue
            here, there = env.nodes[node], env.nodes[primary]
            if here.mesh_host is not None and there.mesh_host is not None:
                continue
            same_network = here.provider == there.provider and (
                cloud(here.provider).networks_span_regions or here.region == there.region)
            if same_network:
                continue
            missing = [n for n, spec in ((node, here), (primary, there))
                       if spec.mesh_host is None]
            problems.append(
                f"service {name} on node {node} needs Postgres ({mode}) but has no private "
                f"path to the primary {primary}: {' and '.join(missing)} not in the mesh "
                f"(no mesh_host), and {node} ({here.provider} {here.region}) shares no "
                f"private network with {primary} ({there.provider} {there.region})")
    return problems


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


PRIVATE_KEY_FILE = "/var/lib/edgekit/wireguard/private"
PUBLISH_CREDENTIALS = "/run/keys/edgekit/vector.env"
"""The log sink's write-only R2 keys (AWS_* lines, root 0400; nix/node.nix, ADR 0008)."""
PG_PORT = 5432


def nixos_mesh(env: Env, services: Mapping[str, Service],
               private_address: str | None = None) -> dict[str, Any]:
    """``nix/mesh/<env>.json``: per mesh node, what ``nix/mesh.nix`` configures (interface,
    address, port, peers with known keys and endpoints, the key file made at first boot);
    ``publish``: where the node PUTs its public key for ``edgekit mesh import-keys``;
    on the primary also Postgres' listen addresses (mesh + `private_address`, the provider's
    private address once imported) and its pg_hba (`mesh_hba`). ``primary`` is the
    address services use as PGHOST."""
    plan = mesh_plan(env)
    observed = env.observed_value(ENDPOINTS_OUTPUT)
    endpoints = {k: v for k, v in observed.items() if isinstance(v, str)} \
        if isinstance(observed, dict) else {}
    primary = primary_node(env)
    prefix = plan.cidr.split("/")[1]
    nodes: dict[str, Any] = {}
    for name, address in sorted(plan.addresses.items()):
        entry: dict[str, Any] = {
            "node": name, "interface": INTERFACE, "address": f"{address}/{prefix}",
            "listenPort": plan.port, "privateKeyFile": PRIVATE_KEY_FILE,
            "peers": peers_of(plan, name, endpoints), "postgres": None,
            "publish": {"endpoint": r2_endpoint(env.cloudflare.account_id),
                        "bucket": env.cloudflare.logs_bucket,
                        "key": object_key(env.name, name),
                        "credentials": PUBLISH_CREDENTIALS}}
        if name == primary:
            listen = [address, *([private_address] if private_address else [])]
            entry["postgres"] = {"listen": listen, "port": PG_PORT,
                                 "authentication": mesh_hba(env, services, plan)}
        nodes[name] = entry
    return {"primary": plan.addresses.get(primary) if primary else None, "nodes": nodes}
