"""Tunnels and the edge Worker, on every layout: a tunnel serves the nodes it was given, a
node is in one tunnel, weights mean something, and every service the Worker routes has an
origin behind the Access token the Worker holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgekit.check.engine import Context, Hit, rule
from edgekit.check.layouts import hit

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import Layout, TunnelFact

TUNNELS = "adr/0006-tunnel-strategy.md (a tunnel's ingress comes from placement)"


def _serving(tunnel: TunnelFact) -> list[str]:
    """The tunnel's nodes that run at least one service."""
    return sorted(n for n in tunnel.nodes if tunnel.placement.get(n))


@rule("EK125", title="a tunnel's weights name only nodes it serves with a service",
      severity="error", source=TUNNELS,
      fix="weigh only nodes the tunnel is given that run at least one service (tunnel weights "
      "in {file})")
def tunnel_unplaced_node(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for tunnel in layout.tunnels:
            serving = _serving(tunnel)
            for node in sorted(tunnel.weights):
                if node not in serving:
                    yield hit(layout, tunnel.where, f"tunnel weight for node {node!r}, which "
                              "runs no service behind this tunnel: its origin would answer "
                              f"only 404 (nodes with services: {', '.join(serving) or 'none'})",
                              f".weights.{node}")


@rule("EK180", title="a tunnel's placement names only nodes the tunnel was given",
      severity="error", source=TUNNELS,
      fix="give the node to the tunnel (nodes=[...]) or remove it from the tunnel's "
      "placement in {file}")
def tunnel_foreign_node(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for tunnel in layout.tunnels:
            for node, names in sorted(tunnel.placement.items()):
                if names and node not in tunnel.nodes:
                    yield hit(layout, tunnel.where, f"the tunnel's placement puts "
                              f"{', '.join(names)} on node {node!r}, which the tunnel was "
                              f"not given (its nodes: {', '.join(tunnel.nodes) or 'none'}): "
                              "nothing would serve them there", f".placement.{node}")


@rule("EK182", title="a node is in one tunnel",
      severity="error",
      source="edgekit/constructs/boot.py (one `tunnel_token` secret per node: a second "
      "tunnel's token replaces the first); a tunnel's origin DNS names are one per service",
      fix="give each node to one Tunnel (placement decides what it serves there) in {file}")
def node_in_two_tunnels(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        first: dict[str, TunnelFact] = {}
        for tunnel in layout.tunnels:
            for index, node in enumerate(tunnel.nodes):
                if node in first:
                    yield hit(layout, tunnel.where, f"node {node!r} is in this tunnel and in "
                              f"{first[node].where.path}: a node holds one tunnel token (only "
                              "the last tunnel's would reach it), so one of the tunnels would "
                              "have no connector there", f".nodes[{index}]")
                first.setdefault(node, tunnel)


def _owner(layout: Layout, host: str) -> TunnelFact | None:
    return next((t for t in layout.tunnels if host in t.hostnames), None)


@rule("EK183", title="the Worker holds the Access token of every tunnel it sends to",
      severity="error",
      source="adr/0009-origin-protection.md (each tunnel's origins admit only its own "
      "Access service token)",
      fix="give the Worker one tunnel (EdgeWorker(tunnel=...)) and put every node that "
      "serves its services in that tunnel, in {file}")
def worker_token(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for worker in layout.workers:
            for service, hosts in sorted(worker.origins.items()):
                for host in hosts:
                    tunnel = _owner(layout, host)
                    if tunnel is None or tunnel.token is None or tunnel.token == worker.token:
                        continue
                    holds = "no Access token" if worker.token is None else \
                        "the Access token of another tunnel"
                    yield hit(layout, worker.where, f"the Worker sends {service!r} to {host}, "
                              f"behind tunnel {tunnel.where.path}, but holds {holds}: Access "
                              "refuses every such request", f".origins.{service}")


@rule("EK185", title="every service the Worker routes has an origin",
      severity="error", source="services/edge-worker/src/index.js (ROUTES → ORIGINS; a "
      "service without origins answers an error)",
      fix="place the service on a node of the Worker's tunnel, or drop its hostnames, in "
      "{file}")
def worker_route_without_origin(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for worker in layout.workers:
            if not worker.origins:
                continue  # EK186
            for service in sorted(set(worker.routes.values()) - set(worker.origins)):
                hosts = sorted(h for h, s in worker.routes.items() if s == service)
                yield hit(layout, worker.where, f"the Worker routes {', '.join(hosts)} to "
                          f"service {service!r}, which no tunnel serves (no origin): every "
                          "request there gets an error", f".routes.{service}")


@rule("EK186", title="a Worker with custom domains has origins to send them to",
      severity="error", source="services/edge-worker/src/index.js (ROUTES → ORIGINS)",
      fix="give the Worker its tunnel (EdgeWorker(tunnel=...)) or origins, or place the "
      "services on nodes, in {file}")
def worker_without_origins(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for worker in layout.workers:
            if worker.routes and not worker.origins:
                yield hit(layout, worker.where, f"the Worker takes {len(worker.routes)} "
                          f"hostname(s) ({', '.join(sorted(worker.routes))}) as custom domains "
                          "but has no origin to send any request to")


@rule("EK187", title="tunnel weights come with the per_node strategy",
      severity="error",
      source="adr/0006-tunnel-strategy.md (replicas: one tunnel, Cloudflare picks the "
      "nearest connector; weights only spread per_node tunnels)",
      fix="use strategy \"per_node\" for weights, or drop the weights, in {file}")
def weights_with_replicas(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for tunnel in layout.tunnels:
            if tunnel.strategy == "replicas" and tunnel.weights:
                yield hit(layout, tunnel.where, f"weights "
                          f"({', '.join(f'{n}: {w}' for n, w in sorted(tunnel.weights.items()))})"
                          " with the replicas strategy, which has no weights: they would be "
                          "silently ignored", ".weights")
