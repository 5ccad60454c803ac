"""EdgeWorker: the front door. Uploads services/edge-worker as a module Worker.

The script is copied into the stack's folder as an asset (``assets/edge-worker/index.js``)
and uploaded with ``content_file`` and its ``content_sha256``, so a change to the Worker is
a change to the plan. Bindings are generated from CUE: the routing table (``ROUTES``), the
origins behind the tunnel (``ORIGINS``), KV namespaces, R2 buckets and Hyperdrive. Every
public hostname of every service is a Workers custom domain (Cloudflare creates its DNS).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edgekit.constructs.base import validated
from edgekit.constructs.props import EdgeWorkerProps
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource, stack_of
from edgekit.core.errors import ConstructError
from edgekit.core.refs import Ref
from edgekit.core.stack import Stack
from edgekit.cue.generate import WORKER_COMPATIBILITY_DATE, routing_table
from edgekit.cue.model import Estate

ASSET = "assets/edge-worker/index.js"


class EdgeWorker(Construct):
    """The edge Worker on every public hostname of the estate's services, uploaded from
    `script`, routing by host to `origins` (e.g. `Tunnel.origins_by_service`).

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import CloudflareSide, DeploySpec, Env, PgSpec, Service
    >>> env = Env(name="prod", deploy=DeploySpec(repository="github:me/estate", ref="deploy/prod"),
    ...           cloudflare=CloudflareSide(account_id="0" * 32, zone_id="1" * 32,
    ...                                     zone="example.com", state_bucket="state",
    ...                                     logs_bucket="logs"),
    ...           placement={"edge-1": ("api",)}, postgres=PgSpec())
    >>> from pathlib import Path
    >>> from edgekit import EdgeWorker, Estate
    >>> estate = Estate(Path("."), env, {
    ...     "api": Service(name="api", port=8080, hostnames=("api.example.com",))})
    >>> worker = EdgeWorker(stack, "worker", estate=estate,
    ...                     script=Path("services/edge-worker/src/index.js"),
    ...                     origins={"api": [{"url": "https://api.origin.example.com",
    ...                                       "weight": 1}]})
    >>> worker.resource.type
    'cloudflare_workers_script'
    """
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        estate: Estate,
        script: Path,
        origins: Mapping[str, Sequence[Mapping[str, Any]]],
        r2_buckets: Mapping[str, Ref | str] | None = None,
        hyperdrive_id: Ref | None = None,
        origin_access: tuple[Ref, Ref] | None = None,
        compatibility_date: str = WORKER_COMPATIBILITY_DATE,
    ) -> None:
        super().__init__(scope, id)
        env = estate.env
        self._check_hostnames(estate)
        hostnames = sorted({env.public_hostname(h) for s in estate.services.values()
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
        stack.add_asset(ASSET, code)
        account = env.cloudflare.account_id
        script_name = f"edge-worker-{env.name}"
        bindings: list[dict[str, Any]] = [
            {"type": "plain_text", "name": "ROUTES",
             "text": json.dumps(routing_table(estate), sort_keys=True)},
            {"type": "plain_text", "name": "ORIGINS",
             "text": json.dumps(origins, sort_keys=True)},
            {"type": "plain_text", "name": "EDGEKIT_ENV", "text": env.name},
        ]
        worker = estate.services.get("edge-worker")
        for namespace in worker.needs.kv_namespaces if worker else ():
            kv = Resource(self, f"kv-{namespace}", type="cloudflare_workers_kv_namespace",
                          config={"account_id": account, "title": f"{env.name}-{namespace}"})
            bindings.append({"type": "kv_namespace", "name": namespace.replace("-", "_").upper(),
                             "namespace_id": kv.attr("id")})
        for binding, bucket in sorted((r2_buckets or {}).items()):
            bindings.append({"type": "r2_bucket", "name": binding, "bucket_name": bucket})
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
        })
        for host in hostnames:
            Resource(self, f"domain-{host.replace('.', '-')}",
                     type="cloudflare_workers_custom_domain", config={
                         "account_id": account, "zone_id": env.cloudflare.zone_id,
                         "hostname": host, "service": self.resource.attr("script_name")})

    def _check_hostnames(self, estate: Estate) -> None:
        zone = estate.env.cloudflare.zone
        owners: dict[str, str] = {}
        for name, service in sorted(estate.services.items()):
            for host in service.hostnames:
                if host != zone and not host.endswith(f".{zone}"):
                    raise ConstructError(
                        f"[{self.node.path}] hostname {host!r} of service {name!r} is outside "
                        f"the zone {zone!r}; the Worker can only serve hostnames of its zone")
                if host in owners:
                    raise ConstructError(
                        f"[{self.node.path}] hostname {host!r} is claimed by two services: "
                        f"{owners[host]} and {name}")
                owners[host] = name
