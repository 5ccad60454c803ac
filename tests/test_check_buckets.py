"""Logs a node cannot erase (issue 26, ADR 0037): the locks and lifecycle rules the constructs
synthesize, and the checks EK220-EK225 that refuse an unlocked bucket, a lock on the nodes'
own keys, a backup lock pgBackRest's retention cannot live with, a token that reaches more
than one bucket, edge logs the declared plan does not have, and a Logpush job `edgekit logs`
cannot read."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import attrs
import pytest

from edgekit import App
from edgekit.check.context import context_from_documents
from edgekit.check.engine import REGISTRY, Finding, run
from edgekit.check.rules import catalogue
from edgekit.constructs.facts import Layout, layouts_in
from edgekit.constructs.pg_lock import full_interval_days, lock_prefixes, longest_lock_days
from edgekit.cue.layout import layout_of_estate
from edgekit.cue.model import Estate
from edgekit.obs.contract import LOG_PREFIXES
from edgekit.pg.backup import BackupSettings
from edgekit.testing import synth
from stacks import make_app
from stacks.estate import EstateStack
from tests.conftest import ROOT
from tests.test_edge_logs_stack import LOGPUSH, with_edge_logs

DAY = 86400


@pytest.fixture(scope="module")
def prod() -> Estate:
    return Estate.load(ROOT, "prod", check_fresh=False)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return synth(make_app().stack("prod"))


@functools.cache
def construct_layouts() -> tuple[Layout, ...]:
    """What the reference estate's constructs recorded (the buckets they made, ADR 0029)."""
    return tuple(layouts_in(make_app()))


def findings(rule_id: str, doc: dict[str, Any], estate: Estate) -> list[Finding]:
    """`rule_id` over `doc` as the prod stack, with `estate`'s CUE layout and the layouts
    the constructs recorded."""
    catalogue()
    layouts = [layout_of_estate(estate), *construct_layouts()]
    return run(context_from_documents({estate.env.name: doc}, layouts), [REGISTRY[rule_id]])


