"""The edge's logs use only what the declared Cloudflare plan has (ADR 0035).

What each way of getting the edge's side of a request into R2 needs is data, `NEEDS`, held
against the environment's ``cloudflare.plan`` / ``workers_paid`` / ``addons`` (contracts: the
plan declaration of issue 24)."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from edgekit.check.engine import Context, Hit, rule
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
