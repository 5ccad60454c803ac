"""The nodes' reports, read from the logs bucket with the types they are written with.

A report is ``status/<env>/<node>.json`` (edgekit/deploy/agent.py writes it); it is checked
against the JSON Schema of CUE's ``#NodeStatus`` (cue/status.cue, exported by `edgekit cue
export`) and structured into `NodeStatus`, the same way construct properties are
(`edgekit.schema.props.structure`): a report the contract does not allow is `Unreadable`,
named with what is wrong, never taken as healthy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import attrs

from edgekit.core.errors import EdgekitError
from edgekit.deploy.refs import status_key
from edgekit.schema.props import PropsError, structure

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_REPORT_BYTES = 64 * 1024
Result = Literal["ok", "failed", "rolled-back", "pending"]


class DeployError(EdgekitError):
    """A deploy command cannot go on; the message says why and what to do."""


@attrs.frozen(kw_only=True)
class Switch:
    result: Result
    attempt: int
    max_attempts: int
    message: str
    time: str


@attrs.frozen(kw_only=True)
class Check:
    ok: bool
    detail: str


@attrs.frozen(kw_only=True)
class NodeStatus:
    """cue/status.cue ``#NodeStatus``, field for field."""

    schema: str
    env: str
    node: str
    wanted: str | None
    running: str | None
    generation: int | None
    time: str
    ref: str | None
    switch: Switch
    health: dict[str, Check] = attrs.field(factory=dict)

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.health.values())

    @property
    def final(self) -> bool:
        """The switch to `wanted` is over and did not succeed: the node will not try again
        until its ref names another revision."""
        return self.switch.result in ("failed", "rolled-back")

    def at(self, revision: str) -> bool:
        """Runs `revision`, switched to it, every check passing."""
        return (self.wanted == self.running == revision and self.switch.result == "ok"
                and self.healthy)

    def written(self) -> datetime:
        return parse_time(self.time)


@attrs.frozen
class Unreadable:
    """A report that is there but cannot be used: not JSON, or not the contract's shape."""

    key: str
    reason: str


Report = NodeStatus | Unreadable | None
"""What a node left: its report, an unreadable one, or nothing (None: never reported)."""


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def parse_report(body: bytes, where: str) -> NodeStatus | Unreadable:
    try:
        data = json.loads(body)
    except ValueError as err:
        return Unreadable(where, f"not JSON ({err})")
    if not isinstance(data, dict):
        return Unreadable(where, "not a JSON object")
    try:
        return structure("NodeStatus", NodeStatus, data, where)
    except PropsError as err:
        return Unreadable(where, "; ".join(f"{p.message} @ {p.pointer}" for p in err.problems))


def read_reports(client: S3Client, bucket: str, env: str,
                 nodes: Iterable[str]) -> dict[str, Report]:
    """Each node's report (None where there is none), in node order."""
    from botocore.exceptions import BotoCoreError, ClientError

    from edgekit.obs.sync import refusal

    reports: dict[str, Report] = {}
    endpoint = str(client.meta.endpoint_url)
    for node in sorted(nodes):
        key = status_key(env, node)
        where = f"s3://{bucket}/{key}"
        try:
            reply = client.get_object(Bucket=bucket, Key=key)
            body = reply["Body"].read(MAX_REPORT_BYTES + 1)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                reports[node] = None
                continue
            raise DeployError(str(refusal(err, bucket, endpoint))) from err
        except BotoCoreError as err:
            raise DeployError(str(refusal(err, bucket, endpoint))) from err
        if len(body) > MAX_REPORT_BYTES:
            reports[node] = Unreadable(where, f"larger than {MAX_REPORT_BYTES} bytes")
        else:
            reports[node] = parse_report(body, where)
    return reports


def summary(reports: Mapping[str, Report]) -> dict[str, object]:
    """The reports as JSON-able data (the raw contract fields, or why there is none)."""
    out: dict[str, object] = {}
    for node, report in reports.items():
        if isinstance(report, NodeStatus):
            out[node] = attrs.asdict(report)
        elif isinstance(report, Unreadable):
            out[node] = {"unreadable": report.reason, "key": report.key}
        else:
            out[node] = None
    return out
