"""A declared plan gates what only paid plans (or add-ons) have (EK200-EK208): the
reference estate's zone stack and environments, checked against each plan it could declare.
Each finding names the cheapest plan that can."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.check.context import context_from_documents
from edgekit.check.engine import Finding, run
from edgekit.check.plans import RATE_LIMITS, cheapest
from edgekit.check.rules import catalogue
from edgekit.check.rules.plan import fields_of
from edgekit.cue.layout import layout_of_estate
from edgekit.cue.model import Estate
from stacks import make_app
from tests.conftest import ROOT, RunCli

PLAN_RULES = [r for r in catalogue() if r.concern == "plan"]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    app = make_app(outdir=tmp_path_factory.mktemp("plans") / "out")
    app.disable_schema_check()
    return {r.stack.name: r.document for r in app.synth_results()}


def estates(**side: Any) -> list[Estate]:
    found = []
    for name in ("prod", "staging"):
        estate = Estate.load(ROOT, name, check_fresh=False)
        cloudflare = attrs.evolve(estate.env.cloudflare, **side)
        found.append(attrs.evolve(estate, env=attrs.evolve(estate.env, cloudflare=cloudflare)))
    return found


def findings(documents: dict[str, Any], estates: list[Estate]) -> list[Finding]:
    return run(context_from_documents(documents, [layout_of_estate(e) for e in estates]),
               PLAN_RULES)


def by_rule(found: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in found:
        grouped.setdefault(finding.rule, []).append(finding)
    return grouped


def test_rule_ids_are_in_this_issues_range() -> None:
    assert {r.id for r in PLAN_RULES} <= {f"EK{n}" for n in range(200, 220)}
    assert all(r.source.startswith("https://") for r in PLAN_RULES)


def test_the_reference_estate_declares_what_it_needs(documents: dict[str, Any]) -> None:
    declared = estates()
    assert {e.env.cloudflare.plan for e in declared} == {"business"}
    assert findings(documents, declared) == []


def test_on_free_each_paid_feature_is_refused_naming_the_plan(documents: dict[str, Any]
                                                              ) -> None:
    found = by_rule(findings(documents, estates(plan="free")))
    (count,) = found["EK201"]
    assert count.address == "cloudflare_ruleset.security_rate_limits"
    assert "4 rate limiting rules on zone fedcba9876543210fedcba9876543210, 1 allowed by " \
        "the free plan + load_balancing declared in cue/envs.cue (prod, staging); 4 rules " \
        "needs the business plan or above" in count.message
    assert [f.pointer for f in found["EK202"]] == [
        f"$.rules[{i}].ratelimit.period" for i in range(4)]
    assert "a 60 s period needs the pro plan or above" in found["EK202"][0].message
    assert "matching on http.host needs the pro plan or above" in found["EK204"][0].message
    (waf,) = found["EK206"]
    assert "deploys the Cloudflare Managed Ruleset" in waf.message
    assert "it needs the pro plan or above" in waf.message
    assert waf.path == "zone/cloudflare_ruleset.security_waf"


def test_on_pro_only_the_rule_count_is_too_many(documents: dict[str, Any]) -> None:
    found = by_rule(findings(documents, estates(plan="pro")))
    assert set(found) == {"EK201"}
    assert "2 allowed by the pro plan" in found["EK201"][0].message


def test_load_balancers_need_the_add_on(documents: dict[str, Any]) -> None:
    found = by_rule(findings(documents, estates(addons=())))
    assert set(found) == {"EK207"}
    assert {f.stack for f in found["EK207"]} == {"prod"}  # staging has no load balancer
    assert sorted(f.address for f in found["EK207"]) == [
        "cloudflare_load_balancer.edge_tunnel_lb_balancer_api",
        "cloudflare_load_balancer.edge_tunnel_lb_balancer_web"]


def test_environments_on_one_zone_must_agree(documents: dict[str, Any]) -> None:
    prod, staging = estates()
    staging = attrs.evolve(staging, env=attrs.evolve(staging.env, cloudflare=attrs.evolve(
        staging.env.cloudflare, plan="pro", addons=("load_balancing", "argo"))))
    found = by_rule(findings(documents, [prod, staging]))
    messages = [f.message for f in found["EK200"]]
    assert any("unknown add-on 'argo'" in m for m in messages)
    assert any(m.startswith("zone edgekit.example is declared ('pro'") and "by prod" in m
               for m in messages)


def test_logpush_datasets(documents: dict[str, Any]) -> None:
    extra = {"resource": {"cloudflare_logpush_job": {
        "http": {"zone_id": "fedcba9876543210fedcba9876543210", "dataset": "http_requests",
                 "destination_conf": "r2://x"},
        "workers": {"account_id": "0123456789abcdef0123456789abcdef",
                    "dataset": "workers_trace_events", "destination_conf": "r2://y"}}}}
    found = by_rule(findings({**documents, "logs": extra}, estates()))
    assert [f.address for f in found["EK208"]] == ["cloudflare_logpush_job.http",
                                                   "cloudflare_logpush_job.workers"]
    assert "needs the enterprise plan" in found["EK208"][0].message
    assert "needs Workers Paid" in found["EK208"][1].message
    paid = by_rule(findings({**documents, "logs": extra},
                            estates(plan="enterprise", workers_paid=True)))
    assert "EK208" not in paid


def test_fields_in_string_literals_do_not_count() -> None:
    assert fields_of('(http.host in {"api.example.com"}) and '
                     'http.request.uri.path eq "/a.b"') == {"http.host",
                                                            "http.request.uri.path"}


def test_the_cheapest_plan_is_the_first_that_can() -> None:
    assert cheapest(lambda p: RATE_LIMITS[p].rules >= 3) == "business"
    assert cheapest(lambda p: RATE_LIMITS[p].rules >= 1000) is None


def test_edgekit_check_refuses_a_plan_declared_in_cue(project_copy: Path, cli: RunCli) -> None:
    envs = project_copy / "cue" / "envs.cue"
    envs.write_text(re.sub(r'plan: "business"', 'plan: "pro"', envs.read_text()))
    done = cli("check", "zone")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: EK201 [zone/security/rate-limits] cloudflare_ruleset.security_rate_limits:" \
        " 4 rate limiting rules" in done.stdout
    assert "needs the business plan or above" in done.stdout
    assert "fix: declare the plan named in the message" in done.stdout


def test_timeouts_and_characteristics_the_plan_lacks(documents: dict[str, Any]) -> None:
    zone = documents["zone"]
    limits = zone["resource"]["cloudflare_ruleset"]["security_rate_limits"]
    rule = dict(limits["rules"][0])
    rule["ratelimit"] = {**rule["ratelimit"], "period": 10, "mitigation_timeout": 600,
                         "characteristics": ["cf.colo.id", "cf.unique_visitor_id"]}
    changed = {**limits, "rules": [rule]}
    doc = {**zone, "resource": {**zone["resource"], "cloudflare_ruleset": {
        **zone["resource"]["cloudflare_ruleset"], "security_rate_limits": changed}}}
    found = by_rule(findings({"zone": doc}, estates(plan="pro")))
    (timeout,) = found["EK203"]
    assert "blocks for 600 s, which the pro plan" in timeout.message
    assert "a 600 s timeout needs the business plan or above" in timeout.message
    (counted,) = found["EK205"]
    assert "counts by cf.unique_visitor_id" in counted.message
    assert counted.pointer == "$.rules[0].ratelimit.characteristics"
    assert "EK203" not in by_rule(findings({"zone": doc}, estates(plan="business")))
