"""The plain values the L2 constructs take: a service and the Cloudflare zone it is served on.

`Service` (with `Needs`, `Cache`, `RateLimit`) mirrors CUE's ``#Service`` field by field (a
test keeps the two in agreement); the CUE model (`edgekit.cue.model`) structures the
exported services into these very classes, so the L3 estate layer hands them to the L2
constructs unchanged. `CloudflareZone` is what an environment is on Cloudflare: the
account, the zone, the environment's name (it prefixes the names of the Cloudflare
resources) and its host label. Nothing here imports CUE or any construct.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from edgekit.core.errors import Problem
from edgekit.schema.props import PropsError, problems_in

PG_ADDRESS_OUTPUT = "pg_primary_private_ip"
"""Stack output (imported back into CUE) with the Postgres primary's private address."""
PG_CIDR_OUTPUT = "pg_private_cidr"
"""Stack output with the private range allowed to reach Postgres (pg_hba)."""
Role = Literal["edge", "postgres"]
"""What a node is for: ``edge`` runs services behind the tunnel, ``postgres`` the primary."""
TunnelStrategy = Literal["replicas", "per_node"]
R2Location = Literal["apac", "wnam", "enam", "weur", "eeur", "oc"]
"""Where R2 places a bucket (its location hint): Asia-Pacific, western and eastern North
America, western and eastern Europe, Oceania."""
CloudflarePlan = Literal["free", "pro", "business", "enterprise"]
"""How a `Tunnel` reaches its nodes (ADR 0006)."""
WORKER_COMPATIBILITY_DATE = "2026-04-01"
"""Pinned, and supported by the workerd the tests run (1.20260426, from wrangler 4.86)."""


@attrs.frozen(kw_only=True)
class Needs:
    """What a service uses besides its nodes.

    >>> from edgekit import Needs, Service
    >>> Service(name="web", port=8081, needs=Needs(postgres="ro")).pg_role
    'svc_web_ro'
    """

    postgres: Literal["ro", "rw"] | None = None
    """Its own database, read-only or read-write; None (default): no Postgres role."""
    r2_buckets: tuple[str, ...] = ()
    """R2 buckets the service uses; none by default."""
    kv_namespaces: tuple[str, ...] = ()
    """Workers KV namespaces (the edge Worker's); none by default."""


@attrs.frozen(kw_only=True)
class Cache:
    """What the edge Worker may cache for a service; nothing by default.

    >>> from edgekit import Cache, Service
    >>> web = Service(name="web", port=8081, hostnames=("www.example.com",),
    ...               cache=Cache(paths=("/assets/",), ttl_seconds=300))
    >>> web.cache.ttl_seconds
    300
    """

    paths: tuple[str, ...] = ()
    ttl_seconds: int = 0


@attrs.frozen(kw_only=True)
class RateLimit:
    """At most `requests` per client per `period_seconds` on the service's hostnames
    (`EdgeSecurity` makes the rule).

    >>> from edgekit import RateLimit, Service
    >>> api = Service(name="api", port=8080, hostnames=("api.example.com",),
    ...               rate_limit=RateLimit(requests=600, period_seconds=60))
    >>> api.rate_limit.requests
    600
    """

    requests: int
    period_seconds: int


@attrs.frozen(kw_only=True)
class Service:
    """A service: where it listens, which public hostnames route to it, what it needs.

    >>> from edgekit import Needs, Service
    >>> api = Service(name="api-v2", port=8080, hostnames=("api.example.com",),
    ...               needs=Needs(postgres="rw"))
    >>> api.pg_role, api.pg_database
    ('svc_api_v2_rw', 'api_v2')
    """

    name: str
    kind: Literal["vps", "worker"] = "vps"
    """``vps`` (default): runs on nodes behind the tunnel; ``worker``: on Cloudflare."""
    port: int | None = None
    """Loopback port on its nodes; required for a ``vps`` service that is served."""
    hostnames: tuple[str, ...] = ()
    """Public hostnames (in the zone); none: reachable through nothing public."""
    health_path: str = "/healthz"
    """What the load balancer's monitor asks for (``per_node`` tunnels)."""
    env: dict[str, str] = attrs.field(factory=dict)
    """Plain environment of the service's process; empty by default."""
    secrets: tuple[str, ...] = ()
    """Names of the secrets the service reads; none by default."""
    needs: Needs = Needs()
    cache: Cache = Cache()
    rate_limit: RateLimit | None = None
    """None (default): no rate limit rule."""

    @property
    def pg_role(self) -> str | None:
        """The Postgres role of this service: ``svc_<name>_<ro|rw>``, or None."""
        mode = self.needs.postgres
        return f"svc_{self.name.replace('-', '_')}_{mode}" if mode else None

    @property
    def pg_database(self) -> str | None:
        return self.name.replace("-", "_") if self.needs.postgres else None


