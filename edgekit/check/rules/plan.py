"""The zone's declared Cloudflare plan and add-ons can have what the stacks ask for
(EK200-EK219, limits in `edgekit.check.plans`). The plans come from the layouts: CUE's
``envs.<env>.cloudflare.plan/addons/workers_paid``, or a Python stack's `CloudflareZone`
(``plan=``). A zone whose plan nobody declared: these rules leave it alone."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs

from edgekit.check import plans
from edgekit.check.engine import Context, Hit, StackView, rule
from edgekit.check.walk import at

if TYPE_CHECKING:  # annotations only: a synth that recorded no layout never loads them
    from edgekit.constructs.facts import Layout, PlanFact

_FIELD = re.compile(r"\b([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)\b")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


@attrs.frozen
class Declared:
    plan: str
    addons: tuple[str, ...]
    workers_paid: bool
    envs: tuple[str, ...]
    file: str

    def says(self) -> str:
        extra = "".join(f" + {a}" for a in self.addons)
        return f"the {self.plan} plan{extra} declared in {self.file} ({', '.join(self.envs)})"


def plan_facts(ctx: Context) -> Iterator[tuple[Layout, PlanFact]]:
    """Every declared plan, with the layout (environment or stack) that declares it."""
    for layout in ctx.layouts:
        for fact in layout.plans:
            yield layout, fact


def declared(ctx: Context) -> dict[str, Declared]:
    """zone id → what its environments declare (the first, when they disagree: EK200)."""
    found: dict[str, Declared] = {}
    for layout, fact in plan_facts(ctx):
        current = found.get(fact.zone_id)
        if current is not None and layout.stack in current.envs:
            continue
        envs = (*current.envs, layout.stack) if current else (layout.stack,)
        base = current or Declared(fact.plan, fact.addons, fact.workers_paid, (),
                                   layout.file or "your stack")
        found[fact.zone_id] = attrs.evolve(base, envs=envs)
    return found


def _zone_of(body: Mapping[str, Any], stack: StackView) -> str | None:
    zone = body.get("zone_id")
    return zone if isinstance(zone, str) and not zone.startswith("${") else None


def _named(plan: str | None, what: str) -> str:
    return f"{what} needs the {plan} plan or above" if plan else f"no plan offers {what}"


@rule("EK200", title="every environment on a zone declares the same plan and known add-ons",
      severity="error", source=plans.SOURCES["rate_limits"] + " (a plan is per zone)",
      fix="give the zone the same plan, addons and workers_paid in every environment on "
      "it, in {file} (CloudflareZone(...), or envs.<env>.cloudflare in CUE); add-ons: "
      + ", ".join(plans.ADDONS))
def plans_agree(ctx: Context) -> Iterator[Hit]:
    seen: dict[str, tuple[str, Any]] = {}
    for layout, fact in plan_facts(ctx):
        where = fact.where
        mine = (fact.plan, tuple(sorted(fact.addons)), fact.workers_paid)
        for addon in fact.addons:
            if addon not in plans.ADDONS:
                yield Hit(message=f"unknown add-on {addon!r} (known: "
                          f"{', '.join(plans.ADDONS)})", stack=layout.stack,
                          path=where.path, address=where.address,
                          pointer=where.at(".addons").pointer, key=f"addon {addon}")
        if fact.zone_id in seen and seen[fact.zone_id][1] != mine:
            other, theirs = seen[fact.zone_id]
            yield Hit(message=f"zone {fact.zone} is declared {mine} here and {theirs} by "
                      f"{other}: a plan belongs to the zone", stack=layout.stack,
                      path=where.path, address=where.address,
                      pointer=where.at(".plan").pointer)
        seen.setdefault(fact.zone_id, (layout.stack, mine))


def _rate_rules(ctx: Context) -> Iterator[tuple[StackView, str, str, int, dict[str, Any]]]:
    """(stack, address, zone, index, rule) of every rule of an http_ratelimit entrypoint."""
    for stack in ctx.stacks:
        for _, address, body in stack.resources("cloudflare_ruleset"):
            zone = _zone_of(body, stack)
            if zone is None or body.get("phase") != "http_ratelimit" or \
                    body.get("kind") != "zone":
                continue
            for index, item in enumerate(body.get("rules") or []):
                if isinstance(item, dict):
                    yield stack, address, zone, index, item


@rule("EK201", title="the zone's plan allows this many rate limiting rules", severity="error",
      source=plans.SOURCES["rate_limits"] + " (Number of rules: Free 1, Pro 2, Business 5, "
      "Enterprise 100)", fix="declare the plan named in the message in {file} "
      "(CloudflareZone(plan=...), or envs.<env>.cloudflare.plan in CUE), or rate-limit "
      "fewer services (their rate_limit in {services_file})")
def rate_rule_count(ctx: Context) -> Iterator[Hit]:
    zones = declared(ctx)
    counts: dict[str, list[tuple[StackView, str]]] = {}
    for stack, address, zone, _, _ in _rate_rules(ctx):
        counts.setdefault(zone, []).append((stack, address))
    for zone, owners in sorted(counts.items()):
        plan = zones.get(zone)
        if plan is None or len(owners) <= plans.RATE_LIMITS[plan.plan].rules:
            continue
        wanted = len(owners)

        def enough(p: str, n: int = wanted) -> bool:
            return plans.RATE_LIMITS[p].rules >= n

        need = plans.cheapest(enough)
        stack, address = owners[0]
        yield stack.hit(address, f"{len(owners)} rate limiting rules on zone {zone}, "
                        f"{plans.RATE_LIMITS[plan.plan].rules} allowed by {plan.says()}; "
                        + _named(need, f"{len(owners)} rules"), "$.rules")


def _declared_rules(ctx: Context) -> Iterator[tuple[StackView, str, int, dict[str, Any],
                                                   Declared, plans.RateLimits]]:
    """The rate limiting rules of zones with a declared plan, with the plan's limits."""
    zones = declared(ctx)
    for stack, address, zone, index, item in _rate_rules(ctx):
        plan = zones.get(zone)
        if plan is not None:
            yield stack, address, index, item, plan, plans.RATE_LIMITS[plan.plan]


