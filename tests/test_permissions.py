"""Preflight knows the account (ADR 0032): the permission groups each stack needs come from
its resources, and the token is checked against Cloudflare's verify endpoint and its own
policies before anything is applied. The API is a stand-in HTTP server on 127.0.0.1 that
answers the four endpoints the check calls, in the shapes of Cloudflare's API reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edgekit.check.permissions import NEEDS, Need, all_needs, needed
from edgekit.constructs.later import later_types
from edgekit.ops.cloudflare_api import TokenError, check_token, missing
from stacks import make_app
from tests.conftest import ROOT, RunCli

ACCOUNT = "0123456789abcdef0123456789abcdef"
ZONE = "fedcba9876543210fedcba9876543210"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    app = make_app(outdir=tmp_path_factory.mktemp("perm") / "out")
    app.disable_schema_check()
    return app.synth_results()


@pytest.fixture(scope="module")
def documents(synthesized: list[Any]) -> dict[str, dict[str, Any]]:
    return {r.stack.name: r.document for r in synthesized}


@pytest.fixture(scope="module")
def later(synthesized: list[Any]) -> dict[str, dict[str, str]]:
    """What the stacks add on a later synth (`edgekit.constructs.later`)."""
    return {r.stack.name: later_types(r.stack.files) for r in synthesized}


def test_each_stack_needs_what_its_resources_need(documents: dict[str, Any]) -> None:
    per_stack = {stack: {(r.need.scope, r.need.dashboard) for r in required}
                 for stack, (required, _) in needed(documents).items()}
    assert per_stack["bootstrap"] == {("account", "Workers R2 Storage: Edit")}
    assert per_stack["zone"] == {("zone", "Zone WAF: Edit"), ("zone", "Zone Settings: Edit")}
    assert per_stack["example"] == set()
    # the log writer and backup tokens are account-owned: no user-level permission at all
    assert ("account", "Account API Tokens: Edit") in per_stack["staging"]
    assert not any(scope == "user" for scope, _ in per_stack["staging"] | per_stack["prod"])
    # prod has load balancers (per_node tunnels), staging has none
    assert ("zone", "Load Balancers: Edit") in per_stack["prod"]
    assert ("zone", "Load Balancers: Edit") not in per_stack["staging"]
    for stack, (required, unknown) in needed(documents).items():
        assert unknown == [], stack  # every Cloudflare type of the estate has a row
        for item in required:
            assert item.addresses and item.need.source.startswith("https://"), item


def test_what_up_creates_last_is_asked_for_first(documents: dict[str, Any],
                                                later: dict[str, dict[str, str]]) -> None:
    """Before the primary's address and authority are imported no stack holds Hyperdrive
    or its authority, yet `edgekit up` creates both in its last step: the token must be
    allowed them from the start, or the first apply fails after every wait."""
    for stack in ("prod", "staging"):
        doc_types = set(documents[stack].get("resource", {}))
        assert "cloudflare_hyperdrive_config" not in doc_types
        assert set(later[stack]) == {"cloudflare_hyperdrive_config",
                                     "cloudflare_mtls_certificate"}
        rows = {(r.need.dashboard, r.addresses)
                for r in needed(documents, later)[stack][0]}
        assert ("Hyperdrive: Edit", ("cloudflare_hyperdrive_config (later)",)) in rows
        assert ("SSL and Certificates: Edit", ("cloudflare_mtls_certificate (later)",)) in rows
    groups = {n.dashboard for n in all_needs(documents, later)}
    assert {"Hyperdrive: Edit", "SSL and Certificates: Edit"} <= groups
    assert "Hyperdrive: Edit" not in {n.dashboard for n in all_needs(documents)}
    assert later["zone"] == {} and later["bootstrap"] == {}


def test_every_cloudflare_type_the_constructs_emit_has_a_sourced_row() -> None:
    emitted = set()
    for path in (ROOT / "edgekit" / "constructs").glob("*.py"):
        for word in path.read_text().split('"'):
            if word.startswith("cloudflare_") and word.replace("_", "").isalnum() and \
                    word not in ("cloudflare_api_token",):
                emitted.add(word)
    emitted.discard("cloudflare_provider")
    assert emitted - set(NEEDS) == set()


# -- the stand-in API ---------------------------------------------------------------------

def policy(groups: list[str], resources: Mapping[str, Any],
           effect: str = "allow") -> dict[str, Any]:
    return {"id": "p", "effect": effect, "resources": resources,
            "permission_groups": [{"id": f"id-{g}", "name": g} for g in groups]}


class StandIn:
    """Tokens by value: kind (user/account), status, policies (None: may not read itself)."""

    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.seen: list[tuple[str, str]] = []


def serve(api: StandIn) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            api.seen.append((self.path, auth))
            token = api.tokens.get(auth.removeprefix("Bearer "))
            user = self.path.startswith("/user/tokens/")
            account = self.path.startswith(f"/accounts/{ACCOUNT}/tokens/")
            if token is None or (user and token["kind"] != "user") or (
                    account and token["kind"] != "account") or not (user or account):
                return self.reply(401, {"success": False, "errors": [
                    {"code": 1000, "message": "Invalid API Token"}], "result": None})
            if self.path.endswith("/verify"):
                return self.reply(200, {"success": True, "errors": [], "result": {
                    "id": token["id"], "status": token["status"]}})
            if token["policies"] is None or not self.path.endswith(f"/{token['id']}"):
                return self.reply(403, {"success": False, "errors": [
                    {"code": 9109, "message": "Unauthorized to access requested resource"}]})
            return self.reply(200, {"success": True, "result": {
                "id": token["id"], "status": token["status"], "policies": token["policies"]}})

        def reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def api() -> Iterator[tuple[StandIn, str]]:
    stand_in = StandIn()
    server = serve(stand_in)
    try:
        yield stand_in, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def full_policies(needs: list[Need], drop: str | None = None) -> list[dict[str, Any]]:
    account = [g for n in needs if n.scope == "account" for g in n.groups if g != drop]
    zone = [g for n in needs if n.scope == "zone" for g in n.groups if g != drop]
    return [policy(account, {f"com.cloudflare.api.account.{ACCOUNT}": "*"}),
            policy(zone, {f"com.cloudflare.api.account.{ACCOUNT}": {
                f"com.cloudflare.api.account.zone.{ZONE}": "*"}})]


def test_a_token_with_every_group_passes_and_is_never_echoed(
        api: tuple[StandIn, str], documents: dict[str, Any]) -> None:
    stand_in, base = api
    needs = all_needs(documents)
    stand_in.tokens["tok-secret-value"] = {"id": "t1", "kind": "user", "status": "active",
                                           "policies": full_policies(needs)}
    said = check_token("tok-secret-value", needs, ACCOUNT, [ZONE], base)
    assert said == f"user token t1 active with the {len(needs)} permission(s) needed"
    assert "tok-secret-value" not in said
    assert [p for p, _ in stand_in.seen] == ["/user/tokens/verify", "/user/tokens/t1"]
    assert all(a == "Bearer tok-secret-value" for _, a in stand_in.seen)


def test_a_missing_group_is_named_with_its_scope(api: tuple[StandIn, str],
                                                 documents: dict[str, Any]) -> None:
    stand_in, base = api
    needs = all_needs(documents)
    stand_in.tokens["tok"] = {"id": "t2", "kind": "user", "status": "active",
                              "policies": full_policies(needs, drop="DNS Write")}
    with pytest.raises(TokenError, match=r"lacks: zone DNS: Edit \(edit it in the dashboard"):
        check_token("tok", needs, ACCOUNT, [ZONE], base)


def test_an_account_owned_token_is_verified_on_the_account(
        api: tuple[StandIn, str], documents: dict[str, Any]) -> None:
    stand_in, base = api
    needs = all_needs(documents)
    stand_in.tokens["acct"] = {"id": "t3", "kind": "account", "status": "active",
                               "policies": full_policies(needs)}
    assert check_token("acct", needs, ACCOUNT, [ZONE], base).startswith("account token t3")
    assert [p for p, _ in stand_in.seen] == [
        "/user/tokens/verify", f"/accounts/{ACCOUNT}/tokens/verify",
        f"/accounts/{ACCOUNT}/tokens/t3"]


@pytest.mark.parametrize(("token", "message"), [
    ({"id": "t4", "kind": "user", "status": "disabled", "policies": []},
     "the Cloudflare API token is disabled"),
    ({"id": "t5", "kind": "user", "status": "active", "policies": None},
     "may not read its own permissions"),
])
def test_disabled_or_blind_tokens_are_refused(api: tuple[StandIn, str],
                                              documents: dict[str, Any],
                                              token: dict[str, Any], message: str) -> None:
    stand_in, base = api
    stand_in.tokens["x"] = token
    with pytest.raises(TokenError, match=message):
        check_token("x", all_needs(documents), ACCOUNT, [ZONE], base)


def test_an_unknown_token_is_refused_by_both_endpoints(api: tuple[StandIn, str],
                                                       documents: dict[str, Any]) -> None:
    _, base = api
    with pytest.raises(TokenError, match=r"refused the API token.*HTTP 401.*Invalid API Token"):
        check_token("nope", all_needs(documents), ACCOUNT, [ZONE], base)


def test_scope_deny_and_other_zones_count() -> None:
    dns = Need(("DNS Write",), "zone", "src")
    r2 = Need(("Workers R2 Storage Write",), "account", "src")
    other_zone = policy(["DNS Write"], {"com.cloudflare.api.account.zone.aaaa": "*"})
    assert missing([dns], [other_zone], ACCOUNT, [ZONE]) == [dns]
    all_zones = policy(["DNS Write"], {"com.cloudflare.api.account.zone.*": "*"})
    assert missing([dns], [all_zones], ACCOUNT, [ZONE]) == []
    denied = policy(["DNS Write"], {f"com.cloudflare.api.account.zone.{ZONE}": "*"}, "deny")
    assert missing([dns], [all_zones, denied], ACCOUNT, [ZONE]) == [dns]
    other_account = policy(["Workers R2 Storage Write"], {"com.cloudflare.api.account.b": "*"})
    assert missing([r2], [other_account], ACCOUNT, [ZONE]) == [r2]
    as_string = policy(["Workers R2 Storage Write"],
                       json.dumps({f"com.cloudflare.api.account.{ACCOUNT}": "*"}))  # type: ignore[arg-type]
    assert missing([r2], [as_string], ACCOUNT, [ZONE]) == []


def test_check_permissions_prints_each_stacks_groups(cli: RunCli) -> None:
    done = cli("check", "--permissions", "zone", "staging")
    assert done.returncode == 0, done.stderr
    assert "zone:\n  zone     Zone Settings: Edit" in done.stdout
    assert "cloudflare_ruleset.security_rate_limits" in done.stdout
    assert "account  Account API Tokens: Edit" in done.stdout
    assert "account  Hyperdrive: Edit" in done.stdout  # what `up` adds at the end
    assert "cloudflare_hyperdrive_config (later)" in done.stdout
    done = cli("check", "--permissions", "--format", "json", "bootstrap")
    report = json.loads(done.stdout)
    assert report["token"] == [{"dashboard": "Workers R2 Storage: Edit",
                                "groups": ["Workers R2 Storage Write"], "scope": "account"}]
    assert cli("check", "--permissions", "--generated").returncode == 2


def test_check_permissions_of_an_environment_is_the_token_up_checks_for(
        cli: RunCli, documents: dict[str, Any], later: dict[str, dict[str, str]]) -> None:
    """`edgekit up staging` applies bootstrap and zone too and checks the token for all
    three: the list the README has a team build its token from must be that one."""
    done = cli("check", "--permissions", "--format", "json", "staging")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["stacks"]) == ["bootstrap", "staging", "zone"]
    up_checks = all_needs({s: documents[s] for s in ("bootstrap", "zone", "staging")},
                          {s: later[s] for s in ("bootstrap", "zone", "staging")})
    assert [(t["scope"], t["dashboard"]) for t in report["token"]] == [
        (n.scope, n.dashboard) for n in up_checks]
    assert {"Zone WAF: Edit", "Zone Settings: Edit"} <= {t["dashboard"] for t in report["token"]}
    assert "with what staging build on (bootstrap, zone)" in done.stderr


@pytest.mark.parametrize(("drop", "named"), [
    ("Cloudflare Tunnel Write", "account Cloudflare Tunnel: Edit"),
    # only the last step creates Hyperdrive: still refused before anything is applied
    ("Hyperdrive Write", "account Hyperdrive: Edit"),
])
def test_up_stops_before_any_apply_when_the_token_lacks_a_group(
        api: tuple[StandIn, str], documents: dict[str, Any],
        later: dict[str, dict[str, str]], project_copy: Path, drop: str, named: str) -> None:
    stand_in, base = api
    stand_in.tokens["tok"] = {"id": "t6", "kind": "user", "status": "active",
                              "policies": full_policies(all_needs(documents, later),
                                                        drop=drop)}
    subprocess.run(["git", "init", "-q"], cwd=project_copy, check=True)
    subprocess.run(["git", "remote", "add", "origin", "git://127.0.0.1:9/none"],
                   cwd=project_copy, check=True)
    env = {**os.environ, "EDGEKIT_SCHEMA_DIR": str(project_copy / "schema"),
           "EDGEKIT_CLOUDFLARE_API": base, "TF_VAR_cloudflare_api_token": "tok",
           "TF_VAR_state_passphrase": "p" * 20, "TF_VAR_hcloud_token": "h",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "up", "staging", "--json"],
                          cwd=project_copy, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 11, done.stderr
    report = json.loads(done.stdout)
    assert report["failed_step"] == 1
    assert f"lacks: {named}" in report["steps"][0]["detail"]
    assert "tok" not in done.stderr.replace("token", "")
    assert not (project_copy / ".edgekit" / "tofu").exists()  # no tofu ran at all
