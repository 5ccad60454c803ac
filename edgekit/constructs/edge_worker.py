"""EdgeWorker: the front door. Uploads services/edge-worker as a module Worker.

The script is copied into the stack's folder as an asset (``assets/edge-worker/index.js``)
and uploaded with ``content_file`` and its ``content_sha256``, so a change to the Worker is
a change to the plan. Bindings come from the services it is given: the routing table
(``ROUTES``), the origins behind the tunnel (``ORIGINS``), KV namespaces, R2 buckets and
Hyperdrive. Every public hostname of every service is a Workers custom domain (Cloudflare
creates its DNS).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from edgekit.constructs.base import validated
from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.facts import Where, WorkerFact, layout_of, record_zone
from edgekit.constructs.props import EdgeWorkerProps
from edgekit.constructs.tunnel import Tunnel
from edgekit.constructs.values import (
    WORKER_COMPATIBILITY_DATE,
    CloudflareZone,
    Service,
    checked_services,
    routing_table,
)
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref
from edgekit.core.stack import Stack

ASSET = "assets/edge-worker/index.js"
EDGE_LOGS_BINDING = "EDGE_LOGS"
"""The R2 binding the Worker writes its edge records through (services/edge-worker)."""


class EdgeWorker(Construct):
    """The edge Worker on every public hostname of `services`, uploaded from `script`,
    routing by host (``ROUTES``, from the services that run on nodes) to the origins behind
    `tunnel` (with the tunnel's Access token, ADR 0009), or to `origins` given as
    service → [{url, weight[, node]}]; `kv_namespaces` and `r2_buckets` become its bindings.
    `edge_logs` says how its record of each request reaches `logs_bucket` (ADR 0035):
    ``"worker"`` binds the bucket as ``EDGE_LOGS``, ``"logpush"`` has the Worker print each
    record for a Logpush job (`EdgeLogpush`), ``"off"`` keeps none.

    >>> from pathlib import Path
    >>> from edgekit import (PROVIDERS, App, CloudflareZone, EdgeWorker, LocalState, Service,
    ...                      Stack, Tunnel, VpsNode)
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
    ...                       environment="prod")
    >>> api = Service(name="api", port=8080, hostnames=("api.example.com",))
    >>> node = VpsNode(stack, "edge-1", provider=PROVIDERS[0], region="singapore",
    ...                size="small")
    >>> tunnel = Tunnel(stack, "tunnel", zone=zone, nodes=[node], services={"api": api})
    >>> worker = EdgeWorker(stack, "worker", zone=zone, services={"api": api},
    ...                     script=Path("services/edge-worker/src/index.js"), tunnel=tunnel)
    >>> worker.origins
    {'api': [{'url': 'https://api-origin.example.com', 'weight': 1}]}
    """
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        zone: CloudflareZone,
        services: Mapping[str, Service],
        script: Path,
        tunnel: Tunnel | None = None,
        origins: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
        kv_namespaces: Sequence[str] = (),
        r2_buckets: Mapping[str, Ref | str] | None = None,
        hyperdrive_id: Ref | None = None,
        origin_access: tuple[Ref, Ref] | None = None,
        compatibility_date: str = WORKER_COMPATIBILITY_DATE,
        edge_logs: Literal["worker", "logpush", "off"] = "off",
        logs_bucket: Ref | str | None = None,
    ) -> None:
        super().__init__(scope, id)
        services = checked_services(self.node.path, services)
        if tunnel is not None:  # its origins, reachable with its Access token only
            origins = tunnel.origins_by_service() if origins is None else origins
            origin_access = origin_access or (tunnel.access_client_id,
                                              tunnel.access_client_secret)
        self.origins: dict[str, list[dict[str, Any]]] = {
            name: [dict(o) for o in found] for name, found in (origins or {}).items()}
        self._check_hostnames(zone, services)
        hostnames = sorted({zone.public_hostname(h) for s in services.values()
                            for h in s.hostnames})
        self.props = validated(self, "EdgeWorker", EdgeWorkerProps, {
            "name": id, "script_path": "services/edge-worker/src/index.js",
            "compatibility_date": compatibility_date, "hostnames": hostnames})
        if not script.is_file():
            raise ConstructError(f"[{self.node.path}] Worker script {script} does not exist")
        code = script.read_bytes()
        stack = stack_of(self)
        if not isinstance(stack, Stack):
            raise ConstructError(f"[{self.node.path}] an EdgeWorker must be inside a Stack")
        cloudflare_provider(self)
        stack.add_asset(ASSET, code)
        account = zone.account_id
        script_name = f"edge-worker-{zone.environment}"
        bindings: list[dict[str, Any]] = [
            {"type": "plain_text", "name": "ROUTES",
             "text": json.dumps(routing_table(zone, services), sort_keys=True)},
            {"type": "plain_text", "name": "ORIGINS",
             "text": json.dumps(self.origins, sort_keys=True)},
            {"type": "plain_text", "name": "EDGEKIT_ENV", "text": zone.environment},
        ]
        for namespace in kv_namespaces:
            kv = Resource(self, f"kv-{namespace}", type="cloudflare_workers_kv_namespace",
                          config={"account_id": account,
                                  "title": f"{zone.environment}-{namespace}"})
            bindings.append({"type": "kv_namespace", "name": namespace.replace("-", "_").upper(),
                             "namespace_id": kv.attr("id")})
        for binding, bucket in sorted((r2_buckets or {}).items()):
            bindings.append({"type": "r2_bucket", "name": binding, "bucket_name": bucket})
        # The edge's record of each request (ADR 0035): into the logs bucket through a
        # binding, or printed for a Workers Trace Events Logpush job.
        if edge_logs == "worker":
            if logs_bucket is None:
                raise ConstructError(f"[{self.node.path}] edge_logs='worker' needs the "
                                     "logs_bucket the Worker writes its records to")
            bindings.append({"type": "r2_bucket", "name": EDGE_LOGS_BINDING,
                             "bucket_name": logs_bucket})
        elif edge_logs == "logpush":
            bindings.append({"type": "plain_text", "name": "EDGE_LOGS_MODE", "text": "logpush"})
        if hyperdrive_id is not None:
            bindings.append({"type": "hyperdrive", "name": "PG", "id": hyperdrive_id})
        if origin_access is not None:  # the service token Access wants at origins (ADR 0009)
            client_id, client_secret = origin_access
            bindings.append({"type": "plain_text", "name": "ORIGIN_ACCESS_CLIENT_ID",
                             "text": client_id})
            bindings.append({"type": "secret_text", "name": "ORIGIN_ACCESS_CLIENT_SECRET",
                             "text": client_secret})
        self.resource = Resource(self, "Resource", type="cloudflare_workers_script", config={
            "account_id": account, "script_name": script_name,
            "content_file": ASSET, "content_sha256": hashlib.sha256(code).hexdigest(),
            "main_module": "index.js", "compatibility_date": compatibility_date,
            "bindings": bindings,
            "observability": {"enabled": True},
            **({"logpush": True} if edge_logs == "logpush" else {}),
        })
        self.script_name = script_name
        for host in hostnames:
            Resource(self, f"domain-{host.replace('.', '-')}",
                     type="cloudflare_workers_custom_domain", config={
                         "account_id": account, "zone_id": zone.zone_id,
                         "hostname": host, "service": self.resource.attr("script_name")})
        self._record(zone, services, origin_access)

    def _record(self, zone: CloudflareZone, services: Mapping[str, Service],
                origin_access: tuple[Ref, Ref] | None) -> None:
        """What the check rules judge at synth (`edgekit.constructs.facts`): each routed
        service has origins (EK185, EK186), behind the Access token it holds (EK183)."""
        layout, where = layout_of(self), Where(path=self.node.path)
        layout.add_services(where, services)
        record_zone(self, zone)
        routes = {host: entry["service"] for host, entry in routing_table(zone, services).items()}
        origins = {name: tuple(sorted({urlsplit(str(o.get("url", ""))).hostname or ""
                                       for o in found}))
                   for name, found in sorted(self.origins.items()) if found}
        token = origin_access[0] if origin_access is not None else None
        layout.workers.append(WorkerFact(
            routes=routes, origins=origins,
            token=token.address if isinstance(token, Ref) else None, where=where))

    def _check_hostnames(self, zone: CloudflareZone, services: Mapping[str, Service]) -> None:
        owners: dict[str, str] = {}
        for name, service in sorted(services.items()):
            for host in service.hostnames:
                if host != zone.zone and not host.endswith(f".{zone.zone}"):
                    raise ConstructError(
                        f"[{self.node.path}] hostname {host!r} of service {name!r} is outside "
                        f"the zone {zone.zone!r}; the Worker can only serve hostnames of its "
                        "zone")
                if host in owners:
                    raise ConstructError(
                        f"[{self.node.path}] hostname {host!r} is claimed by two services: "
                        f"{owners[host]} and {name}")
                owners[host] = name
