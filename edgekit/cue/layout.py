"""An environment of the CUE estate as the check rules see it: a `Layout`, the same shape
the L2 constructs record for a Python stack (`edgekit.constructs.facts`, ADR 0029).

Facts are located in the CUE export (``cue/export/<env>.json`` and a pointer into it) and
name the files the user edits (``cue/envs.cue``, ``cue/services.cue``). What the L3 wiring
decides rather than CUE is described as it decides it: one private network per cloud
(regional clouds: per region), one tunnel over the nodes that run services, the edge Worker
on every public hostname, env and secrets delivered by the generated files.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.clouds import cloud
from edgekit.constructs.facts import (
    EdgeLogsFact,
    Layout,
    MeshFact,
    NetworkFact,
    NodeFact,
    PlacementFact,
    PlanFact,
    PostgresFact,
    TunnelFact,
    WavesFact,
    Where,
    WorkerFact,
)
from edgekit.constructs.values import routing_table
from edgekit.cue.model import Estate

ENVS_FILE = "cue/envs.cue"
SERVICES_FILE = "cue/services.cue"


def network_key(provider: str, region: str) -> str:
    """The private network a node of `provider` in `region` joins (EstateNodes makes one per
    cloud; a regional cloud's network reaches one region)."""
    return f"net-{provider}" if cloud(provider).networks_span_regions else \
        f"net-{provider}-{region}"


def layout_of_estate(estate: Estate) -> Layout:
    env = estate.env
    export = f"cue/export/{env.name}.json"

    def where(pointer: str) -> Where:
        return Where(path=env.name, address=export, pointer=pointer)

    layout = Layout(stack=env.name, origin="cue", file=ENVS_FILE, services_file=SERVICES_FILE,
                    delivers_env=True, nodes_where=where("$.env.nodes"))
    for name, node in sorted(env.nodes.items()):
        key = network_key(node.provider, node.region)
        layout.nodes[name] = NodeFact(name=name, provider=node.provider, region=node.region,
                                      roles=tuple(node.roles), networks=(key,),
                                      where=where(f"$.env.nodes.{name}"))
        layout.networks.setdefault(key, NetworkFact(key=key, provider=node.provider,
                                                    region=node.region, cidr=None,
                                                    where=where(f"$.env.nodes.{name}")))
    layout.add_services(Where(path=env.name, address=SERVICES_FILE), estate.services)
    placement = {node: tuple(names) for node, names in env.placement.items()}
    layout.placements.append(PlacementFact(placement=placement, services=estate.services,
                                           nodes=None, where=where("$.env.placement")))
    serving = tuple(sorted(n for n, names in placement.items() if names))
    zone = env.zone
    origins = {name: (zone.origin_hostname(name),) for name in sorted(
        {s for names in placement.values() for s in names}) if name in estate.services}
    layout.tunnels.append(TunnelFact(
        nodes=serving, placement=placement, strategy=env.tunnel.strategy,
        weights=dict(env.tunnel.weights), token="tunnel",
        hostnames=tuple(h for hosts in origins.values() for h in hosts),
        where=where("$.env.tunnel")))
    routes = {host: entry["service"]
              for host, entry in routing_table(zone, estate.services).items()}
    layout.workers.append(WorkerFact(routes=routes, origins=origins, token="tunnel",
                                     where=where("$.services")))
    if env.postgres.kind == "managed":
        layout.postgres.append(PostgresFact(node=None, where=where("$.env.postgres")))
    mesh = tuple(sorted(n for n, node in env.nodes.items() if node.mesh_host is not None))
    if mesh:
        layout.meshes.append(MeshFact(nodes=mesh, where=where("$.env.mesh")))
    layout.zones[env.cloudflare.zone_id] = env.cloudflare.zone
    side = env.cloudflare
    layout.plans.append(PlanFact(zone_id=side.zone_id, zone=side.zone,
                                 account_id=side.account_id, plan=side.plan,
                                 addons=tuple(side.addons), workers_paid=side.workers_paid,
                                 where=where("$.env.cloudflare")))
    layout.edge_logs = EdgeLogsFact(edge=env.logs.edge, http_requests=env.logs.http_requests,
                                    where=where("$.env.logs"))
    if env.deploy.waves is not None:
        layout.waves = WavesFact(waves=tuple(tuple(w) for w in env.deploy.waves),
                                 where=where("$.env.deploy.waves"))
    return layout


def estate_layouts(root: Path) -> list[Layout]:
    """Every environment of the project's CUE estate (none without ``cue/cue.mod``)."""
    if not (root / "cue" / "cue.mod").is_dir():
        return []
    return [layout_of_estate(Estate.load(root, name, check_fresh=False))
            for name in Estate.env_names(root)]
