"""EdgeLogpush: Cloudflare Logpush jobs that put the edge's logs in the logs bucket (ADR 0035).

Used when CUE chooses ``logs.edge: "logpush"`` (Workers Trace Events: the edge Worker's
``console.log`` of each edge record, its outcome and exceptions; needs Workers Paid) and/or
``logs.http_requests: true`` (the zone's own HTTP request logs; needs Enterprise). `edgekit
check` (EK224) holds both against the declared plan (EK225: a job writes what `edgekit logs`
reads). The default, ``logs.edge: "worker"``, needs neither: the Worker writes its records
through an R2 binding (`EdgeWorker`).

Each job writes gzip NDJSON under ``edge-logpush/<env>/<dataset>/{DATE}/`` of the logs bucket
(locked and expired with the other log prefixes; `edgekit logs sync` mirrors it and `edgekit
logs query` reads it as ``logpush_<dataset>``), timestamps as ``unixnano``, with the S3
credentials of an API token scoped to that one bucket. The credentials appear in
``destination_conf`` only as references to the token (never as text in the JSON).
"""

from __future__ import annotations

import json

from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.r2 import R2_BUCKET_ITEM_WRITE, bucket_scope
from edgekit.constructs.values import CloudflareZone
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource
from edgekit.obs.contract import LOGPUSH_ROOT
from edgekit.obs.logpush import FIELDS, TIMESTAMP_FORMAT

TRACE_EVENT_FIELDS = tuple(FIELDS["workers_trace_events"])
"""Workers Trace Events fields kept (developers.cloudflare.com/logs/reference/log-fields/
account/workers_trace_events/); ``Logs`` holds the edge records the Worker prints. The list is
`edgekit.obs.logpush`'s, which checks and reads what the job writes."""
HTTP_REQUEST_FIELDS = tuple(FIELDS["http_requests"])
"""HTTP requests fields kept; ``RayID`` joins the Worker's ``cf.ray`` attribute, ``ParentRayID``
the Worker's request to the origin to the client's."""


class EdgeLogpush(Construct):
    """Logpush jobs into the logs `bucket` for the edge Worker `script_name` (trace events)
    and, with `http_requests`, for the zone."""

    def __init__(self, scope: Construct, id: str, *, zone: CloudflareZone, bucket: str,
                 script_name: str, trace_events: bool = True,
                 http_requests: bool = False) -> None:
        super().__init__(scope, id)
        cloudflare_provider(self)
        account = zone.account_id
        self.token = Resource(self, "writer", type="cloudflare_api_token", config={
            "name": f"edgekit logpush writer {bucket}",
            "policies": [{"effect": "allow",
                          "resources": json.dumps({bucket_scope(account, bucket): "*"}),
                          "permission_groups": [{"id": R2_BUCKET_ITEM_WRITE}]}],
        })
        key_id = self.token.attr("id").expression
        secret = f"sha256({self.token.attr('value').expression})"
        env = zone.environment

        def destination(dataset: str) -> str:
            return (f"r2://{bucket}/{LOGPUSH_ROOT}/{env}/{dataset}/{{DATE}}?account-id={account}"
                    f"&access-key-id=${{{key_id}}}&secret-access-key=${{{secret}}}")

        self.jobs: list[Resource] = []
        if trace_events:
            self.jobs.append(Resource(self, "trace-events", type="cloudflare_logpush_job",
                                      config={
                "account_id": account, "dataset": "workers_trace_events", "enabled": True,
                "name": f"edgekit-{env}-edge-worker",
                "filter": json.dumps({"where": {"and": [
                    {"key": "ScriptName", "operator": "eq", "value": script_name}]}}),
                "destination_conf": destination("workers_trace_events"),
                "output_options": {"output_type": "ndjson",
                                   "timestamp_format": TIMESTAMP_FORMAT,
                                   "field_names": list(TRACE_EVENT_FIELDS)},
            }))
        if http_requests:
            self.jobs.append(Resource(self, "http-requests", type="cloudflare_logpush_job",
                                      config={
                "zone_id": zone.zone_id, "dataset": "http_requests", "enabled": True,
                "name": f"edgekit-{env}-http-requests",
                "destination_conf": destination("http_requests"),
                "output_options": {"output_type": "ndjson",
                                   "timestamp_format": TIMESTAMP_FORMAT,
                                   "field_names": list(HTTP_REQUEST_FIELDS)},
            }))
