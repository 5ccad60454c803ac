"""L3 patterns: the reference estate's pieces, composed from the L2 constructs.

Each reads its CUE `Estate` and hands the L2 constructs plain values: the services as they
are, the environment's `Env.zone`, its placement, the Postgres listen address.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekit.clouds import cloud
from edgekit.constructs.boot import deploy_section
from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.edge_logs import EdgeLogpush
from edgekit.constructs.edge_worker import EdgeWorker
from edgekit.constructs.hyperdrive import Hyperdrive, hyperdrive_service
from edgekit.constructs.managed_pg import ManagedPg
from edgekit.constructs.mesh import Mesh, MeshError
from edgekit.constructs.network import PrivateNetwork
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_backups import PgBackups
from edgekit.constructs.pg_primary import PgPrimary
from edgekit.constructs.pg_tls import CA_OUTPUT
from edgekit.constructs.r2 import R2Bucket, R2LogSink
from edgekit.constructs.tunnel import Tunnel
from edgekit.constructs.values import PG_ADDRESS_OUTPUT
from edgekit.core.construct import Construct
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref
from edgekit.cue.generate import WORKER_SERVICE
from edgekit.cue.model import Estate
from edgekit.estate.mesh_plan import mesh_hosts, mesh_plan
from edgekit.pg.backup import settings_for


def _provider(scope: Construct, provider: str) -> None:
    """The provider block and its sensitive token variable (the cloud adapter's, once)."""
    cloud(provider).declare_provider(scope)


class EstateNodes(Construct):
    """Every node of a CUE environment: provider configuration, one private network per
    provider, the closed nodes, and the Postgres primary on the node with that role."""

    def __init__(self, scope: Construct, id: str, *, estate: Estate,
                 pull_deploy: bool = True, admin_ssh_cidrs: Sequence[str] = ()) -> None:
        super().__init__(scope, id)
        env = estate.env
        providers = sorted({n.provider for n in env.nodes.values()})
        self.networks: dict[str, PrivateNetwork] = {}
        for index, provider in enumerate(providers):
            _provider(scope, provider)
            first = next(n for n in env.nodes.values() if n.provider == provider)
            self.networks[provider] = PrivateNetwork(
                self, f"net-{provider}", provider=provider, region=first.region,
                cidr=f"10.{index}.0.0/16")
        self.nodes: dict[str, VpsNode] = {}
        for name, spec in sorted(env.nodes.items()):
            deploy = deploy_section(
                provider=spec.provider, node=name, repository=env.deploy.repository,
                ref=env.deploy.ref) if pull_deploy else None
            self.nodes[name] = VpsNode(
                self, name, provider=spec.provider, region=spec.region, size=spec.size,
                roles=spec.roles, networks=[self.networks[spec.provider]],
                admin_ssh_cidrs=admin_ssh_cidrs, deploy=deploy)
        managed = env.postgres.kind == "managed"
        try:  # a service without a private path to Postgres is check rule EK181's
            plan = mesh_plan(env)
        except MeshError as err:
            raise ConstructError(f"[{self.node.path}] cue/envs.cue {err}") from err
        self.mesh = Mesh(self, "mesh", nodes=[self.nodes[n] for n in sorted(plan.addresses)],
                         cidr=plan.cidr, port=plan.port,
                         hosts=mesh_hosts(env),
                         public_keys=plan.public_keys) if plan.addresses else None
        pg_nodes = [n for n, spec in sorted(env.nodes.items()) if "postgres" in spec.roles]
        self.managed = self._managed(scope, estate, pg_nodes, providers) if managed else None
        self.postgres = [PgPrimary(self, "postgres", node=self.nodes[pg_nodes[0]],
                                   services=estate.services)] if pg_nodes and not managed else []
        pools: list[tuple[dict[str, Ref], VpsNode | None]] = [
            (pg.passwords, pg.host) for pg in self.postgres]
        if self.managed is not None:
            pools.append((self.managed.passwords, None))
        for passwords, host in pools:  # each node gets the passwords of its services
            for node_name, placed in sorted(env.placement.items()):
                node = self.nodes[node_name]
                for service in placed:
                    role = estate.services[service].pg_role
                    if role and node is not host:
                        node.add_secret(f"pg_password_{role}", passwords[service])

    def _managed(self, scope: Construct, estate: Estate, pg_nodes: Sequence[str],
                 providers: Sequence[str]) -> ManagedPg:
        """The environment's managed Postgres (ADR 0012), when CUE chooses it."""
        env = estate.env
        spec = env.postgres.managed
        where = f"[{self.node.path}] cue/envs.cue envs.{env.name}.postgres"
        if spec is None:
            raise ConstructError(f"{where}: kind is \"managed\" but managed "
                                 "{provider, region, plan} is not set")
        if pg_nodes:
            raise ConstructError(f"{where}: kind is \"managed\" but node {pg_nodes[0]} has "
                                 "role 'postgres'; choose one (remove the role, or kind: "
                                 "\"self\")")
        if spec.provider not in providers:
            _provider(scope, spec.provider)
        network = self.networks.get(spec.provider)
        if network is not None and network.region != spec.region:
            network = None  # VPCs are regional: the allow-list it is
        clients = [self.nodes[n] for n, placed in sorted(env.placement.items())
                   if any(estate.services[s].needs.postgres for s in placed)]
        return ManagedPg(self, "managed-postgres", provider=spec.provider,
                         region=spec.region, plan=spec.plan, services=estate.services,
                         clients=clients, network=network, version=spec.version)


class EstateEdge(Construct):
    """The front door of an environment: Tunnel(s) from its nodes, the edge Worker on every
    public hostname, the managed WAF and rate limits, Hyperdrive to the Postgres primary,
    and R2 (logs with retention, the services' buckets). Zone-wide pieces (WAF, rate
    limits, zone settings) are the zone stack's; the state bucket the bootstrap stack's."""

    def __init__(self, scope: Construct, id: str, *, estate: Estate, nodes: EstateNodes,
                 worker_script: Path) -> None:
        super().__init__(scope, id)
        env = estate.env
        account = env.cloudflare.account_id
        cloudflare_provider(scope)
        # Only nodes running services get the services' tunnel token (and so a cloudflared).
        placed = [nodes.nodes[name] for name, names in sorted(env.placement.items())
                  if name in nodes.nodes and names]
        self.tunnel = Tunnel(self, "tunnel", zone=env.zone, services=estate.services,
                             nodes=placed, placement=env.placement,
                             strategy=env.tunnel.strategy,
                             weights=env.tunnel.weights if env.tunnel.strategy == "per_node"
                             else None)
        self.logs = R2LogSink(self, "logs", account_id=account, bucket=env.cloudflare.logs_bucket,
                              retention_days=env.logs.retention_days,
                              nodes=list(nodes.nodes.values()))
        buckets = sorted({b for s in estate.services.values() for b in s.needs.r2_buckets})
        for bucket in buckets:
            R2Bucket(self, f"bucket-{bucket}", account_id=account, name=f"{env.name}-{bucket}")
        if nodes.postgres:  # continuous WAL + base backups of the primary (ADR 0011)
            pg = nodes.postgres[0]
            self.backups = PgBackups(self, "pg-backups", account_id=account,
                                     settings=settings_for(env, pg_version=pg.props.version),
                                     node=pg.host)
        hyperdrive_id = None
        reader = hyperdrive_service(estate.services)
        if nodes.postgres and reader is not None:
            pg = nodes.postgres[0]
            # Created once Postgres can answer: after the primary's address came back
            # from `tofu output` (ADR 0007); before that, only its path. Its TLS pins the
            # node's certificate authority, once imported (ADR 0025).
            ready = env.observed_value(PG_ADDRESS_OUTPUT) is not None
            ca = env.observed_value(CA_OUTPUT)
            self.hyperdrive = Hyperdrive(self, "hyperdrive", zone=env.zone, node=pg.host,
                                         service=reader, password=pg.passwords[reader.name],
                                         listen_address=env.mesh_address(pg.host.name),
                                         ca_certificate=ca if isinstance(ca, str) else None,
                                         ready=ready)
            hyperdrive_id = self.hyperdrive.id_ref
        worker = estate.services.get(WORKER_SERVICE)
        self.worker = EdgeWorker(self, "worker", zone=env.zone, services=estate.services,
                                 script=worker_script, tunnel=self.tunnel,
                                 kv_namespaces=worker.needs.kv_namespaces if worker else (),
                                 hyperdrive_id=hyperdrive_id, edge_logs=env.logs.edge,
                                 logs_bucket=self.logs.bucket.name_ref)
        if env.logs.edge == "logpush" or env.logs.http_requests:  # ADR 0035; EK224
            EdgeLogpush(self, "logpush", zone=env.zone, bucket=env.cloudflare.logs_bucket,
                        script_name=self.worker.script_name,
                        trace_events=env.logs.edge == "logpush",
                        http_requests=env.logs.http_requests)
