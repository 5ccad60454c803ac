"""The first apply from an empty account works (ADR 0007): the state bucket comes first
from a stack with local state, zone singletons live in one stack, and Hyperdrive is only
created once its path to Postgres exists. Each test is named after the failure it prevents.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit import App, LocalState, Resource, Stack, SynthError
from edgekit.bootstrap import BootstrapError, run_bootstrap
from edgekit.cli import main
from edgekit.constructs.pg_tls import CA_OUTPUT
from edgekit.cue.model import PG_ADDRESS_OUTPUT, Estate
from edgekit.estate.account_stacks import BOOTSTRAP_STATE
from edgekit.estate.env_stack import EnvStack
from edgekit.estate.patterns import EstateEdge, EstateNodes
from stacks import make_app
from stacks.estate import WORKER_SCRIPT
from tests.conftest import ROOT, Tofu
from tools.toolpaths import plugin_dir


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    app = make_app(outdir=tmp_path_factory.mktemp("first") / "out")
    app.disable_schema_check()
    return {r.stack.name: r.document for r in app.synth_results()}


def of_type(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = doc.get("resource", {}).get(kind, {})
    return found


# -- the state bucket -------------------------------------------------------------------

def test_no_stack_creates_the_bucket_its_own_backend_needs(docs: dict[str, Any]) -> None:
    """prod used to create the R2 bucket holding its own state: `tofu init` failed on an
    empty account. Only the bootstrap stack (local state) creates it."""
    for name, doc in docs.items():
        backend = doc["terraform"]["backend"]
        buckets = {b["name"] for b in of_type(doc, "cloudflare_r2_bucket").values()}
        if "s3" in backend:
            assert backend["s3"]["bucket"] not in buckets, name
    boot = docs["bootstrap"]
    assert boot["terraform"]["backend"] == {"local": {"path": f"../../../{BOOTSTRAP_STATE}"}}
    (bucket,) = of_type(boot, "cloudflare_r2_bucket").values()
    assert bucket["name"] == "edgekit-state"
    assert bucket["lifecycle"] == {"prevent_destroy": True}
    assert "encryption" in boot["terraform"]  # local state, still encrypted


def test_bootstrap_state_is_never_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", BOOTSTRAP_STATE], cwd=ROOT)
    assert ignored.returncode == 0


def test_manifest_orders_bootstrap_zone_then_environments(tmp_path: Path) -> None:
    app = make_app(outdir=tmp_path / "out")
    app.disable_schema_check()
    app.synth()
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())["stacks"]
    assert manifest["bootstrap"]["dependencies"] == []
    assert manifest["zone"]["dependencies"] == ["bootstrap"]
    assert manifest["prod"]["dependencies"] == ["bootstrap", "zone"]


def test_bootstrap_without_credentials_says_what_to_export(
        project_cwd: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.delenv("TF_VAR_cloudflare_api_token", raising=False)
    monkeypatch.setenv("TF_VAR_state_passphrase", "short")
    assert main(["bootstrap", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "the bootstrap needs these set first (nothing was run)" in err
    assert "export TF_VAR_cloudflare_api_token=" in err
    assert "TF_VAR_state_passphrase has 5 characters" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bootstrap_without_tofu_is_a_clear_error(tmp_path: Path) -> None:
    env = {"TF_VAR_cloudflare_api_token": "x", "TF_VAR_state_passphrase": "p" * 20,
           "EDGEKIT_TOFU": str(tmp_path / "no-tofu"), "PATH": ""}
    with pytest.raises(BootstrapError, match="OpenTofu not found"):
        run_bootstrap(lambda only: make_app(outdir=tmp_path / "out").synth(only).outdir,
                      tmp_path, env=env)


@pytest.mark.tools
def test_bootstrap_runs_tofu_in_the_stack_folder_with_state_in_dot_edgekit(
        tmp_path: Path, tofu: Tofu) -> None:
    """The real tofu: init with the local backend pointed at <root>/.edgekit/bootstrap,
    then validate (--dry-run; an apply would need Cloudflare)."""
    env = {**tofu.env, "TF_VAR_cloudflare_api_token": "not-used-by-validate",
           "TF_VAR_state_passphrase": "a-passphrase-of-enough-length",
           "EDGEKIT_TOFU": tofu.binary, "EDGEKIT_TOFU_PLUGIN_DIR": str(plugin_dir())}
    app = make_app(outdir=tmp_path / "out")
    state = run_bootstrap(lambda only: app.synth(only).outdir, tmp_path, dry_run=True, env=env)
    assert state == (tmp_path / BOOTSTRAP_STATE).resolve()
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    folder = tmp_path / "out/stacks/bootstrap"
    assert (folder / ".terraform").is_dir()
    backend = json.loads((folder / ".terraform/terraform.tfstate").read_text())["backend"]
    assert backend["type"] == "local" and backend["config"]["path"] == str(state)


# -- zone singletons --------------------------------------------------------------------

def test_zone_entrypoint_rulesets_are_managed_by_one_stack(docs: dict[str, Any]) -> None:
    """A zone has one entrypoint ruleset per phase: prod and staging both creating
    http_request_firewall_managed / http_ratelimit failed or fought."""
    owners = {name: sorted(r["phase"] for r in of_type(doc, "cloudflare_ruleset").values())
              for name, doc in docs.items()}
    assert owners["zone"] == ["http_ratelimit", "http_request_firewall_managed"]
    assert all(not phases for name, phases in owners.items() if name != "zone")
    settings = {s["setting_id"] for s in of_type(docs["zone"], "cloudflare_zone_setting").values()}
    assert settings == {"ssl", "always_use_https", "min_tls_version"}


def test_zone_rate_limits_cover_every_environments_hostnames(docs: dict[str, Any]) -> None:
    (limits,) = [r for r in of_type(docs["zone"], "cloudflare_ruleset").values()
                 if r["phase"] == "http_ratelimit"]
    expressions = {r["description"]: r["expression"] for r in limits["rules"]}
    assert expressions == {
        "rate limit api (prod)": '(http.host in {"api.edgekit.example"})',
        "rate limit web (prod)": '(http.host in {"www.edgekit.example"})',
        "rate limit api (staging)": '(http.host in {"api.staging.edgekit.example"})',
        "rate limit web (staging)": '(http.host in {"www.staging.edgekit.example"})',
    }


def test_two_stacks_managing_one_zone_singleton_are_refused(tmp_path: Path) -> None:
    """The synth-time check is the check engine's EK132 (it took over this issue's first
    `schema/singletons.py`); the reference estate needs no suppression of it any more."""
    app = App(outdir=tmp_path / "out", check_schemas=False)
    for name in ("a", "b"):
        stack = Stack(app, name, state=LocalState(), encryption=None)
        Resource(stack, "waf", type="cloudflare_ruleset", config={
            "zone_id": "z1", "name": "waf", "kind": "zone",
            "phase": "http_request_firewall_managed", "rules": []})
        Resource(stack, "custom", type="cloudflare_ruleset", config={  # not a singleton
            "account_id": "acc", "name": "c", "kind": "custom", "phase": "http_ratelimit",
            "rules": []})
    with pytest.raises(SynthError) as err:
        app.synth()
    assert [str(p).split(" (fix:")[0] for p in err.value.problems] == [
        "[a/waf] cloudflare_ruleset.waf: EK132 zone z1: entrypoint ruleset "
        "http_request_firewall_managed is also managed by b:cloudflare_ruleset.waf; a zone "
        "has one of it",
        "[b/waf] cloudflare_ruleset.waf: EK132 zone z1: entrypoint ruleset "
        "http_request_firewall_managed is also managed by a:cloudflare_ruleset.waf; a zone "
        "has one of it"]
    assert not (tmp_path / "out").exists()


def test_the_reference_estate_needs_no_issue_11_suppressions(tmp_path: Path) -> None:
    """EK132 (zone singletons), EK133 (own state bucket), EK161 (origins too deep), EK171
    (replace on every deploy) were suppressed in stacks/estate.py until this issue."""
    app = make_app(outdir=tmp_path / "out")
    app.disable_schema_check()
    app.synth()
    fired = {f.rule for f in app.rule_findings} if app.rule_findings else set()
    assert not fired & {"EK132", "EK133", "EK161", "EK171"}
    assert "issue 11" not in (ROOT / "stacks/estate.py").read_text()


# -- Hyperdrive's path ------------------------------------------------------------------

def edge_doc(tmp_path: Path, estate: Estate) -> dict[str, Any]:
    app = App(outdir=tmp_path / "out", check_schemas=False)
    stack = EnvStack(app, estate)
    nodes = EstateNodes(stack, "nodes", estate=estate)
    EstateEdge(stack, "edge", estate=estate, nodes=nodes, worker_script=WORKER_SCRIPT)
    (result,) = app.synth_results()
    return result.document


TEST_CA = "-----BEGIN CERTIFICATE-----\nMIIB...test...\n-----END CERTIFICATE-----\n"
"""Stands for the primary's TLS authority (output pg_tls_ca, ADR 0025); synth only."""


