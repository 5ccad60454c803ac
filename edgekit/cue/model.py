"""The estate as typed data: services and environments from the committed CUE export.

Services are the L2 constructs' own `edgekit.constructs.values.Service` (CUE's ``#Service``
mirrors it); an `Env` gives the L2 view of itself on Cloudflare as `Env.zone`.

`Estate.load(root, env)` refuses a stale export (it only reads: `edgekit synth` and
`edgekit cue export` refresh them; ``check_fresh=False`` where the caller made sure
already), validates every service and environment against
its exported JSON Schema, and structures them into these attrs classes.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

import attrs

from edgekit.clouds import CloudName
from edgekit.constructs.values import (
    PG_ADDRESS_OUTPUT,
    PG_CIDR_OUTPUT,
    Cache,
    CloudflareZone,
    Needs,
    RateLimit,
    Service,
)
from edgekit.cue.export import export_names, load_export, require_fresh
from edgekit.schema.props import structure


@attrs.frozen(kw_only=True)
class Node:
    name: str
    provider: CloudName
    region: str
    size: str
    roles: tuple[Literal["edge", "postgres"], ...] = ()
    mesh_host: int | None = None
    """Host number in the env's WireGuard mesh; None: the node is not in the mesh."""


@attrs.frozen(kw_only=True)
class TunnelSpec:
    strategy: Literal["replicas", "per_node"] = "replicas"
    weights: dict[str, int] = attrs.field(factory=dict)

    def weight(self, node: str) -> int:
        return self.weights.get(node, 1)


@attrs.frozen(kw_only=True)
class DeploySpec:
    """Where nodes pull from and how `edgekit deploy` moves them (ADR 0033); defaults as
    in cue/schema.cue."""

    repository: str
    ref: str
    waves: tuple[tuple[str, ...], ...] | None = None
    """None: one canary node per service, then the rest (`edgekit.deploy.plan`)."""
    wave_timeout_seconds: int = 1200
    health_timeout_seconds: int = 120
    stale_after_seconds: int = 900


@attrs.frozen(kw_only=True)
class CloudflareSide:
    account_id: str
    zone_id: str
    zone: str
    state_bucket: str
    logs_bucket: str
    plan: Literal["free", "pro", "business", "enterprise"] = "free"
    """The zone's Cloudflare plan (edgekit/check/plans.py: what each plan may use)."""
    addons: tuple[str, ...] = ()
    """Add-ons bought beside the plan, e.g. ``load_balancing``."""
    workers_paid: bool = False


@attrs.frozen(kw_only=True)
class LogsSpec:
    """The env's logs (ADR 0035, 0037); defaults as in cue/schema.cue."""

    retention_days: int = 30
    """Locked that long in the bucket, then deleted."""
    edge: Literal["worker", "logpush", "off"] = "worker"
    """How the Worker's records reach the logs bucket."""
    http_requests: bool = False
    """Cloudflare's HTTP request logs of the zone (Logpush, Enterprise)."""


@attrs.frozen(kw_only=True)
class MeshSpec:
    """The env's WireGuard mesh (ADR 0010); defaults as in cue/schema.cue."""

    cidr: str = "10.100.0.0/24"
    port: int = 51820
    public_keys: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PgBackupsSpec:
    """Backups of the environment's Postgres (ADR 0011); defaults as in cue/schema.cue."""

    bucket: str = ""
    """Empty only when built by hand; CUE fills in ``edgekit-pg-<env>``."""
    retention_full: int = 4
    full_calendar: str = "Sun *-*-* 03:00:00"
    diff_calendar: str = "Mon..Sat *-*-* 03:00:00"
    archive_timeout_seconds: int = 60
    lock_days: int | None = None
    """None: derived from retention_full and the full calendar (ADR 0037)."""


@attrs.frozen(kw_only=True)
class ManagedPgSpec:
    provider: CloudName
    """A cloud with a managed Postgres (`Cloud.has_managed_postgres`; `ManagedPg` refuses
    another, naming the ones that have it)."""
    region: str
    plan: str
    version: int = 16


