"""Placement and Postgres, on every layout (the CUE estate's environments and the Python
stacks alike): placement names real nodes and services, ports do not clash on a node,
services that need Postgres have one and a private path to it, private networks do not
overlap, and a service's env reaches its process or is refused."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING

from edgekit.check.engine import Context, Hit, rule
from edgekit.check.layouts import has_postgres, hit, placed, primary

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import Layout

OTLP_GRPC_PORT, OTLP_HTTP_PORT = 4317, 4318
POSTGRES_PORT = 5432
CLOUDFLARED_METRICS_PORT = 20241
SSH_PORT = 22


def system_ports(roles: tuple[str, ...] | list[str]) -> dict[int, str]:
    """Ports a node's own programs listen on, by what listens."""
    ports = {SSH_PORT: "sshd", OTLP_GRPC_PORT: "the log shipper's OTLP/gRPC input (Vector)",
             OTLP_HTTP_PORT: "the log shipper's OTLP/HTTP input (Vector)",
             CLOUDFLARED_METRICS_PORT: "cloudflared's metrics server"}
    if "postgres" in roles:
        ports[POSTGRES_PORT] = "Postgres (the node has the postgres role)"
    return ports


def _roles(layout: Layout, node: str) -> tuple[str, ...]:
    found = layout.nodes.get(node)
    roles = found.roles if found else ()
    return (*roles, "postgres") if node == primary(layout) else roles


@rule("EK121", title="a service port is free on every node it is placed on",
      severity="error",
      source="edgekit/obs/vector.py (OTLP 127.0.0.1:4317/4318); https://developers.cloudflare"
      ".com/cloudflare-one/networks/connectors/cloudflare-tunnel/monitor-tunnels/metrics/ "
      "(cloudflared metrics on 20241); Postgres 5432 on the postgres role",
      fix="give the service another port in {services_file}, or place it on another node "
      "in {file}")