def _refused(stack: StackView, address: str, index: int, item: dict[str, Any], plan: Declared,
             what: tuple[str, str], offers: Callable[[str], bool], field: str) -> Hit:
    """Rule `item` does `what[0]` (needing `what[1]`), which the declared plan lacks;
    `offers(plan)` says which plans have it (the cheapest is named)."""
    return stack.hit(address, f"rule {item.get('description', index)!r} {what[0]}, which "
                     f"{plan.says()} does not offer; " + _named(plans.cheapest(offers), what[1]),
                     f"$.rules[{index}].{field}")


@rule("EK202", title="rate limiting rules count over a period the plan offers",
      severity="error", source=plans.SOURCES["rate_limits"] + " (Counting periods: Free 10 s, "
      "Pro 10 s or 1 min, Business up to 10 min, Enterprise up to 1 h)",
      fix="declare the plan named in the message in {file}, or a period the plan offers "
      "(the service's rate_limit.period_seconds in {services_file})")
def rate_rule_period(ctx: Context) -> Iterator[Hit]:
    def counts_over(p: str, v: int) -> bool:
        return v in plans.RATE_LIMITS[p].periods

    for stack, address, index, item, plan, limits in _declared_rules(ctx):
        period = at(item, "ratelimit", "period")
        if isinstance(period, int) and period not in limits.periods:
            yield _refused(stack, address, index, item, plan,
                           (f"counts over {period} s", f"a {period} s period"),
                           partial(counts_over, v=period), "ratelimit.period")


@rule("EK203", title="rate limiting rules block for a timeout the plan offers",
      severity="error", source=plans.SOURCES["rate_limits"] + " (Mitigation timeout)",
      fix="declare the plan named in the message, or a shorter period (the timeout follows "
      "the period)")
def rate_rule_timeout(ctx: Context) -> Iterator[Hit]:
    def offers(p: str, v: int) -> bool:
        limits = plans.RATE_LIMITS[p].timeouts
        return limits is None or v in limits

    for stack, address, index, item, plan, limits in _declared_rules(ctx):
        timeout = at(item, "ratelimit", "mitigation_timeout")
        if isinstance(timeout, int) and limits.timeouts is not None and \
                timeout not in limits.timeouts:
            yield _refused(stack, address, index, item, plan,
                           (f"blocks for {timeout} s", f"a {timeout} s timeout"),
                           partial(offers, v=timeout), "ratelimit.mitigation_timeout")


def fields_of(expression: str) -> set[str]:
    """The Rules-language fields an expression reads (string literals left out)."""
    return set(_FIELD.findall(_QUOTED.sub('""', expression)))


@rule("EK204", title="rate limiting rules match on fields the plan offers", severity="error",
      source=plans.SOURCES["rate_limits"] + " (Available fields in rule expression: Free only "
      "the URI path and verified bots; http.host from Pro)",
      fix="declare the plan named in the message, or match on the path only")
def rate_rule_fields(ctx: Context) -> Iterator[Hit]:
    def offers(p: str, wanted: set[str]) -> bool:
        limits = plans.RATE_LIMITS[p].fields
        return limits is None or wanted <= limits

    for stack, address, index, item, plan, limits in _declared_rules(ctx):
        expression = item.get("expression")
        if not isinstance(expression, str) or limits.fields is None:
            continue
        used = fields_of(expression)
        lacking = sorted(used - limits.fields)
        if lacking:
            yield _refused(stack, address, index, item, plan,
                           (f"matches on {', '.join(lacking)}",
                            f"matching on {', '.join(lacking)}"),
                           partial(offers, wanted=used), "expression")