def observed(estate: Estate, address: str, ca: str | None = TEST_CA) -> Estate:
    values = {PG_ADDRESS_OUTPUT: {"value": address}}
    if ca is not None:
        values[CA_OUTPUT] = {"value": ca}
    env = attrs.evolve(estate.env, observed=values)
    return attrs.evolve(estate, env=env)


def test_hyperdrive_is_not_created_before_postgres_can_answer(tmp_path: Path) -> None:
    """Cloudflare tests the connection when a Hyperdrive config is created: on the first
    apply the primary is still converting to NixOS, so only the path is made."""
    doc = edge_doc(tmp_path, Estate.load(ROOT, "prod", check_fresh=False))
    assert not of_type(doc, "cloudflare_hyperdrive_config")
    assert of_type(doc, "cloudflare_zero_trust_access_application")
    bindings = of_type(doc, "cloudflare_workers_script")["edge_worker"]["bindings"]
    assert "PG" not in {b["name"] for b in bindings}


def test_hyperdrive_is_created_after_its_access_app_dns_and_tunnel_config(
        tmp_path: Path) -> None:
    doc = edge_doc(tmp_path, observed(Estate.load(ROOT, "prod", check_fresh=False), "10.2.0.3"))
    config = of_type(doc, "cloudflare_hyperdrive_config")["edge_hyperdrive"]
    assert config["depends_on"] == [
        "cloudflare_zero_trust_access_application.edge_hyperdrive_access",
        "cloudflare_dns_record.edge_hyperdrive_dns",
        "cloudflare_zero_trust_tunnel_cloudflared_config.edge_hyperdrive_tunnel_config"]
    bindings = of_type(doc, "cloudflare_workers_script")["edge_worker"]["bindings"]
    assert {"type": "hyperdrive", "name": "PG",
            "id": "${cloudflare_hyperdrive_config.edge_hyperdrive.id}"} in bindings