@attrs.frozen(kw_only=True)
class CloudflareZone:
    """An environment on Cloudflare: its account, zone and name (which prefixes the names
    of its Cloudflare resources), and the label its hostnames carry before the zone.

    >>> from edgekit import CloudflareZone
    >>> zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
    ...                       environment="staging", host_label="staging")
    >>> zone.public_hostname("api.example.com"), zone.origin_hostname("api", "edge-1")
    ('api.staging.example.com', 'api-edge-1-origin-staging.example.com')
    """

    account_id: str
    zone_id: str
    zone: str
    """The zone's name, e.g. ``example.com``."""
    environment: str
    host_label: str | None = None
    """None (default): hostnames as written; else inserted before the zone."""
    plan: CloudflarePlan | None = None
    """The zone's Cloudflare plan. None (default): not declared, and the plan rules
    (EK200-EK219: rate limits, the managed WAF, load balancing, Logpush) leave the zone
    alone; declare it to have them hold the stack to what the plan allows."""
    addons: tuple[str, ...] = ()
    """Add-ons bought beside the plan, e.g. ``load_balancing``."""
    workers_paid: bool = False
    """The account is on Workers Paid (Logpush of Workers Trace Events)."""

    def origin_hostname(self, service: str, node: str | None = None) -> str:
        """Where a service answers behind Cloudflare Tunnel (only for the Worker, ADR 0009):
        ``<svc>[-<node>]-origin[-<label>].<zone>``, one label below the zone so the
        zone's Universal SSL certificate covers it (per node for ``per_node``)."""
        label = f"{service}-{node}" if node else service
        suffix = f"-{self.host_label}" if self.host_label else ""
        return f"{label}-origin{suffix}.{self.zone}"

    def public_hostname(self, host: str) -> str:
        """The hostname in this environment: the host label goes before the zone."""
        zone = self.zone
        if not self.host_label:
            return host
        if host == zone:
            return f"{self.host_label}.{zone}"
        if host.endswith(f".{zone}"):
            return f"{host[: -len(zone) - 1]}.{self.host_label}.{zone}"
        raise ValueError(f"hostname {host!r} is not in the zone {zone!r} of env "
                         f"{self.environment!r}")


def routing_table(zone: CloudflareZone, services: Mapping[str, Service]) -> dict[str, Any]:
    """The edge Worker's ROUTES: public host → the service behind it, with what the
    Worker may cache (services that run on nodes only)."""
    table: dict[str, Any] = {}
    for name, service in sorted(services.items()):
        if service.kind != "vps":
            continue
        for host in service.hostnames:
            table[zone.public_hostname(host)] = {
                "service": name,
                "cache_paths": list(service.cache.paths),
                "cache_ttl_seconds": service.cache.ttl_seconds,
            }
    return table



def _plain(_instance: Any, _field: Any, value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def checked_services(path: str, services: Mapping[str, Service]) -> dict[str, Service]:
    """`services` checked against CUE's ``#Service`` (as the CUE estate's are when loaded),
    each under its own name; every problem is reported, located at ``$.services.<key>``."""
    problems: list[Problem] = []
    for key, service in sorted(services.items()):
        where = f"$.services.{key}"
        if not isinstance(service, Service):
            problems.append(Problem(path=path, address="#Service", pointer=where,
                                    message=f"expected a Service, got {type(service).__name__}"))
            continue
        if key != service.name:
            problems.append(Problem(path=path, address="#Service", pointer=where,
                                    message=f"service {service.name!r} is given under the "
                                            f"name {key!r}; use its own name"))
        data = attrs.asdict(service, filter=lambda _, value: value is not None,
                            value_serializer=_plain)
        problems += [attrs.evolve(p, pointer=where + p.pointer.removeprefix("$"))
                     for p in problems_in("Service", data, path)]
    if problems:
        raise PropsError(problems)
    return dict(services)