@rule("EK205", title="rate limiting rules count by characteristics the plan offers",
      severity="error", source=plans.SOURCES["rate_limits"] + " (Counting characteristics)",
      fix="declare the plan named in the message, or count by IP (ip.src)")
def rate_rule_characteristics(ctx: Context) -> Iterator[Hit]:
    def counts_by(p: str, wanted: frozenset[str]) -> bool:
        return wanted <= plans.RATE_LIMITS[p].characteristics

    for stack, address, index, item, plan, limits in _declared_rules(ctx):
        used = at(item, "ratelimit", "characteristics")
        if not isinstance(used, list):
            continue
        lacking = frozenset(map(str, used)) - limits.characteristics
        if lacking:
            named = ", ".join(sorted(lacking))
            yield _refused(stack, address, index, item, plan,
                           (f"counts by {named}", f"counting by {named}"),
                           partial(counts_by, wanted=lacking), "ratelimit.characteristics")


@rule("EK206", title="a managed WAF ruleset is one the zone's plan may deploy",
      severity="error", source=plans.SOURCES["managed_rules"] + " (Free: the Free Managed "
      "Ruleset only; the Cloudflare Managed Ruleset from Pro)",
      fix="declare the plan named in the message, or deploy the Free Managed Ruleset "
      "(77454fe2d30c4220b5701f6fdfb893ba)")
def managed_ruleset_plan(ctx: Context) -> Iterator[Hit]:
    zones = declared(ctx)
    for stack in ctx.stacks:
        for _, address, body in stack.resources("cloudflare_ruleset"):
            zone = _zone_of(body, stack)
            plan = zones.get(zone) if zone else None
            if plan is None or body.get("phase") != "http_request_firewall_managed":
                continue
            for index, item in enumerate(body.get("rules") or []):
                target = at(item, "action_parameters", "id")
                known = plans.MANAGED_RULESETS.get(str(target))
                if item.get("action") != "execute" or known is None:
                    continue
                name, minimum = known
                if plans.rank(plan.plan) < plans.rank(minimum):
                    yield stack.hit(address, f"deploys the {name}, which {plan.says()} "
                                    f"cannot; {_named(minimum, 'it')}",
                                    f"$.rules[{index}].action_parameters.id")


@rule("EK207", title="load balancers are bought: the zone declares the load_balancing add-on",
      severity="error", source=plans.SOURCES["load_balancing"],
      fix="add \"load_balancing\" to the zone's addons in {file} (CloudflareZone(addons="
      "...), or envs.<env>.cloudflare.addons in CUE) and buy it, or use the replicas "
      "tunnel strategy")
def load_balancing_addon(ctx: Context) -> Iterator[Hit]:
    zones = declared(ctx)
    for stack in ctx.stacks:
        for _, address, body in stack.resources("cloudflare_load_balancer"):
            zone = _zone_of(body, stack)
            plan = zones.get(zone) if zone else None
            if plan is not None and "load_balancing" not in plan.addons:
                yield stack.hit(address, f"a Cloudflare Load Balancer needs the "
                                f"load_balancing add-on, which {plan.says()} does not "
                                "include (any plan can add it)", "$.zone_id")


@rule("EK208", title="Logpush datasets are available on the declared plan", severity="error",
      source=plans.SOURCES["logpush"],
      fix="declare the plan (or workers_paid: true) named in the message, or ship the logs "
      "another way (Vector on the nodes, Workers Logs)")
def logpush_dataset(ctx: Context) -> Iterator[Hit]:
    zones = declared(ctx)
    accounts = {fact.account_id: fact for _, fact in plan_facts(ctx)}
    for stack in ctx.stacks:
        for _, address, body in stack.resources("cloudflare_logpush_job"):
            dataset = body.get("dataset")
            zone = _zone_of(body, stack)
            if zone is not None:
                plan = zones.get(zone)
                if plan is not None and plan.plan != plans.LOGPUSH_ZONE_DATASETS_PLAN:
                    yield stack.hit(address, f"Logpush of the zone dataset {dataset!r} needs "
                                    f"the {plans.LOGPUSH_ZONE_DATASETS_PLAN} plan; "
                                    f"{plan.says()}", "$.dataset")
            elif dataset == plans.LOGPUSH_WORKERS_DATASET:
                side = accounts.get(str(body.get("account_id")))
                if side is not None and not side.workers_paid:
                    yield stack.hit(address, "Logpush of Workers Trace Events needs Workers "
                                    "Paid; the account is declared workers_paid: false",
                                    "$.dataset")