@pytest.mark.parametrize(("env", "node"), [("prod", "pg-tokyo"), ("staging", "staging-1")])
def test_postgres_tunnel_points_at_the_address_postgres_listens_on(
        tmp_path: Path, env: str, node: str) -> None:
    """Postgres listens on its mesh address (ADR 0010) only: an ingress to 127.0.0.1:5432
    reached nothing."""
    estate = Estate.load(ROOT, env, check_fresh=False)
    listen = estate.env.mesh_address(node)
    assert listen is not None and listen == estate.env.postgres_host()
    doc = edge_doc(tmp_path, estate)
    ingress = of_type(doc, "cloudflare_zero_trust_tunnel_cloudflared_config")[
        "edge_hyperdrive_tunnel_config"]["config"]["ingress"]
    assert ingress[0]["service"] == f"tcp://{listen}:5432"
    boot = next(v for k, v in doc["locals"].items()
                if k.endswith("_boot") and "postgres" in v)
    assert "pg_tunnel_token" in boot["secrets"]


def test_bootstrap_asks_before_applying_unless_told_not_to(tmp_path: Path) -> None:
    """`tofu apply -input=false` without -auto-approve refuses to run at all."""
    from edgekit.bootstrap import tofu_steps

    state = tmp_path / "s.tfstate"
    init, apply = tofu_steps("tofu", state, plugin_dir=None, dry_run=False, auto_approve=False)
    assert init == ["tofu", "init", "-input=false", f"-backend-config=path={state}"]
    assert apply == ["tofu", "apply"]
    _, yes = tofu_steps("tofu", state, plugin_dir="/p", dry_run=False, auto_approve=True)
    assert yes == ["tofu", "apply", "-input=false", "-auto-approve"]
    _, check = tofu_steps("tofu", state, plugin_dir="/p", dry_run=True, auto_approve=False)
    assert check == ["tofu", "validate"]
