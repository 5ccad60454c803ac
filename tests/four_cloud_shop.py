"""The shop on four clouds, written from the public API alone (`from edgekit import ...`):
web nodes on Hetzner, Linode and Vultr, the Postgres primary on DigitalOcean, a private
network per cloud, one WireGuard `Mesh` over all four so the services reach Postgres
privately, glued flakes, a weighted tunnel, the edge Worker and R2 logs.
`tests/test_one_rule_set.py` makes each fault of issue 23 in it (`Shop(fault=...)`)."""

from __future__ import annotations

from pathlib import Path

from edgekit import (
    App,
    CloudflareZone,
    CloudName,
    EdgeWorker,
    Firewall,
    GluedFlake,
    LocalState,
    Mesh,
    Needs,
    PgPrimary,
    PrivateNetwork,
    R2LogSink,
    Service,
    Stack,
    Tunnel,
    TunnelStrategy,
    VpsNode,
)

ACCOUNT = "0123456789abcdef0123456789abcdef"
ZONE_ID = "fedcba9876543210fedcba9876543210"
CLOUDS: dict[str, CloudName] = {"web-1": "hetzner", "web-2": "linode", "web-3": "vultr",
                               "db": "digitalocean"}


class Shop(Stack):
    """The shop on four clouds; `fault` names one change from the list in this module."""

    def __init__(self, scope: App, id: str, *, root: Path, fault: str = "") -> None:
        super().__init__(scope, id, state=LocalState())
        repository, ref = "github:me/shop", f"deploy/{id}"
        zone = CloudflareZone(account_id=ACCOUNT, zone_id=ZONE_ID, zone="example.com",
                              environment=id, host_label=None if id == "shop" else id)
        env = {"MODE": "live"} if fault == "env" else {}
        services = {
            "shop": Service(name="shop", port=8080, hostnames=("shop.example.com",),
                            needs=Needs(postgres="rw"), env=env),
            "blog": Service(name="blog", port=8081, hostnames=("blog.example.com",),
                            needs=Needs(postgres="ro")),
        }
        web = ["web-1", "web-2", "web-3"]
        placement: dict[str, list[str]] = {n: ["shop", "blog"] for n in web}
        if fault == "pg-port":
            services["admin"] = Service(name="admin", port=5432)
            placement["db"] = ["admin"]
        if fault == "twice":
            placement["web-1"] = ["shop", "blog", "shop"]
        if fault == "unknown-node":
            placement["web-9"] = ["shop"]
        nets = {cloud: PrivateNetwork(self, f"net-{cloud}", provider=cloud, region="singapore",
                                      cidr=f"10.{i}.0.0/16")
                for i, cloud in enumerate(sorted(set(CLOUDS.values())))}
        if fault == "overlap":
            PrivateNetwork(self, "net-extra", provider="hetzner", region="singapore",
                           cidr="10.1.128.0/17")
        firewall = None
        if fault == "pg-firewall":
            firewall = Firewall(self, "db-firewall", provider="digitalocean",
                                private_cidrs=["10.0.0.0/8"], private_ports=[5432])
        nodes = {name: VpsNode(self, name, provider=cloud, region="singapore", size="small",
                               roles=["postgres"] if name == "db" else ["edge"],
                               networks=[nets[cloud]], repository=repository, ref=ref,
                               firewall=firewall if name == "db" else None)
                 for name, cloud in CLOUDS.items()}
        self.postgres = PgPrimary(self, "postgres", node=nodes["db"], services=services)
        if fault != "no-path":
            Mesh(self, "mesh", nodes=list(nodes.values()))
        for name in sorted(services):
            GluedFlake(self, f"flake-{name}", path=f"services/{name}", root=root,
                       services=services, placement=placement)
        served = {n: placement[n] for n in web}
        if fault == "route-no-origin":
            served = {n: ["shop"] for n in web}
        tunnel_nodes = [nodes[n] for n in web]
        if fault in ("tunnel-foreign-node", "worker-two-tunnels"):
            tunnel_nodes = tunnel_nodes[:2]
        if fault == "worker-two-tunnels":  # web-3 is served by a second tunnel
            served = {n: served[n] for n in web[:2]}
        strategy: TunnelStrategy = "per_node"
        weights = {"web-1": 3, "web-2": 1, "web-3": 1}
        if fault == "weights-replicas":
            strategy = "replicas"
        if fault in ("tunnel-foreign-node", "worker-two-tunnels"):
            weights = {"web-1": 3, "web-2": 1}
        tunnel = Tunnel(self, "tunnel", zone=zone, services=services, nodes=tunnel_nodes,
                        placement=served, strategy=strategy, weights=weights)
        origins = tunnel.origins_by_service()
        if fault == "two-tunnels":
            Tunnel(self, "tunnel-b", zone=zone, services=services, nodes=[nodes["web-1"]],
                   placement={"web-1": ["blog"]})
        if fault == "worker-two-tunnels":
            other = Tunnel(self, "tunnel-b", zone=zone, services=services,
                           nodes=[nodes["web-3"]], placement={"web-3": ["shop", "blog"]},
                           strategy="per_node")
            for service, found in other.origins_by_service().items():
                origins[service] = [*origins.get(service, []), *found]
        R2LogSink(self, "logs", account_id=ACCOUNT, bucket=f"{id}-shop-logs",
                  nodes=list(nodes.values()))
        script = root / "worker.js"
        if fault == "no-origins":
            EdgeWorker(self, "worker", zone=zone, services=services, script=script)
        else:
            EdgeWorker(self, "worker", zone=zone, services=services, script=script,
                       tunnel=tunnel, origins=origins)


def shop_root(folder: Path) -> Path:
    """The shop's project folder: a glued flake per service and the Worker script."""
    for name in ("shop", "blog", "admin"):
        flake = folder / "services" / name / "flake.nix"
        flake.parent.mkdir(parents=True)
        flake.write_text("{ outputs = { self }: { }; }\n")
    (folder / "worker.js").write_text("export default { fetch() { return null; } };\n")
    return folder
