"""What each Cloudflare plan (and add-on) allows: one sourced table (contract with issue 26).

A zone's plan and add-ons are declared in CUE (``envs.<env>.cloudflare.plan``, ``addons``,
``workers_paid``); `edgekit check` refuses what the declared plan cannot have and names the
cheapest plan that can (rules EK200-EK219, `edgekit.check.rules.plan`). Anything that needs
a plan or add-on states it as a `Requirement` and asks `allows` / `cheapest`.

Sources (read 2026-12): Cloudflare WAF docs, "Rate limiting rules — Availability"
(https://developers.cloudflare.com/waf/rate-limiting-rules/#availability) for the rule
counts, counting periods, mitigation timeouts, expression fields and characteristics;
"Managed Rules — Availability" (https://developers.cloudflare.com/waf/managed-rules/
#availability): the Cloudflare Managed Ruleset needs Pro or above, Free zones get the Free
Managed Ruleset only; Load Balancing is a paid add-on on every plan
(https://developers.cloudflare.com/load-balancing/get-started/enable-load-balancing/);
Logpush: zone datasets need Enterprise, Workers Trace Events need Workers Paid
(https://developers.cloudflare.com/logs/logpush/ "Availability";
https://developers.cloudflare.com/workers/observability/logs/logpush/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

PLANS = ("free", "pro", "business", "enterprise")
ADDONS = ("load_balancing",)
SOURCES = {
    "rate_limits": "https://developers.cloudflare.com/waf/rate-limiting-rules/#availability",
    "managed_rules": "https://developers.cloudflare.com/waf/managed-rules/#availability",
    "load_balancing": "https://developers.cloudflare.com/load-balancing/get-started/"
                      "enable-load-balancing/",
    "logpush": "https://developers.cloudflare.com/logs/logpush/ (Availability) and "
               "https://developers.cloudflare.com/workers/observability/logs/logpush/",
}


def rank(plan: str) -> int:
    return PLANS.index(plan)


@attrs.frozen
class RateLimits:
    rules: int
    """Rate limiting rules in the zone's ``http_ratelimit`` entrypoint."""
    periods: frozenset[int]
    """Counting periods (seconds) the plan offers."""
    timeouts: frozenset[int] | None
    """Mitigation timeouts (seconds); None: any up to a day."""
    fields: frozenset[str] | None
    """Fields a rule's expression may use; None: every field."""
    characteristics: frozenset[str]


_PRO_FIELDS = frozenset({"http.host", "http.request.uri", "http.request.uri.path",
                         "http.request.full_uri", "http.request.uri.query",
                         "cf.bot_management.verified_bot", "cf.client.bot"})
RATE_LIMITS: dict[str, RateLimits] = {
    "free": RateLimits(rules=1, periods=frozenset({10}), timeouts=frozenset({10}),
                       fields=frozenset({"http.request.uri.path",
                                         "cf.bot_management.verified_bot", "cf.client.bot"}),
                       characteristics=frozenset({"cf.colo.id", "ip.src"})),
    "pro": RateLimits(rules=2, periods=frozenset({10, 60}),
                      timeouts=frozenset({10, 60, 3600}), fields=_PRO_FIELDS,
                      characteristics=frozenset({"cf.colo.id", "ip.src"})),
    "business": RateLimits(rules=5, periods=frozenset({10, 60, 120, 300, 600}), timeouts=None,
                           fields=_PRO_FIELDS | {"http.request.method", "ip.src",
                                                 "http.user_agent"},
                           characteristics=frozenset({"cf.colo.id", "ip.src",
                                                      "cf.unique_visitor_id"})),
    "enterprise": RateLimits(rules=100, periods=frozenset({10, 60, 120, 300, 600, 3600}),
                             timeouts=None, fields=None,
                             characteristics=frozenset({"cf.colo.id", "ip.src",
                                                        "cf.unique_visitor_id"})),
}
"""Enterprise here is "Enterprise with app security"; Advanced Rate Limiting adds more
characteristics and a counting expression on any field (not modelled: declare it when
needed)."""

CLOUDFLARE_MANAGED_RULESET = "efb7b8c949ac4650a09736fc376e9aee"
MANAGED_RULESETS = {CLOUDFLARE_MANAGED_RULESET: ("Cloudflare Managed Ruleset", "pro"),
                    "4814384a9e5d4991b9815dcfc25d2f1f": ("Cloudflare OWASP Core Ruleset",
                                                         "pro"),
                    "77454fe2d30c4220b5701f6fdfb893ba": ("Cloudflare Free Managed Ruleset",
                                                         "free")}
"""Managed ruleset id → (name, cheapest plan that may deploy it)."""

LOGPUSH_ZONE_DATASETS_PLAN = "enterprise"
LOGPUSH_WORKERS_DATASET = "workers_trace_events"


@attrs.frozen
class Requirement:
    """What a feature needs: a plan at least `plan`, the `addons`, Workers Paid."""

    plan: str = "free"
    addons: tuple[str, ...] = ()
    workers_paid: bool = False
    why: str = ""
    source: str = ""

    def describe(self) -> str:
        parts = [f"the {self.plan} plan"] if self.plan != "free" else []
        parts += [f"the {a} add-on" for a in self.addons]
        if self.workers_paid:
            parts.append("Workers Paid (workers_paid: true)")
        return " and ".join(parts) or "any plan"


def allows(plan: str, addons: Sequence[str], workers_paid: bool,
           need: Requirement) -> bool:
    return (rank(plan) >= rank(need.plan) and set(need.addons) <= set(addons)
            and (workers_paid or not need.workers_paid))


def cheapest(predicate: Callable[[str], bool]) -> str | None:
    """The first plan (cheapest) for which `predicate(plan)` holds, or None."""
    return next((plan for plan in PLANS if predicate(plan)), None)
