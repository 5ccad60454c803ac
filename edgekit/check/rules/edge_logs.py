"""The edge's logs use only what the declared Cloudflare plan has, and a Logpush job writes
what `edgekit logs` reads (ADR 0035).

What each way of getting the edge's side of a request into R2 needs is data, `NEEDS`, held
against the environment's ``cloudflare.plan`` / ``workers_paid`` / ``addons`` (contracts: the
plan declaration of issue 24)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from edgekit.check.engine import Context, Hit, rule

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import EdgeLogsFact, PlanFact

PLANS = ("free", "pro", "business", "enterprise")


@attrs.frozen
class Need:
    what: str
    plan: str = "free"
    workers_paid: bool = False
    addon: str | None = None
    source: str = ""

    def missing(self, side: PlanFact) -> str | None:
        """Why the declared plan `side` does not allow this, or None when it does."""
        if PLANS.index(side.plan) < PLANS.index(self.plan):
            return f"needs the {self.plan} plan, the zone declares {side.plan!r}"
        if self.workers_paid and not side.workers_paid:
            return "needs Workers Paid, the account declares workers_paid: false"
        if self.addon is not None and self.addon not in side.addons:
            return f"needs the {self.addon!r} add-on, not in cloudflare.addons"
        return None


NEEDS: dict[str, Need] = {
    "worker": Need("the Worker writing its own batches to R2 (an R2 binding)",
                   source="https://developers.cloudflare.com/r2/api/workers/ (R2 bindings on "
                   "every plan; R2 free tier: 1M Class A operations, 10 GB-month)"),
    "workers_trace_events": Need(
        "a Logpush job of Workers Trace Events", workers_paid=True,
        source="https://developers.cloudflare.com/workers/observability/logs/logpush/ "
        "(\"available on the Workers Paid plan\"; 10M requests/month included, "
        "+$0.05/million)"),
    "http_requests": Need(
        "a Logpush job of the zone's HTTP requests", plan="enterprise",
        source="https://developers.cloudflare.com/logs/about/ (\"Logpush is available to "
        "customers on Cloudflare's Enterprise plan\")"),
}
"""Mechanism (CUE ``logs.edge`` value, or Logpush dataset) -> what it needs."""


def wanted(logs: EdgeLogsFact) -> list[tuple[str, str]]:
    """(NEEDS key, pointer) of what the environment asks for."""
    out = []
    if logs.edge == "worker":
        out.append(("worker", logs.where.at(".edge").pointer))
    elif logs.edge == "logpush":
        out.append(("workers_trace_events", logs.where.at(".edge").pointer))
    if logs.http_requests:
        out.append(("http_requests", logs.where.at(".http_requests").pointer))
    return out


@rule("EK224", title="the edge logs asked for are on the declared Cloudflare plan",
      severity="error",
      source="; ".join(f"{k}: {n.source}" for k, n in NEEDS.items()),
      fix="declare the plan the feature needs in {file} (cloudflare.plan, "
      "cloudflare.workers_paid), or choose logs.edge: \"worker\" (any plan) and "
      "logs.http_requests: false")
def edge_logs_plan(ctx: Context) -> Iterator[Hit]:
    for layout in ctx.layouts:
        if layout.edge_logs is None or not layout.plans:
            continue
        plan, where = layout.plans[0], layout.edge_logs.where
        for key, pointer in wanted(layout.edge_logs):
            need = NEEDS[key]
            why = need.missing(plan)
            if why is not None:
                yield Hit(message=f"{need.what} {why}", stack=layout.stack, path=where.path,
                          address=where.address, pointer=pointer)
        view = next((s for s in ctx.stacks if s.name == layout.stack), None)
        if view is None:
            continue
        for _, address, body in view.resources("cloudflare_logpush_job"):
            job = NEEDS.get(str(body.get("dataset")))
            why = job.missing(plan) if job is not None else None
            if job is not None and why is not None:
                yield view.hit(address, f"{job.what} {why}", "$.dataset")


@functools.cache
def logpush_path() -> re.Pattern[str]:
    """A destination `edgekit logs sync` mirrors: ``r2://<bucket>/edge-logpush/<stack>/<dataset>/
    {DATE}`` (the dataset's own folder, day folders below it). Made when a stack has a
    Logpush job: the logs' contract is not loaded for a synth without one (ADR 0042)."""
    from edgekit.obs.contract import LOGPUSH_ROOT

    return re.compile(rf"^r2://[^/?]+/{LOGPUSH_ROOT}/[A-Za-z0-9_.-]+/"
                      r"(?P<dataset>[A-Za-z0-9_]+)/\{DATE\}/?(\?|$)")


def logpush_problems(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(pointer, why) for each way a job of a dataset `edgekit logs` reads writes what it
    cannot read (`edgekit.obs.logpush`)."""
    from edgekit.obs.contract import LOGPUSH_ROOT
    from edgekit.obs.logpush import REQUIRED, TIMESTAMP_FORMAT

    dataset = str(body.get("dataset"))
    destination = body.get("destination_conf")
    m = logpush_path().match(destination) if isinstance(destination, str) else None
    if m is None or m["dataset"] != dataset:
        yield ("$.destination_conf", f"writes to {destination!r}, not to "
               f"r2://<logs bucket>/{LOGPUSH_ROOT}/<stack>/{dataset}/{{DATE}}, the folder "
               "`edgekit logs sync` mirrors")
    options = body.get("output_options")
    options = options if isinstance(options, Mapping) else {}
    if options.get("output_type", "ndjson") != "ndjson":
        yield ("$.output_options.output_type",
               f"writes {options.get('output_type')!r}; `edgekit logs` reads ndjson")
    stamp = options.get("timestamp_format", TIMESTAMP_FORMAT)
    if stamp != TIMESTAMP_FORMAT:
        yield ("$.output_options.timestamp_format", f"writes timestamps as {stamp!r}; "
               f"`edgekit logs` reads {TIMESTAMP_FORMAT!r} (integers, nanoseconds)")
    names = options.get("field_names")
    listed = set(names) if isinstance(names, list) else set()
    missing = [name for name in REQUIRED[dataset] if name not in listed]
    if missing:
        yield ("$.output_options.field_names",
               f"does not ask for {', '.join(missing)}, which every {dataset} line "
               "`edgekit logs` reads has (the views order and join on them)")


@rule("EK225", title="a Logpush job writes what `edgekit logs` reads", severity="error",
      source="edgekit/obs/logpush.py (the fields and timestamp format the views read); "
      "https://developers.cloudflare.com/logs/logpush/logpush-job/log-output-options/",
      fix="let EdgeLogpush make the job (cue: logs.edge / logs.http_requests), or write to "
      "edge-logpush/<stack>/<dataset>/{DATE} of the logs bucket as ndjson, timestamp_format "
      "\"unixnano\", with the fields edgekit.obs.logpush.FIELDS lists")
def logpush_readable(ctx: Context) -> Iterator[Hit]:
    for view in ctx.stacks:
        for _, address, body in view.resources("cloudflare_logpush_job"):
            from edgekit.obs.contract import LOGPUSH_DATASETS  # only where there is a job

            if body.get("dataset") not in LOGPUSH_DATASETS:
                continue  # a dataset edgekit does not read: the operator's own
            for pointer, why in logpush_problems(body):
                yield view.hit(address, f"Logpush job of {body['dataset']} {why}", pointer)