def resource(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = doc["resource"][kind][name]
    return body


# -- what is synthesized --------------------------------------------------------------------

def test_the_logs_bucket_is_locked_and_expired_per_log_prefix_for_the_cue_retention(
        document: dict[str, Any], prod: Estate) -> None:
    days = prod.env.logs.retention_days
    lock = resource(document, "cloudflare_r2_bucket_lock", "edge_logs_lock")
    assert lock["bucket_name"] == "${cloudflare_r2_bucket.edge_logs_bucket.name}"
    assert [(r["prefix"], r["condition"], r["enabled"]) for r in lock["rules"]] == [
        (p, {"type": "Age", "max_age_seconds": days * DAY}, True) for p in LOG_PREFIXES]
    life = resource(document, "cloudflare_r2_bucket_lifecycle", "edge_logs_lifecycle")
    assert [(r["conditions"]["prefix"],
             r["delete_objects_transition"]["condition"]["max_age"]) for r in life["rules"]] == [
        (p, days * DAY) for p in LOG_PREFIXES]
    # the nodes' own keys are neither locked nor expired
    for key in ("status/staging/staging-1.json", "mesh/prod/edge-1.pub",
                "pg-tls/prod/pg-tokyo.crt"):
        assert not any(key.startswith(r["prefix"]) for r in lock["rules"])
        assert not any(key.startswith(r["conditions"]["prefix"]) for r in life["rules"])


def test_the_retention_comes_from_cue(prod: Estate) -> None:
    from edgekit import App
    from stacks.estate import EstateStack

    changed = attrs.evolve(prod, env=attrs.evolve(
        prod.env, logs=attrs.evolve(prod.env.logs, retention_days=9)))
    app = App()
    doc = synth(EstateStack(app, changed))
    rules = resource(doc, "cloudflare_r2_bucket_lock", "edge_logs_lock")["rules"]
    assert {r["condition"]["max_age_seconds"] for r in rules} == {9 * DAY}
    life = resource(doc, "cloudflare_r2_bucket_lifecycle", "edge_logs_lifecycle")["rules"]
    assert {r["delete_objects_transition"]["condition"]["max_age"] for r in life} == {9 * DAY}


def test_the_backup_bucket_locks_wal_and_backup_sets_for_the_retention_arithmetic(
        document: dict[str, Any]) -> None:
    lock = resource(document, "cloudflare_r2_bucket_lock", "edge_pg_backups_lock")
    assert lock["bucket_name"] == "${cloudflare_r2_bucket.edge_pg_backups_bucket.name}"
    # retention_full 4, weekly fulls: (4 - 1) x 7 - 1 = 20 days
    assert [(r["prefix"], r["condition"]["max_age_seconds"]) for r in lock["rules"]] == [
        ("prod/archive/prod/1", 20 * DAY), ("prod/backup/prod/2", 20 * DAY)]
    # what pgBackRest rewrites stays outside the lock
    for key in ("prod/archive/prod/archive.info", "prod/archive/prod/archive.info.copy",
                "prod/backup/prod/backup.info", "prod/backup/prod/backup.info.copy"):
        assert not any(key.startswith(r["prefix"]) for r in lock["rules"])
    for key in ("prod/archive/prod/16-1/0000000100000000/000000010000000000000001-ab.zst",
                "prod/backup/prod/20261129-030000F/bundle/1",
                "prod/backup/prod/20261129-030000F_20261130-030000D/backup.manifest"):
        assert any(key.startswith(r["prefix"]) for r in lock["rules"])


@pytest.mark.parametrize(("calendar", "days"), [
    ("Sun *-*-* 03:00:00", 7), ("*-*-* 03:00:00", 1), ("Mon..Sat *-*-* 03:00:00", 1),
    ("Sun,Wed *-*-* 03:00:00", 3), ("Sat,Sun 04:00", 1), ("Mon 03:00", 7),
    ("*-*-01 03:00:00", None), ("weekly", None), ("Sun..Mon *-*-* 03:00", None),
])
def test_the_full_backup_interval_is_read_from_the_calendar(calendar: str,
                                                            days: int | None) -> None:
    assert full_interval_days(calendar) == days


def test_the_lock_arithmetic() -> None:
    base = BackupSettings(stanza="prod", bucket="edgekit-pg-prod", endpoint="x.example")
    assert longest_lock_days(base) == 20  # (4 - 1) x 7 - 1
    assert longest_lock_days(attrs.evolve(base, retention_full=2)) == 6
    assert longest_lock_days(attrs.evolve(base, retention_full=1)) == -1
    assert longest_lock_days(attrs.evolve(base, full_calendar="*-*-* 01:00")) == 2
    assert lock_prefixes("staging") == ("staging/archive/staging/1",
                                        "staging/backup/staging/2")


def test_pgbackrest_writes_each_file_of_a_backup_set_once() -> None:
    from edgekit.pg.backup import repo_options

    base = BackupSettings(stanza="prod", bucket="edgekit-pg-prod", endpoint="x.example")
    assert repo_options(base)["resume"] == "n"


def test_a_retention_that_leaves_nothing_to_lock_is_a_clear_error(prod: Estate) -> None:
    from edgekit import App
    from edgekit.core.errors import ConstructError
    from stacks.estate import EstateStack

    short = attrs.evolve(prod, env=attrs.evolve(prod.env, postgres=attrs.evolve(
        prod.env.postgres, backups=attrs.evolve(prod.env.postgres.backups, retention_full=1))))
    with pytest.raises(ConstructError, match=r"retention_full 1 .* gives no lock of a day"):
        EstateStack(App(), short)


# -- EK220: every log and backup bucket is locked --------------------------------------------

def test_ek220_passes_the_reference_estate(document: dict[str, Any], prod: Estate) -> None:
    assert findings("EK220", document, prod) == []


def test_ek220_refuses_an_unlocked_logs_bucket(document: dict[str, Any], prod: Estate) -> None:
    doc = copy.deepcopy(document)
    del doc["resource"]["cloudflare_r2_bucket_lock"]["edge_logs_lock"]
    found = findings("EK220", doc, prod)
    assert [f.address for f in found] == ["cloudflare_r2_bucket.edge_logs_bucket"] * 4
    assert "logs bucket 'edgekit-logs': keys under 'otel/' have no lock, 30 days needed; a " \
        "node's R2 token can delete or overwrite them" in {f.message for f in found}


def test_ek220_refuses_a_lock_shorter_than_the_retention_or_disabled(
        document: dict[str, Any], prod: Estate) -> None:
    doc = copy.deepcopy(document)
    rules = doc["resource"]["cloudflare_r2_bucket_lock"]["edge_logs_lock"]["rules"]
    rules[0]["condition"]["max_age_seconds"] = 7 * DAY
    rules[1]["enabled"] = False
    found = findings("EK220", doc, prod)
    assert [f.message.split(":")[1].split(";")[0].strip() for f in found] == [
        "keys under 'otel/' have a lock of 7 days, 30 days needed",
        "keys under 'traces/' have no lock, 30 days needed"]


def test_ek220_refuses_an_unlocked_backup_bucket(document: dict[str, Any], prod: Estate) -> None:
    doc = copy.deepcopy(document)
    del doc["resource"]["cloudflare_r2_bucket_lock"]["edge_pg_backups_lock"]
    found = findings("EK220", doc, prod)
    assert {f.address for f in found} == {"cloudflare_r2_bucket.edge_pg_backups_bucket"}
    assert "backup bucket 'edgekit-pg-prod'" in found[0].message


def test_ek220_accepts_one_broader_lock_by_literal_name(document: dict[str, Any],
                                                       prod: Estate) -> None:
    doc = copy.deepcopy(document)
    lock = doc["resource"]["cloudflare_r2_bucket_lock"]["edge_logs_lock"]
    lock["bucket_name"] = "edgekit-logs"
    lock["rules"] = [{"id": "all-logs", "enabled": True, "prefix": "",
                      "condition": {"type": "Indefinite"}}]
    assert findings("EK220", doc, prod) == []
    # ... which EK221 refuses: it locks the nodes' status and mesh keys too
    found = findings("EK221", doc, prod)
    assert len(found) == 1 and "status/, mesh/, pg-tls/" in found[0].message


# -- EK221: the nodes' own keys stay writable -------------------------------------------------

def test_ek221_refuses_a_lifecycle_over_the_whole_logs_bucket(document: dict[str, Any],
                                                             prod: Estate) -> None:
    assert findings("EK221", document, prod) == []
    doc = copy.deepcopy(document)
    life = doc["resource"]["cloudflare_r2_bucket_lifecycle"]["edge_logs_lifecycle"]
    life["rules"][0]["conditions"]["prefix"] = ""
    found = findings("EK221", doc, prod)
    assert len(found) == 1
    assert found[0].address == "cloudflare_r2_bucket_lifecycle.edge_logs_lifecycle"
    assert "expires status/, mesh/, pg-tls/ of the logs bucket 'edgekit-logs'" in \
        found[0].message
    # a rule on the authority's prefix alone is refused too (the primary rewrites it)
    doc = copy.deepcopy(document)
    lock = doc["resource"]["cloudflare_r2_bucket_lock"]["edge_logs_lock"]
    lock["rules"].append({"id": "ca", "enabled": True, "prefix": "pg-tls/prod/",
                          "condition": {"type": "Indefinite"}})
    assert findings("EK220", doc, prod) == []
    (narrow,) = findings("EK221", doc, prod)
    assert "rule 'ca' (prefix 'pg-tls/prod/') locks" in narrow.message


# -- EK222: the backup lock fits pgBackRest's retention ---------------------------------------

def test_ek222_refuses_a_backup_lock_longer_than_pgbackrest_keeps_files(
        document: dict[str, Any], prod: Estate) -> None:
    assert findings("EK222", document, prod) == []
    doc = copy.deepcopy(document)
    lock = doc["resource"]["cloudflare_r2_bucket_lock"]["edge_pg_backups_lock"]
    lock["rules"][1]["condition"]["max_age_seconds"] = 28 * DAY
    found = findings("EK222", doc, prod)
    assert len(found) == 1
    assert "locks backups for 28 days" in found[0].message and "at most 20" in found[0].message


# -- EK223: one bucket per token ----------------------------------------------------------------

def test_ek223_refuses_an_r2_token_for_the_whole_account(document: dict[str, Any],
                                                        prod: Estate) -> None:
    assert findings("EK223", document, prod) == []
    doc = copy.deepcopy(document)
    token = doc["resource"]["cloudflare_account_token"]["edge_logs_writer"]
    token["policies"][0]["resources"] = json.dumps(
        {f"com.cloudflare.api.account.{prod.env.cloudflare.account_id}": "*"})
    found = findings("EK223", doc, prod)
    assert len(found) == 1 and found[0].pointer == "$.policies[0].resources"
    two = copy.deepcopy(document)
    tokens = two["resource"]["cloudflare_account_token"]
    logs = json.loads(tokens["edge_logs_writer"]["policies"][0]["resources"])
    backups = json.loads(tokens["edge_pg_backups_token"]["policies"][0]["resources"])
    tokens["edge_logs_writer"]["policies"][0]["resources"] = json.dumps({**logs, **backups})
    assert len(findings("EK223", two, prod)) == 1


# -- EK224: the edge logs are on the declared plan ---------------------------------------------

def _logs(estate: Estate, **changes: Any) -> Estate:
    return attrs.evolve(estate, env=attrs.evolve(
        estate.env, logs=attrs.evolve(estate.env.logs, **{k: v for k, v in changes.items()
                                                          if k in ("edge", "http_requests")}),
        cloudflare=attrs.evolve(estate.env.cloudflare, **{
            k: v for k, v in changes.items() if k in ("plan", "workers_paid", "addons")})))


def test_ek224_the_default_edge_logs_need_no_paid_plan(document: dict[str, Any],
                                                      prod: Estate) -> None:
    assert not prod.env.cloudflare.workers_paid  # the Worker's own batches: any plan
    assert prod.env.logs.edge == "worker"
    assert findings("EK224", document, prod) == []


def test_ek224_logpush_of_trace_events_needs_workers_paid(document: dict[str, Any],
                                                         prod: Estate) -> None:
    found = findings("EK224", document, _logs(prod, edge="logpush"))
    assert len(found) == 1 and found[0].pointer == "$.env.logs.edge"
    assert "needs Workers Paid" in found[0].message
    assert findings("EK224", document, _logs(prod, edge="logpush", workers_paid=True)) == []


def test_ek224_http_request_logs_need_enterprise(document: dict[str, Any],
                                                 prod: Estate) -> None:
    found = findings("EK224", document, _logs(prod, http_requests=True, plan="business"))
    assert len(found) == 1 and "needs the enterprise plan, the zone declares 'business'" in \
        found[0].message
    assert findings("EK224", document, _logs(prod, http_requests=True, plan="enterprise")) == []


def test_ek224_reads_logpush_jobs_in_the_stack_too(document: dict[str, Any],
                                                   prod: Estate) -> None:
    doc = copy.deepcopy(document)
    doc["resource"]["cloudflare_logpush_job"] = {"by_hand": {
        "zone_id": prod.env.cloudflare.zone_id, "dataset": "http_requests",
        "destination_conf": "r2://edgekit-logs/x/{DATE}"}}
    found = findings("EK224", doc, prod)
    assert [(f.address, f.pointer) for f in found] == [
        ("cloudflare_logpush_job.by_hand", "$.dataset")]


# -- EK225: a Logpush job writes what `edgekit logs` reads -------------------------------------

@pytest.fixture(scope="module")
def logpush_document() -> dict[str, Any]:
    return synth(EstateStack(App(), with_edge_logs("prod", **LOGPUSH)))


def test_ek225_the_jobs_edgekit_makes_write_what_it_reads(logpush_document: dict[str, Any],
                                                          prod: Estate) -> None:
    assert len(logpush_document["resource"]["cloudflare_logpush_job"]) == 2
    assert findings("EK225", logpush_document, prod) == []


@pytest.mark.parametrize(("change", "pointer", "said"), [
    (lambda job: job.update(destination_conf=job["destination_conf"].replace(
        "edge-logpush/prod/http_requests/{DATE}", "logs/{DATE}")),
     "$.destination_conf", "not to r2://<logs bucket>/edge-logpush/<stack>/http_requests/{DATE}"),
    (lambda job: job.update(destination_conf=job["destination_conf"].replace(
        "/http_requests/", "/workers_trace_events/")),
     "$.destination_conf", "the folder `edgekit logs sync` mirrors"),
    (lambda job: job["output_options"].update(timestamp_format="rfc3339"),
     "$.output_options.timestamp_format", "writes timestamps as 'rfc3339'"),
    (lambda job: job["output_options"].update(output_type="csv"),
     "$.output_options.output_type", "writes 'csv'"),
    (lambda job: job["output_options"].update(field_names=["RayID", "ClientIP"]),
     "$.output_options.field_names", "does not ask for EdgeStartTimestamp"),
])
def test_ek225_refuses_a_job_edgekit_logs_cannot_read(
        logpush_document: dict[str, Any], prod: Estate, change: Any, pointer: str,
        said: str) -> None:
    doc = copy.deepcopy(logpush_document)
    change(resource(doc, "cloudflare_logpush_job", "edge_logpush_http_requests"))
    found = findings("EK225", doc, prod)
    assert [(f.address, f.pointer) for f in found] == [
        ("cloudflare_logpush_job.edge_logpush_http_requests", pointer)]
    assert said in found[0].message and "Logpush job of http_requests" in found[0].message


def test_ek225_leaves_a_dataset_edgekit_does_not_read_alone(
        logpush_document: dict[str, Any], prod: Estate) -> None:
    doc = copy.deepcopy(logpush_document)
    doc["resource"]["cloudflare_logpush_job"]["firewall"] = {
        "zone_id": prod.env.cloudflare.zone_id, "dataset": "firewall_events",
        "destination_conf": "s3://elsewhere/{DATE}"}
    assert findings("EK225", doc, prod) == []