@attrs.frozen(kw_only=True)
class PgSpec:
    kind: Literal["self", "managed"] = "self"
    """"self": PgPrimary on the postgres node; "managed": ManagedPg from `managed`."""
    managed: ManagedPgSpec | None = None
    backups: PgBackupsSpec = PgBackupsSpec()


@attrs.frozen(kw_only=True)
class Env:
    name: str
    cloudflare: CloudflareSide
    nodes: dict[str, Node] = attrs.field(factory=dict)
    """No nodes: an environment with only its Cloudflare side."""
    placement: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    """No placement: no service runs anywhere yet."""
    observed: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    host_label: str | None = None
    tunnel: TunnelSpec = TunnelSpec()
    postgres: PgSpec
    """Required: CUE fills in the backup bucket ``edgekit-pg-<env>`` and the defaults."""
    mesh: MeshSpec = MeshSpec()
    deploy: DeploySpec
    """Required: CUE fills in the repository and ``deploy/<env>`` when not given."""
    logs: LogsSpec = LogsSpec()

    @property
    def zone(self) -> CloudflareZone:
        """This environment as the L2 constructs see it on Cloudflare."""
        side = self.cloudflare
        return CloudflareZone(account_id=side.account_id, zone_id=side.zone_id,
                              zone=side.zone, environment=self.name,
                              host_label=self.host_label, plan=side.plan,
                              addons=tuple(side.addons), workers_paid=side.workers_paid)

    def origin_hostname(self, service: str, node: str | None = None) -> str:
        """`CloudflareZone.origin_hostname` of this environment."""
        return self.zone.origin_hostname(service, node)

    def public_hostname(self, host: str) -> str:
        """`CloudflareZone.public_hostname` of this environment."""
        return self.zone.public_hostname(host)

    def mesh_address(self, node: str) -> str | None:
        """The node's address in the WireGuard mesh (``mesh.cidr`` + ``mesh_host``), or None
        for a node outside the mesh."""
        spec = self.nodes.get(node)
        if spec is None or spec.mesh_host is None:
            return None
        return str(ipaddress.ip_network(self.mesh.cidr).network_address + spec.mesh_host)

    @property
    def primary(self) -> str | None:
        """The self-hosted Postgres primary's node (role ``postgres``; ``postgres.kind``
        "self"), or None (a managed database, or no such node)."""
        if self.postgres.kind != "self":
            return None
        return next((n for n, s in sorted(self.nodes.items()) if "postgres" in s.roles), None)

    def postgres_host(self) -> str | None:
        """Where services reach Postgres: the primary's mesh address (ADR 0010) when it is
        self-hosted on a mesh node, else the imported `PG_ADDRESS_OUTPUT` (the private
        address, or a managed database's host), or None before the first import."""
        primary = self.primary
        mesh = self.mesh_address(primary) if primary else None
        if mesh is not None:
            return mesh
        host = self.observed_value(PG_ADDRESS_OUTPUT)
        return host if isinstance(host, str) else None

    def observed_value(self, output: str) -> Any:
        """A value imported from `tofu output -json`, or None before the first import."""
        entry = self.observed.get(output)
        return entry.get("value") if entry else None


@attrs.frozen
class Estate:
    root: Path
    env: Env
    services: dict[str, Service]

    @classmethod
    def load(cls, root: Path, env: str, *, check_fresh: bool = True) -> Estate:
        if check_fresh:
            require_fresh(root)
        data = load_export(root, env)
        where = f"cue/export/{env}.json"
        services = {
            name: structure("Service", Service, spec, f"{where} services.{name}")
            for name, spec in sorted(data["services"].items())
        }
        return cls(root, structure("Env", Env, data["env"], f"{where} env"), services)

    @staticmethod
    def env_names(root: Path) -> list[str]:
        return export_names(root)


__all__ = ["PG_ADDRESS_OUTPUT", "PG_CIDR_OUTPUT", "Cache", "CloudflareSide", "DeploySpec", "Env",
           "Estate", "LogsSpec", "ManagedPgSpec", "MeshSpec", "Needs", "Node", "PgBackupsSpec",
           "PgSpec", "RateLimit", "Service", "TunnelSpec"]
