"""The estate in CUE: placement names real nodes and services, ports do not clash on a node,
tunnels serve placed nodes, and services that need Postgres have one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgekit.check.engine import Context, Hit, rule

if TYPE_CHECKING:
    from edgekit.cue.model import Estate

OTLP_GRPC_PORT, OTLP_HTTP_PORT = 4317, 4318
POSTGRES_PORT = 5432
CLOUDFLARED_METRICS_PORT = 20241
SSH_PORT = 22


def _where(estate: Estate) -> tuple[str, str]:
    """(construct path of the env's stack, the export file) for estate findings."""
    return estate.env.name, f"cue/export/{estate.env.name}.json"


def _hit(estate: Estate, message: str, pointer: str) -> Hit:
    stack, export = _where(estate)
    return Hit(message=message, stack=stack, path=stack, address=export, pointer=pointer)


def system_ports(roles: tuple[str, ...] | list[str]) -> dict[int, str]:
    """Ports a node's own programs listen on, by what listens."""
    ports = {SSH_PORT: "sshd", OTLP_GRPC_PORT: "the log shipper's OTLP/gRPC input (Vector)",
             OTLP_HTTP_PORT: "the log shipper's OTLP/HTTP input (Vector)",
             CLOUDFLARED_METRICS_PORT: "cloudflared's metrics server"}
    if "postgres" in roles:
        ports[POSTGRES_PORT] = "Postgres (the node has the postgres role)"
    return ports


@rule("EK121", title="a service port is free on every node it is placed on",
      severity="error",
      source="edgekit/obs/vector.py (OTLP 127.0.0.1:4317/4318); https://developers.cloudflare"
      ".com/cloudflare-one/networks/connectors/cloudflare-tunnel/monitor-tunnels/metrics/ "
      "(cloudflared metrics on 20241); Postgres 5432 on the postgres role",
      fix="give the service another port in cue/services.cue, or place it on another node")
def port_clash(ctx: Context) -> Iterator[Hit]:
    for estate in ctx.estates:
        env = estate.env
        for node_name, placed in sorted(env.placement.items()):
            node = env.nodes.get(node_name)
            taken = system_ports(node.roles if node else ())
            owners: dict[int, str] = {p: what for p, what in taken.items()}
            for index, name in enumerate(placed):
                service = estate.services.get(name)
                if service is None or service.port is None or service.kind != "vps":
                    continue
                other = owners.get(service.port)
                if other is not None and other != f"service {name!r}":
                    yield _hit(estate, f"service {name!r} listens on port {service.port} on "
                               f"node {node_name!r}, already used by {other}",
                               f"$.env.placement.{node_name}[{index}]")
                owners.setdefault(service.port, f"service {name!r}")


@rule("EK122", title="a service is placed on a node at most once",
      severity="error", source="nix/compose.nix (one systemd unit per service and node)",
      fix="remove the repeated name from the node's placement list in cue/envs.cue")
def service_twice(ctx: Context) -> Iterator[Hit]:
    for estate in ctx.estates:
        for node_name, placed in sorted(estate.env.placement.items()):
            seen: set[str] = set()
            for index, name in enumerate(placed):
                if name in seen:
                    yield _hit(estate, f"service {name!r} is placed twice on node "
                               f"{node_name!r}", f"$.env.placement.{node_name}[{index}]")
                seen.add(name)


@rule("EK123", title="placement names only nodes of the environment",
      severity="error", source="cue/envs.cue (placement keys are nodes of the env)",
      fix="add the node under nodes in cue/envs.cue, or fix the name in placement")
def placement_unknown_node(ctx: Context) -> Iterator[Hit]:
    for estate in ctx.estates:
        known = ", ".join(sorted(estate.env.nodes)) or "none"
        for node_name in sorted(estate.env.placement):
            if node_name not in estate.env.nodes:
                yield _hit(estate, f"placement names node {node_name!r}, which is not a node "
                           f"of environment {estate.env.name!r} (nodes: {known})",
                           f"$.env.placement.{node_name}")


@rule("EK124", title="placement names only services that run on nodes",
      severity="error", source="cue/services.cue (services of kind 'vps')",
      fix="define the service in cue/services.cue, or fix the name in placement")
def placement_unknown_service(ctx: Context) -> Iterator[Hit]:
    for estate in ctx.estates:
        runnable = sorted(n for n, s in estate.services.items() if s.kind == "vps")
        for node_name, placed in sorted(estate.env.placement.items()):
            for index, name in enumerate(placed):
                service = estate.services.get(name)
                if service is None or service.kind != "vps":
                    what = "not a service" if service is None else \
                        f"a {service.kind} service, not one that runs on nodes"
                    yield _hit(estate, f"node {node_name!r} is given {name!r}, which is {what}"
                               f" (services that run on nodes: {', '.join(runnable) or 'none'})",
                               f"$.env.placement.{node_name}[{index}]")


@rule("EK125", title="a tunnel serves only nodes that run services",
      severity="error",
      source="adr/0006-tunnel-strategy.md (a tunnel's ingress comes from placement)",
      fix="weigh only nodes listed in placement with at least one service")
def tunnel_unplaced_node(ctx: Context) -> Iterator[Hit]:
    for estate in ctx.estates:
        env = estate.env
        serving = sorted(n for n, placed in env.placement.items() if placed)
        for node_name in sorted(env.tunnel.weights):
            if node_name not in env.placement or not env.placement[node_name]:
                known = "a node" if node_name in env.nodes else "not a node"
                yield _hit(estate, f"tunnel weight for {node_name!r} ({known} of the "
                           f"environment) which runs no service: its tunnel would answer "
                           f"only 404 (nodes with services: {', '.join(serving) or 'none'})",
                           f"$.env.tunnel.weights.{node_name}")


@rule("EK127", title="services that need Postgres have a node with the postgres role",
      severity="error", source="edgekit/estate/patterns.py (the primary runs on the "
      "node with the postgres role)",
      fix="add 'postgres' to the roles of one node of the environment in cue/envs.cue, or "
      "choose a managed database (postgres.kind: \"managed\", ADR 0012)")
def postgres_missing(ctx: Context) -> Iterator[Hit]:
    for estate in ctx.estates:
        env = estate.env
        if env.postgres.kind == "managed":  # ManagedPg (ADR 0012): on no node of ours
            continue
        if any("postgres" in node.roles for node in env.nodes.values()):
            continue
        placed = {s for services in env.placement.values() for s in services}
        needing = sorted(n for n, s in estate.services.items()
                         if s.needs.postgres and (n in placed or s.kind == "worker"))
        if needing:
            yield _hit(estate, f"{', '.join(needing)} need(s) Postgres, but no node of "
                       f"environment {env.name!r} has the postgres role", "$.env.nodes")
