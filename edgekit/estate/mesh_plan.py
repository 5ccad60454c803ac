"""An environment's WireGuard mesh from CUE (ADR 0010): the plan the `Mesh` construct takes,
the Postgres primary's pg_hba on mesh addresses, the private-path check, and
``nix/mesh/<env>.json`` (what ``nix/mesh.nix`` configures on each node).

Addresses come from CUE: ``mesh.cidr`` + each node's ``mesh_host``; public keys from
``envs.<env>.mesh.public_keys``; endpoints from the imported `ENDPOINTS_OUTPUT`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from edgekit.clouds import cloud
from edgekit.constructs.hyperdrive import hyperdrive_service
from edgekit.constructs.mesh import ENDPOINTS_OUTPUT, INTERFACE, MeshError, MeshPlan, peers_of
from edgekit.constructs.pg_bootstrap import hyperdrive_hba
from edgekit.constructs.values import Service
from edgekit.core.stack import r2_endpoint
from edgekit.cue.mesh_keys import object_key
from edgekit.cue.model import Env

PRIVATE_KEY_FILE = "/var/lib/edgekit/wireguard/private"
PUBLISH_CREDENTIALS = "/run/keys/edgekit/vector.env"
"""The log sink's write-only R2 keys (AWS_* lines, root 0400; nix/node.nix, ADR 0008)."""
PG_PORT = 5432


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


def primary_node(env: Env) -> str | None:
    return next((n for n, spec in sorted(env.nodes.items()) if "postgres" in spec.roles), None)


def mesh_hba(env: Env, services: Mapping[str, Service], plan: MeshPlan) -> list[str]:
    """pg_hba lines admitting, over TLS, per service role exactly the mesh addresses of the
    nodes that service is placed on, and Hyperdrive's role from the primary's own mesh
    address (cloudflared there dials it; ADR 0025); then no other TCP login."""
    lines = ["# edgekit: each service's role, from the mesh addresses of its nodes only"]
    for node, placed in sorted(env.placement.items()):
        for name in sorted(placed):
            service = services[name]
            if service.pg_role is None or node not in plan.addresses:
                continue
            lines.append(f"hostssl {service.pg_database} {service.pg_role} "
                         f"{plan.addresses[node]}/32 scram-sha-256")
    primary = primary_node(env)
    if primary is not None and primary in plan.addresses:
        lines += hyperdrive_hba(hyperdrive_service(services), plan.addresses[primary])
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
