"""The composition of an environment's nodes, in Python: the twin of ``nix/compose.nix``.

`compose` takes placement (node → services) and the CUE services and returns, per node, the
services in placement order, their ports, their environment, the tunnel tokens it runs a
cloudflared for, and whether the node runs the Postgres primary. (The tunnels' ingress is
computed once, in edgekit/constructs/tunnel.py, not here.)
It refuses the same inputs as ``nix/compose.nix`` with the same messages (a `ComposeError`);
tests/test_nix.py evaluates both and compares. `nix_arguments` is the JSON the Nix function
is applied to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from edgekit.core.errors import EdgekitError
from edgekit.cue.model import Estate, Node, Service

LOOPBACK = "127.0.0.1"
OTLP_ENDPOINT = "http://127.0.0.1:4318"
TUNNEL_TOKEN = "tunnel_token"
"""Boot-document secret of the services' tunnel (edgekit.constructs.tunnel)."""
PG_TUNNEL_TOKEN = "pg_tunnel_token"
"""Boot-document secret of the Postgres tunnel (edgekit.constructs.hyperdrive)."""
PG_PORT = 5432


class ComposeError(EdgekitError):
    """Placement cannot be composed into nodes; the message names the node and the service."""

    def __init__(self, message: str) -> None:
        super().__init__(f"edgekit compose: {message}")


@attrs.frozen(kw_only=True)
class PostgresPlace:
    """Where the primary runs: its node (None: a managed database, on no node of ours),
    and the address services reach it at, once known."""

    node: str | None
    host: str | None = None
    port: int = PG_PORT


def _placed(node: str, name: str, services: Mapping[str, Service]) -> Service:
    if name not in services:
        known = ", ".join(sorted(services))
        raise ComposeError(f"node '{node}': placed service '{name}' is not a known service "
                           f"(known: {known})")
    service = services[name]
    if service.kind == "worker":
        raise ComposeError(f"node '{node}': service '{name}' is a worker (it runs on "
                           "Cloudflare); it cannot be placed on a node")
    if service.port is None:
        raise ComposeError(f"node '{node}': service '{name}' has no port")
    return service


def _checked(node: str, names: Sequence[str], services: Mapping[str, Service]) -> list[str]:
    seen: list[str] = []
    by_port: dict[int, str] = {}
    for name in names:
        service = _placed(node, name, services)
        assert service.port is not None
        if name in seen:
            raise ComposeError(f"service '{name}' is placed on node '{node}' twice")
        if service.port in by_port:
            raise ComposeError(f"node '{node}': services '{by_port[service.port]}' and "
                               f"'{name}' both use port {service.port}")
        seen.append(name)
        by_port[service.port] = name
    return seen


def _env(node: str, service: Service, env_name: str | None,
         postgres: PostgresPlace | None) -> dict[str, str]:
    attributes = [f"host.name={node}"]
    if env_name is not None:
        attributes.append(f"deployment.environment={env_name}")
    env = {
        **service.env,
        "PORT": str(service.port),
        "BIND": LOOPBACK,
        "EDGEKIT_HEALTH_PATH": service.health_path,
        "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
        "OTEL_SERVICE_NAME": service.name,
        "OTEL_RESOURCE_ATTRIBUTES": ",".join(attributes),
    }
    if service.pg_database is not None and service.pg_role is not None:
        env |= {
            "PGDATABASE": service.pg_database,
            "PGUSER": service.pg_role,
            "PGPORT": str(postgres.port if postgres else PG_PORT),
        }
        if postgres is not None and postgres.host is not None:
            env["PGHOST"] = postgres.host
    return env


def compose(
    placement: Mapping[str, Sequence[str]],
    services: Mapping[str, Service],
    *,
    nodes: Mapping[str, Node] | None = None,
    postgres: PostgresPlace | None = None,
    env_name: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per node: ``services``, ``ports``, ``env``, ``tunnels``, ``postgres`` (module doc).

    `nodes` (when given and not empty) lists every node of the environment: each gets an
    entry, and placement may name no other. `postgres` None means: the node whose roles
    contain ``postgres``. Raises `ComposeError` for a service placed on a node twice, two
    services of a node on one port, an unknown service, a worker placed on a node.
    """
    nodes = nodes or {}
    extra = [n for n in sorted(placement) if n not in nodes]
    if nodes and extra:
        raise ComposeError(f"placement names node '{extra[0]}', which is not a node of the "
                           f"environment (nodes: {', '.join(sorted(nodes))})")
    if postgres is not None and postgres.node is None:
        pg_nodes: list[str] = []
    elif postgres is not None and postgres.node is not None:
        if nodes and postgres.node not in nodes:
            raise ComposeError(f"postgres node '{postgres.node}' is not a node of the "
                               "environment")
        pg_nodes = [postgres.node]
    else:
        pg_nodes = [n for n in sorted(nodes) if "postgres" in nodes[n].roles]
    result: dict[str, dict[str, Any]] = {}
    for node in sorted({*nodes, *extra, *pg_nodes}):
        names = _checked(node, placement.get(node, ()), services)
        readers = any(s.needs.postgres == "ro" for s in services.values())
        tunnels = ([TUNNEL_TOKEN] if names else []) + (
            [PG_TUNNEL_TOKEN] if node in pg_nodes and readers else [])
        result[node] = {
            "services": names,
            "ports": {name: services[name].port for name in names},
            "env": {name: _env(node, services[name], env_name, postgres) for name in names},
            "tunnels": tunnels,
            "postgres": node in pg_nodes,
        }
    return result


def postgres_place(estate: Estate) -> PostgresPlace | None:
    """The primary's node (roles contain ``postgres``) and the address services reach it
    at: its WireGuard mesh address (ADR 0010), else its imported private address."""
    env = estate.env
    if env.postgres.kind == "managed":  # ManagedPg outputs its host under the same name
        return PostgresPlace(node=None, host=env.postgres_host())
    nodes = [n for n in sorted(env.nodes) if "postgres" in env.nodes[n].roles]
    if not nodes:
        return None
    return PostgresPlace(node=nodes[0], host=env.postgres_host())


def compose_estate(estate: Estate) -> dict[str, dict[str, Any]]:
    """`compose` for one environment of the estate (what the top-level flake composes)."""
    env = estate.env
    return compose(env.placement, estate.services, nodes=env.nodes,
                   postgres=postgres_place(estate), env_name=env.name)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(attrs.asdict(value)))


def nix_arguments(estate: Estate) -> dict[str, Any]:
    """The arguments of ``nix/compose.nix`` for this environment, as JSON-able data."""
    env = estate.env
    place = postgres_place(estate)
    return {
        "placement": {node: list(names) for node, names in env.placement.items()},
        "services": {name: _plain(s) for name, s in estate.services.items()},
        "nodes": {name: _plain(n) for name, n in env.nodes.items()},
        "postgres": _plain(place) if place else None,
        "envName": env.name,
    }
