"""R2: buckets, and R2LogSink — the only durable log store.

R2LogSink makes the bucket; per log prefix (`LOG_PREFIXES`) a bucket lock that refuses to
delete or overwrite an object for `retention_days` and a lifecycle rule that deletes it
then (ADR 0037); and an account-owned API token (it outlives whoever applied it, ADR 0032) for the
objects of that one bucket. Its S3 credentials
(access key id = token id, secret = sha256 of the token value) reach the nodes as sensitive
values inside their boot documents; they never appear in the JSON.

R2 has no write-only permission: the token's "Bucket Item Write" can also read, list and
delete the bucket's objects. The lock is what keeps a node from erasing logs: the token
cannot change bucket settings (lock, lifecycle), and no object under a log prefix can be
deleted or overwritten before it is `retention_days` old. Keys outside the log prefixes
(``status/``, ``mesh/``: rewritten by the nodes) are neither locked nor expired.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from edgekit.constructs.base import validated
from edgekit.constructs.cloudflare import cloudflare_provider
from edgekit.constructs.facts import BucketFact, Where, record_bucket
from edgekit.constructs.node import VpsNode
from edgekit.constructs.props import R2LogSinkProps
from edgekit.constructs.values import R2Location
from edgekit.core.construct import Construct
from edgekit.core.elements import Resource, stack_of
from edgekit.core.refs import Ref
from edgekit.core.stack import r2_endpoint
from edgekit.deploy.refs import status_key
from edgekit.obs.contract import LOG_PREFIXES, NODE_KEYS
from edgekit.obs.vector import VECTOR_VERSION, vector_settings

# Cloudflare's permission group "Workers R2 Storage Bucket Item Write".
R2_BUCKET_ITEM_WRITE = "2efd5506f9c8494dacb1fa10a3e7d5b6"
DAY = 86400


def bucket_scope(account_id: str, bucket: str) -> str:
    """The policy resource key of one R2 bucket (an API token scoped to it alone)."""
    return f"com.cloudflare.edge.r2.bucket.{account_id}_default_{bucket}"


def rule_id(prefix: str) -> str:
    return prefix.strip("/").replace("/", "-") or "all"


def bucket_lock(scope: Construct, id: str, *, account_id: str, bucket: Ref | str,
                prefixes: Sequence[str], days: int) -> Resource:
    """A bucket lock: objects under each of `prefixes` cannot be deleted or overwritten until
    they are `days` old (`cloudflare_r2_bucket_lock`; new objects can still be written)."""
    return Resource(scope, id, type="cloudflare_r2_bucket_lock", config={
        "account_id": account_id, "bucket_name": bucket,
        "rules": [{"id": f"lock-{rule_id(p)}", "enabled": True, "prefix": p,
                   "condition": {"type": "Age", "max_age_seconds": days * DAY}}
                  for p in prefixes],
    })


class R2Bucket(Construct):
    """An R2 bucket of the account.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import R2Bucket
    >>> R2Bucket(stack, "uploads", account_id="0" * 32, name="prod-uploads").node.id
    'uploads'
    """
    def __init__(self, scope: Construct, id: str, *, account_id: str, name: str,
                 location: R2Location = "apac") -> None:
        super().__init__(scope, id)
        self.name = name
        self.account_id = account_id
        cloudflare_provider(self)
        self.resource = Resource(self, "Resource", type="cloudflare_r2_bucket", config={
            "account_id": account_id, "name": name, "location": location})

    @property
    def name_ref(self) -> Ref:
        return self.resource.attr("name")


class R2LogSink(Construct):
    """The logs bucket, locked and expired after `retention_days` under the log prefixes,
    and a token for its objects; each node in `nodes` (or given later with `ship_from`) gets
    the sink and its Vector settings.

    >>> from edgekit import App, LocalState, Stack
    >>> stack = Stack(App(), "prod", state=LocalState())
    >>> from edgekit import PROVIDERS, R2LogSink, VpsNode
    >>> node = VpsNode(stack, "edge-1", provider=PROVIDERS[0], region="singapore",
    ...                size="small")
    >>> logs = R2LogSink(stack, "logs", account_id="0" * 32, bucket="prod-logs",
    ...                  retention_days=14, nodes=[node])
    >>> node.boot["log_sink"]["bucket"]
    'prod-logs'
    """
    def __init__(self, scope: Construct, id: str, *, account_id: str, bucket: str,
                 retention_days: int = 30, location_hint: R2Location = "apac",
                 nodes: Sequence[VpsNode] = ()) -> None:
        super().__init__(scope, id)
        self.props = validated(self, "R2LogSink", R2LogSinkProps, {
            "bucket": bucket, "retention_days": retention_days,
            "location_hint": location_hint})
        self.account_id = account_id
        self.bucket = R2Bucket(self, "bucket", account_id=account_id, name=bucket,
                               location=self.props.location_hint)
        days = self.props.retention_days
        self.lock = bucket_lock(self, "lock", account_id=account_id,
                                bucket=self.bucket.name_ref, prefixes=LOG_PREFIXES, days=days)
        Resource(self, "lifecycle", type="cloudflare_r2_bucket_lifecycle", config={
            "account_id": account_id, "bucket_name": self.bucket.name_ref,
            "rules": [{"id": f"expire-{rule_id(p)}", "enabled": True,
                       "conditions": {"prefix": p},
                       "delete_objects_transition": {"condition": {
                           "type": "Age", "max_age": days * DAY}}}
                      for p in LOG_PREFIXES],
        })
        self.token = Resource(self, "writer", type="cloudflare_account_token", config={
            "account_id": account_id, "name": f"edgekit log writer {bucket}",
            "policies": [{"effect": "allow",
                          "resources": json.dumps({bucket_scope(account_id, bucket): "*"}),
                          "permission_groups": [{"id": R2_BUCKET_ITEM_WRITE}]}],
        })
        self.endpoint = r2_endpoint(account_id)
        record_bucket(self, BucketFact(
            what="logs bucket", bucket=bucket, prefixes=LOG_PREFIXES,
            lock_seconds=float(days * DAY), keep=NODE_KEYS, where=Where(path=self.node.path)))
        for node in nodes:
            self.ship_from(node)

    def ship_from(self, node: VpsNode) -> None:
        """Give `node` the sink: endpoint, bucket and the token's S3 credentials (sensitive)."""
        node.boot["log_sink"] = {"endpoint": self.endpoint, "bucket": self.props.bucket,
                                 "region": "auto", "vector_version": VECTOR_VERSION,
                                 "status_key": status_key(stack_of(node).node.id, node.name)}
        node.boot["vector"] = vector_settings(stack=stack_of(node).node.id, node=node.name,
                                              endpoint=self.endpoint, bucket=self.props.bucket)
        key_id = self.token.attr("id").expression
        node.add_secret("log_sink_access_key_id", f"${{sensitive({key_id})}}")
        node.add_secret("log_sink_secret_access_key",
                        f"${{sha256({self.token.attr('value').expression})}}")
