"""An environment's WireGuard mesh from CUE (ADR 0010): its plan (the L2 `plan_mesh` of the
nodes' ``mesh_host``), the Postgres primary's pg_hba on mesh addresses, and
``nix/mesh/<env>.json`` (what ``nix/mesh.nix`` configures on each node). Whether every
service has a private path to Postgres is check rule EK181, on CUE and Python stacks alike.

Addresses come from CUE: ``mesh.cidr`` + each node's ``mesh_host``; public keys from
``envs.<env>.mesh.public_keys``; endpoints from the imported `ENDPOINTS_OUTPUT`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgekit.constructs.hyperdrive import hyperdrive_service
from edgekit.constructs.mesh import (
    ENDPOINTS_OUTPUT,
    INTERFACE,
    MeshError,
    MeshPlan,
    hba_lines,
    peers_of,
    plan_mesh,
)
from edgekit.constructs.pg_bootstrap import hyperdrive_hba
from edgekit.constructs.values import Service
from edgekit.core.stack import r2_endpoint
from edgekit.cue.mesh_keys import object_key
from edgekit.cue.model import Env

PRIVATE_KEY_FILE = "/var/lib/edgekit/wireguard/private"
PUBLISH_CREDENTIALS = "/run/keys/edgekit/vector.env"
"""The log sink's write-only R2 keys (AWS_* lines, root 0400; nix/node.nix, ADR 0008)."""
PG_PORT = 5432


def mesh_hosts(env: Env) -> dict[str, int]:
    """Node → host number, for the nodes with a ``mesh_host``."""
    return {n: spec.mesh_host for n, spec in env.nodes.items() if spec.mesh_host is not None}


def mesh_plan(env: Env) -> MeshPlan:
    """The environment's mesh: every node with a ``mesh_host`` (`MeshError` names
    ``envs.<env>.mesh`` and every problem)."""
    try:
        return plan_mesh(cidr=env.mesh.cidr, port=env.mesh.port, hosts=mesh_hosts(env),
                         public_keys=env.mesh.public_keys)
    except MeshError as err:
        raise MeshError(f"envs.{env.name}.mesh: {err}") from err


def primary_node(env: Env) -> str | None:
    return next((n for n, spec in sorted(env.nodes.items()) if "postgres" in spec.roles), None)


def mesh_hba(env: Env, services: Mapping[str, Service], plan: MeshPlan) -> list[str]:
    """pg_hba lines admitting, over TLS, per service role exactly the mesh addresses of the
    nodes that service is placed on (`hba_lines`), and Hyperdrive's role from the primary's
    own mesh address (cloudflared there dials it; ADR 0025); then no other TCP login."""
    primary = primary_node(env)
    hyperdrive = (hyperdrive_hba(hyperdrive_service(services), plan.addresses[primary])
                  if primary is not None and primary in plan.addresses else [])
    return hba_lines(plan, services, env.placement, also=hyperdrive)


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