def port_clash(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for fact in layout.placements:
            owners: dict[str, dict[int, str]] = {}
            for node, index, name, service in placed(fact):
                taken = owners.setdefault(node, system_ports(_roles(layout, node)))
                if service is None or service.port is None or service.kind != "vps":
                    continue
                other = taken.get(service.port)
                if other is not None and other != f"service {name!r}":
                    yield hit(layout, fact.where, f"service {name!r} listens on port "
                              f"{service.port} on node {node!r}, already used by {other}",
                              f".{node}[{index}]")
                taken.setdefault(service.port, f"service {name!r}")


@rule("EK122", title="a service is placed on a node at most once",
      severity="error", source="nix/compose.nix (one systemd unit per service and node)",
      fix="remove the repeated name from the node's placement list in {file}")
def service_twice(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for fact in layout.placements:
            seen: set[tuple[str, str]] = set()
            for node, index, name, _ in placed(fact):
                if (node, name) in seen:
                    yield hit(layout, fact.where, f"service {name!r} is placed twice on node "
                              f"{node!r}", f".{node}[{index}]")
                seen.add((node, name))


@rule("EK123", title="placement names only nodes of the environment",
      severity="error", source="cue/envs.cue (placement keys are nodes of the env); the "
      "VpsNodes of a Python stack",
      fix="add the node (a VpsNode, or under nodes in CUE) or fix the name in the "
      "placement, in {file}")
def placement_unknown_node(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        if layout.origin == "constructs" and not layout.nodes:
            continue  # a stack without nodes: they may live in another stack
        known = ", ".join(sorted(layout.nodes)) or "none"
        for fact in layout.placements:
            if fact.nodes is not None:
                continue  # a tunnel's placement names its own nodes: EK180
            for node in sorted(fact.placement):
                if node not in layout.nodes:
                    yield hit(layout, fact.where, f"placement names node {node!r}, which is "
                              f"not a node of environment {layout.stack!r} (nodes: {known})",
                              f".{node}")


@rule("EK124", title="placement names only services that run on nodes",
      severity="error", source="cue/services.cue, or the services given with the placement "
      "(services of kind 'vps')",
      fix="define the service (in {services_file}) and give it with the placement, or fix "
      "the name in the placement in {file}")
def placement_unknown_service(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        for fact in layout.placements:
            runnable = ", ".join(sorted(n for n, s in fact.services.items()
                                        if s.kind == "vps")) or "none"
            for node, index, name, service in placed(fact):
                if service is None or service.kind != "vps":
                    what = "not a service" if service is None else \
                        f"a {service.kind} service, not one that runs on nodes"
                    yield hit(layout, fact.where, f"node {node!r} is given {name!r}, which is "
                              f"{what} (services that run on nodes: {runnable})",
                              f".{node}[{index}]")


def _needing(layout: Layout) -> list[str]:
    found = {name for fact in layout.placements for _, _, name, s in placed(fact)
             if s is not None and s.needs.postgres}
    if layout.origin == "cue":  # the edge Worker reads Postgres too (Hyperdrive)
        found |= {n for n, (s, _) in layout.services.items()
                  if s.kind == "worker" and s.needs.postgres}
    return sorted(found)


@rule("EK127", title="services that need Postgres have one",
      severity="error", source="edgekit/estate/patterns.py (the primary runs on the "
      "node with the postgres role); PgPrimary and ManagedPg in a Python stack",
      fix="give one node the postgres role (a PgPrimary on it, or roles in CUE) or choose "
      "a managed database (ManagedPg, or postgres.kind: \"managed\"; ADR 0012), in {file}")
def postgres_missing(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        if layout.origin == "constructs" and not layout.nodes:
            continue  # a stack without nodes: Postgres may live in another stack
        needing = _needing(layout)
        if needing and not has_postgres(layout) and layout.nodes_where is not None:
            yield hit(layout, layout.nodes_where, f"{', '.join(needing)} need(s) Postgres, "
                      f"but no node of environment {layout.stack!r} has the postgres role "
                      "or a Postgres primary")


def _private_path(layout: Layout, node: str, other: str) -> bool:
    here, there = layout.nodes[node], layout.nodes[other]
    if set(here.networks) & set(there.networks):
        return True
    return any(node in mesh.nodes and other in mesh.nodes for mesh in layout.meshes)


@rule("EK181", title="a service that needs Postgres has a private path to the primary",
      severity="error",
      source="adr/0010-wireguard-mesh.md (private networks do not cross clouds; a WireGuard "
      "mesh joins nodes on any clouds); adr/0001-edge-infrastructure.md (Postgres is never "
      "public)",
      fix="put both nodes in one WireGuard mesh (a Mesh, or mesh_host in CUE) or in one "
      "private network, or place the service elsewhere, in {file}")
def no_private_path(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        pg = primary(layout)
        if pg is None or pg not in layout.nodes:
            continue
        for fact in layout.placements:
            for node, index, name, service in placed(fact):
                mode = service.needs.postgres if service is not None else None
                if mode is None or node == pg or node not in layout.nodes or \
                        _private_path(layout, node, pg):
                    continue
                here, there = layout.nodes[node], layout.nodes[pg]
                outside = [n for n in (node, pg)
                           if not any(n in m.nodes for m in layout.meshes)]
                mesh = f"{' and '.join(outside)} not in the mesh" if outside else \
                    "not in one mesh"
                yield hit(layout, fact.where, f"service {name!r} on node {node!r} needs "
                          f"Postgres ({mode}) but has no private path to the primary {pg!r}: "
                          f"{mesh}, and {node} ({here.provider} {here.region}) shares no "
                          f"private network with {pg} ({there.provider} {there.region})",
                          f".{node}[{index}]")


@rule("EK184", title="a service's env and secrets reach its process",
      severity="error",
      source="edgekit/constructs/values.py (Service.env, Service.secrets: no L2 construct "
      "delivers them; the CUE estate's generated services/<svc>/edgekit.json does)",
      fix="remove env= and secrets= from the Service in {services_file} and give the process "
      "its environment in its flake (services/<svc>/flake.nix), or describe the service in "
      "the CUE estate, whose generated edgekit.json carries both")
def env_ignored(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        if layout.delivers_env:
            continue
        for name, (service, where) in sorted(layout.services.items()):
            parts = [f"{what} ({', '.join(sorted(keys))})" for what, keys in
                     (("env", service.env), ("secrets", service.secrets)) if keys]
            if parts:
                yield hit(layout, where, f"service {name!r} sets {' and '.join(parts)}, which "
                          f"no construct it was given to delivers to its process "
                          f"({', '.join(layout.given.get(name, []))}): they would be "
                          "silently ignored", ".env" if service.env else ".secrets")


@rule("EK189", title="private networks of one cloud do not overlap",
      severity="error",
      source="https://docs.hetzner.cloud/reference/cloud#networks (a server's routes and "
      "the firewall's private ranges go by CIDR); one range per network keeps pg_hba and "
      "firewall rules meaning one network",
      fix="give each private network of the cloud its own range (PrivateNetwork cidr= in "
      "{file})")
def networks_overlap(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        seen: list[tuple[str, str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        for key, network in layout.networks.items():  # the later one is reported
            if network.cidr is None:
                continue
            cidr = ipaddress.ip_network(network.cidr, strict=False)
            for other_key, provider, other in seen:
                if provider == network.provider and cidr.version == other.version and \
                        cidr.overlaps(other):
                    yield hit(layout, network.where, f"private network {key} ({cidr}) "
                              f"overlaps {other_key} ({other}), another {provider} network "
                              "of the stack")
            seen.append((key, network.provider, cidr))
