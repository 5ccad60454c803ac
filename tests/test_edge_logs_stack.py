"""The edge's logs as CUE chooses them (issue 26, ADR 0035): the Worker's R2 binding (any
plan), or Logpush jobs (Workers Paid, Enterprise for the zone's HTTP requests), each synthesized
and passing the real `tofu validate`; a choice the declared plan lacks stops the synth."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit import App, SynthError
from edgekit.cue.model import Estate
from edgekit.obs.logpush import FIELDS
from edgekit.testing import synth
from stacks.estate import EstateStack
from tests.conftest import ROOT, Tofu


def staging(**changes: Any) -> Estate:
    return with_edge_logs("staging", **changes)


def with_edge_logs(env_name: str, **changes: Any) -> Estate:
    """Environment `env_name` of the estate with its edge logs (and plan) changed."""
    estate = Estate.load(ROOT, env_name, check_fresh=False)
    env = estate.env
    logs = attrs.evolve(env.logs, **{k: v for k, v in changes.items()
                                     if k in ("edge", "http_requests")})
    side = attrs.evolve(env.cloudflare, **{k: v for k, v in changes.items()
                                           if k in ("plan", "workers_paid")})
    return attrs.evolve(estate, env=attrs.evolve(env, logs=logs, cloudflare=side))


def resources(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["resource"].get(kind, {})
    return found


def worker_bindings(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (script,) = resources(doc, "cloudflare_workers_script").values()
    return {b["name"]: b for b in script["bindings"]}


def test_by_default_the_worker_writes_to_the_logs_bucket_through_a_binding() -> None:
    doc = synth(EstateStack(App(), staging()))
    binding = worker_bindings(doc)["EDGE_LOGS"]
    assert binding == {"type": "r2_bucket", "name": "EDGE_LOGS",
                       "bucket_name": "${cloudflare_r2_bucket.edge_logs_bucket.name}"}
    assert resources(doc, "cloudflare_logpush_job") == {}
    wrangler = (ROOT / "services" / "edge-worker" / "wrangler.jsonc").read_text()
    config = json.loads(wrangler.split("\n", 1)[1])
    assert config["env"]["staging"]["r2_buckets"] == [
        {"binding": "EDGE_LOGS", "bucket_name": "edgekit-logs-staging"}]


LOGPUSH = dict(edge="logpush", http_requests=True, plan="enterprise", workers_paid=True)


def test_logpush_jobs_for_the_worker_and_the_zone_when_the_plan_has_them() -> None:
    doc = synth(EstateStack(App(), staging(**LOGPUSH)))
    jobs = resources(doc, "cloudflare_logpush_job")
    trace, http = jobs["edge_logpush_trace_events"], jobs["edge_logpush_http_requests"]
    assert trace["dataset"] == "workers_trace_events" and "account_id" in trace
    assert http["dataset"] == "http_requests" and "zone_id" in http
    assert trace["destination_conf"].startswith(
        "r2://edgekit-logs-staging/edge-logpush/staging/workers_trace_events/{DATE}?")
    assert "access-key-id=${cloudflare_api_token.edge_logpush_writer.id}" in \
        trace["destination_conf"]
    assert "EDGE_LOGS" not in worker_bindings(doc)
    assert worker_bindings(doc)["EDGE_LOGS_MODE"]["text"] == "logpush"
    (script,) = resources(doc, "cloudflare_workers_script").values()
    assert script["logpush"] is True
    assert json.loads(trace["filter"])["where"]["and"][0]["value"] == script["script_name"]
    # what `edgekit logs` reads is what the jobs write: these fields, as unix nanoseconds
    for job in (trace, http):
        assert job["output_options"]["timestamp_format"] == "unixnano"
        assert job["output_options"]["field_names"] == list(FIELDS[job["dataset"]])
    assert {"RayID", "ParentRayID", "EdgeStartTimestamp", "WorkerSubrequest"} <= set(
        http["output_options"]["field_names"])
    assert {"Event", "Logs", "EventTimestampMs"} <= set(trace["output_options"]["field_names"])


@pytest.mark.parametrize(("changes", "said"), [
    (dict(edge="logpush"), "needs Workers Paid"),
    (dict(http_requests=True, plan="business", workers_paid=True), "needs the enterprise plan"),
])
def test_a_synth_stops_when_the_declared_plan_lacks_the_choice(changes: dict[str, Any],
                                                              said: str) -> None:
    app = App()
    EstateStack(app, staging(**changes))
    with pytest.raises(SynthError, match=f"EK224 .*{said}"):
        app.synth_results(["staging"])


@pytest.mark.tools
def test_the_logpush_jobs_pass_tofu_validate(tmp_path: Path, tofu: Tofu,
                                             stack_dir_copy: Callable[[Path], Path]) -> None:
    app = App(outdir=tmp_path / "out")
    EstateStack(app, staging(**LOGPUSH))
    app.synth()
    folder = stack_dir_copy(tmp_path / "out" / "stacks" / "staging")
    assert tofu.init(folder).returncode == 0
    validate = tofu(folder, "validate", "-json")
    report = json.loads(validate.stdout)
    assert report["valid"] is True, report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]
