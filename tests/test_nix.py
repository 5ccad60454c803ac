"""The Nix side, with Debian's real nix-instantiate (2.8) and no nixpkgs.

Every .nix file of the repository parses; the pure composition (nix/compose.nix) evaluates for
each committed CUE export and equals what edgekit/nix/compose.py computes; bad placements give
the same thrown message in Nix and in Python; the pure parts of the node modules, the glued
flakes and the top-level flake evaluate for real against the vendored upstream NixOS modules
(nix/eval/, nix/upstream/; the stand-ins are nix/stubs.nix for pkgs and nix/eval/standins.nix).
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.constructs.hyperdrive import hyperdrive_service
from edgekit.constructs.pg_bootstrap import EDGEKIT_KEY, nixos_postgresql
from edgekit.cue.model import Estate, Service
from edgekit.nix.compose import (
    ComposeError,
    PostgresPlace,
    compose,
    compose_estate,
    nix_arguments,
)
from edgekit.nix.evaluate import (
    INSTALL_HINT,
    NixEvalError,
    evaluate,
    evaluate_compose,
    evaluate_file,
    evaluate_nodes,
    nix_instantiate,
    parse,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.tools

EXCLUDED = {".venv", "node_modules", ".git", "cdktf.out", ".mypy_cache", ".pytest_cache"}


@pytest.fixture(scope="module", autouse=True)
def nix() -> str:
    if shutil.which("nix-instantiate") is None:
        pytest.fail(f"nix-instantiate is not installed; install it: {INSTALL_HINT}")
    return nix_instantiate()


def _nix_files() -> list[Path]:
    found = []
    for path in sorted(ROOT.rglob("*.nix")):
        if not EXCLUDED.intersection(path.relative_to(ROOT).parts):
            found.append(path)
    return found


def _estate(env: str) -> Estate:
    return Estate.load(ROOT, env, check_fresh=False)


def _nix(path: Path) -> str:
    return json.dumps(str(path))


# ---------------------------------------------------------------- every file parses


def test_every_nix_file_parses() -> None:
    files = _nix_files()
    names = {str(p.relative_to(ROOT)) for p in files}
    assert {"flake.nix", "nix/compose.nix", "nix/node.nix", "nix/estate.nix", "nix/base.nix",
            "services/api/flake.nix", "services/web/flake.nix"} <= names
    for path in files:
        parse(path)


def test_a_syntax_error_is_reported_with_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nix"
    bad.write_text("{ a = ; }\n")
    with pytest.raises(NixEvalError, match=rf"^{bad}: syntax error"):
        parse(bad)


# ---------------------------------------------------------------- composition: Nix == Python


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_composition_in_nix_equals_python(env: str) -> None:
    estate = _estate(env)
    in_nix = evaluate_compose(nix_arguments(estate))
    in_python = compose_estate(estate)
    assert in_nix == in_python
    assert set(in_nix) == set(estate.env.nodes)
    for node, names in estate.env.placement.items():
        assert in_nix[node]["services"] == list(names)
        assert in_nix[node]["ports"] == {n: estate.services[n].port for n in names}
        assert "ingress" not in in_nix[node]  # one computation: edgekit/constructs/tunnel.py


def test_prod_composition() -> None:
    nodes = evaluate_compose(nix_arguments(_estate("prod")))
    edge = nodes["edge-1"]
    assert edge["services"] == ["api", "web"]
    assert edge["ports"] == {"api": 8080, "web": 8081}
    assert edge["tunnels"] == ["tunnel_token"]
    assert edge["env"]["api"] == {
        "LOG_LEVEL": "info", "PORT": "8080", "BIND": "127.0.0.1",
        "EDGEKIT_HEALTH_PATH": "/healthz",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "api",
        "OTEL_RESOURCE_ATTRIBUTES": "host.name=edge-1,deployment.environment=prod",
        "PGDATABASE": "api", "PGUSER": "svc_api_rw", "PGPORT": "5432",
        "PGHOST": "10.100.0.1",  # the primary's WireGuard mesh address (ADR 0010)
    }
    assert edge["env"]["web"]["PGUSER"] == "svc_web_ro"
    assert not any(edge["postgres"] for edge in (nodes["edge-1"], nodes["edge-tokyo"]))
    assert nodes["pg-tokyo"] == {"services": [], "ports": {}, "env": {},
                                 "tunnels": ["pg_tunnel_token"], "postgres": True}
    for node in nodes.values():
        for env in node["env"].values():
            assert not {"PGPASSWORD", "PGPASSFILE"} & set(env)


def test_staging_hostnames_and_postgres_host() -> None:
    estate = _estate("staging")
    arguments = nix_arguments(estate)
    arguments["postgres"] = {"node": "staging-1", "host": "10.0.1.5", "port": 5432}
    node = evaluate_compose(arguments)["staging-1"]
    assert node["tunnels"] == ["tunnel_token", "pg_tunnel_token"]
    assert node["postgres"] is True
    assert node["env"]["api"]["PGHOST"] == "10.0.1.5"
    python = compose(estate.env.placement, estate.services, nodes=estate.env.nodes,
                     postgres=PostgresPlace(node="staging-1", host="10.0.1.5"),
                     env_name="staging")
    assert python["staging-1"] == node


def test_estate_nix_composes_every_node_of_every_env() -> None:
    estate = evaluate_file(ROOT / "nix" / "estate.nix", {})
    expected: dict[str, Any] = {}
    for env in Estate.env_names(ROOT):
        for node, composed in compose_estate(_estate(env)).items():
            expected[node] = composed
            assert estate[node]["env"] == env
    assert {node: entry["composed"] for node, entry in estate.items()} == expected
    assert estate["pg-tokyo"]["provider"] == "vultr"


# ---------------------------------------------------------------- bad inputs: same throw


def _bad(placement: Mapping[str, Sequence[str]],
         services: Mapping[str, Service]) -> tuple[str, str]:
    """The Nix throw and the Python error for one bad input (both must fail)."""
    arguments = {"placement": {k: list(v) for k, v in placement.items()},
                 "services": {k: json.loads(json.dumps(attrs.asdict(v)))
                              for k, v in services.items()}}
    with pytest.raises(NixEvalError) as in_nix:
        evaluate_compose(arguments)
    with pytest.raises(ComposeError) as in_python:
        compose(placement, services)
    return in_nix.value.message, str(in_python.value)


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    return _estate("prod").services


def test_service_placed_twice(services: dict[str, Service]) -> None:
    message = "edgekit compose: service 'api' is placed on node 'edge-1' twice"
    assert _bad({"edge-1": ["api", "web", "api"]}, services) == (message, message)


def test_two_services_on_one_port(services: dict[str, Service]) -> None:
    clash = {**services, "web": attrs.evolve(services["web"], port=8080)}
    message = ("edgekit compose: node 'edge-1': services 'api' and 'web' both use port 8080")
    assert _bad({"edge-1": ["api", "web"]}, clash) == (message, message)


def test_unknown_service(services: dict[str, Service]) -> None:
    message = ("edgekit compose: node 'edge-2': placed service 'shop' is not a known service "
               "(known: api, edge-worker, web)")
    assert _bad({"edge-2": ["api", "shop"]}, services) == (message, message)


def test_worker_on_a_node(services: dict[str, Service]) -> None:
    message = ("edgekit compose: node 'edge-1': service 'edge-worker' is a worker (it runs on "
               "Cloudflare); it cannot be placed on a node")
    assert _bad({"edge-1": ["edge-worker"]}, services) == (message, message)


def test_placement_on_a_node_that_does_not_exist() -> None:
    estate = _estate("staging")
    arguments = nix_arguments(estate)
    arguments["placement"]["ghost"] = ["api"]
    message = ("edgekit compose: placement names node 'ghost', which is not a node of the "
               "environment (nodes: staging-1)")
    with pytest.raises(NixEvalError) as err:
        evaluate_compose(arguments)
    assert err.value.message == message
    with pytest.raises(ComposeError) as in_python:
        compose({**estate.env.placement, "ghost": ("api",)}, estate.services,
                nodes=estate.env.nodes)
    assert str(in_python.value) == message


# ---------------------------------------------------------------- nix/node.nix, evaluated


NODE_EVAL = ROOT / "nix" / "eval" / "estate.nix"


@functools.cache
def _reports() -> dict[str, Any]:
    return evaluate_nodes(ROOT)


def _node_modules(env: str, node: str) -> dict[str, Any]:
    """`node`'s configuration as the real evaluation gives it (nix/eval/, the vendored
    upstream modules; edgekit.nix.evaluate), in the shape of NixOS's `config`."""
    r = _reports()[node]
    assert r["env"] == env
    return {"config": {
        "systemd": {"services": r["services"], "timers": r["timers"],
                    "targets": r["targets"], "tmpfiles": {"rules": r["tmpfiles"]}},
        "fileSystems": r["fileSystems"],
        "environment": {"etc": r["etc"]},
        "networking": r["networking"],
        "services": {"vector": r["vector"], "edgekit": r["edgekit"],
                     "postgresql": r["postgresql"]},
        "system": {"autoUpgrade": r["autoUpgrade"]},
        "users": {"users": r["users"], "groups": r["groups"]},
    }}


def evaluate_modules(modules: str, select: str, arguments: Any = None) -> Any:
    """`select` (an expression of `r`, the report, and `c`, the config) of the evaluation
    of `modules` (a Nix list; `e` is nix/eval/estate.nix's result, `args` the JSON
    arguments) with the vendored upstream modules and the stand-ins."""
    expression = (f"args: let e = import {_nix(NODE_EVAL)} {{ }}; "
                  f"ev = e.evalModules ({modules} ++ [ {{ networking.hostName = \"test\"; "
                  "system.stateVersion = \"25.11\"; } ]); c = ev.config; r = e.reportOf ev; "
                  f"in {select}")
    return evaluate(expression, arguments if arguments is not None else {})


def test_edge_node_modules() -> None:
    config = _node_modules("prod", "edge-1")["config"]
    assert config["networking"]["hostName"] == "edge-1"
    assert config["networking"]["firewall"]["allowedTCPPorts"] == []
    units = config["systemd"]["services"]
    tunnel = units["edgekit-cloudflared-tunnel-token"]
    assert tunnel["serviceConfig"]["LoadCredential"] == ["token:/run/keys/edgekit/tunnel_token"]
    assert tunnel["serviceConfig"]["ExecStart"].endswith("run --token-file %d/token")
    assert config["services"]["vector"]["enable"] is True
    assert config["services"]["edgekit"]["api"]["passwordFile"] == \
        "/run/keys/edgekit-pg/svc_api_rw"
    assert config["services"]["edgekit"]["web"]["environment"]["PORT"] == "8081"
    assert config["services"]["postgresql"] is None
    assert set(units) == {"edgekit-keys", "edgekit-cloudflared-tunnel-token", "vector",
                          "edgekit-api", "edgekit-web", "edgekit-mesh-key", "edgekit-deploy",
                          "firewall", "wireguard-wg-edgekit", "wireguard-wg-edgekit-key"}
    keys = units["edgekit-keys"]
    assert keys["before"] == ["edgekit-cloudflared-tunnel-token.service", "edgekit-api.service",
                              "edgekit-web.service", "vector.service"]
    assert "pg_password_*) file=/run/keys/edgekit-pg/${key#pg_password_}" in keys["script"]
    assert [p["name"] for p in keys["path"]][:2] == ["jq-0", "coreutils-0"]
    assert set(config["users"]["users"]) == {"root", "nobody"}  # upstream's own
    # the deploy agent follows the node's ref (ADR 0033) in place of system.autoUpgrade
    assert config["system"]["autoUpgrade"]["enable"] is False
    agent = json.loads(config["environment"]["etc"]["edgekit/deploy.json"]["text"])
    assert agent["node"] == "edge-1" and agent["refs"][-1] == "refs/heads/deploy/prod"


def test_postgres_node_modules() -> None:
    estate = _estate("prod")
    generated = json.loads((ROOT / "nix" / "postgresql" / "prod.json").read_text())
    config = _node_modules("prod", "pg-tokyo")["config"]
    postgresql = config["services"]["postgresql"]
    assert postgresql["ensureDatabases"] == ["api", "web"]
    # the mesh module (ADR 0010) sets pg_hba with mkOverride 40: upstream's defaults
    # (mkBefore/mkAfter at priority 100, with md5 over loopback) are dropped, ours is all
    hba = postgresql["authentication"].splitlines()
    assert hba[0] == "local all all peer"
    assert "hostssl api svc_api_rw 10.100.0.21/32 scram-sha-256" in hba  # TLS only (ADR 0025)
    assert hba[-2:] == ["host all all 0.0.0.0/0 reject", "host all all ::/0 reject"]
    assert not [line for line in hba if line.endswith("md5")]
    assert postgresql["settings"]["listen_addresses"] == "10.100.0.1"
    unit = config["systemd"]["services"]["edgekit-pg-bootstrap"]
    assert unit["serviceConfig"]["User"] == "postgres"
    assert unit["after"] == [*generated[EDGEKIT_KEY]["after"], "edgekit-keys.service"]
    assert unit["script"].splitlines()[0] == \
        "'psql' '-X' '-v' 'ON_ERROR_STOP=1' '-d' 'postgres' '-f' '/etc/edgekit/pg-bootstrap.sql'"
    assert config["services"]["edgekit"] == {}  # nothing placed on the primary
    assert config["systemd"]["services"]["edgekit-keys"]["before"] == [
        "edgekit-cloudflared-pg-tunnel-token.service", "vector.service",
        "edgekit-pg-bootstrap.service"]
    # the only users are upstream's: postgres reads its passwords through group postgres
    assert set(config["users"]["users"]) == {"postgres", "root", "nobody"}
    assert config["users"]["users"]["postgres"]["uid"] == 71
    assert nixos_postgresql(estate.services, listen_address="10.100.0.1",
                            private_cidr="10.100.0.0/24",
                            tls_hostnames=[estate.env.zone.origin_hostname("pg")],
                            hyperdrive=hyperdrive_service(estate.services),
                            publish_ca={  # the primary's authority, to the logs bucket
                                "endpoint": "https://0123456789abcdef0123456789abcdef"
                                            ".r2.cloudflarestorage.com",
                                "bucket": "edgekit-logs", "key": "pg-tls/prod/pg-tokyo.crt",
                                "credentials": "/run/keys/edgekit/vector.env"}) == {
        k: v for k, v in generated.items() if k != "//"}


def test_node_without_a_glued_module_is_refused() -> None:
    expression = (f"args: import {_nix(ROOT / 'nix' / 'node.nix')} "
                  "(args // { modules = { api = { }; }; })")
    node = compose_estate(_estate("prod"))["edge-1"]
    with pytest.raises(NixEvalError, match="no glued flake module for service 'web'"):
        evaluate(expression, {"node": node, "name": "edge-1"})


def test_an_option_no_module_declares_is_an_error() -> None:
    """Every option we set is declared by a vendored upstream module or a listed stand-in
    (nix/eval/standins.nix); a misspelt one no longer passes."""
    with pytest.raises(NixEvalError, match=r"The option `services.postgresql.ensureDatabase' "
                                           r"does not exist"):
        evaluate_modules("[ { services.postgresql.ensureDatabase = [ \"api\" ]; } ]", "r.hostName")
    with pytest.raises(NixEvalError, match=r"The option `networking.wireguard.interfaces.wg0.ip' "
                                           r"does not exist"):
        evaluate_modules("[ { networking.wireguard.interfaces.wg0.ip = [ ]; } ]", "r.networking")


def test_a_definition_of_a_sink_is_reported() -> None:
    """Options only vendored modules may write (their effect lives in modules we do not
    vendor) are reported when our own files define them."""
    found = evaluate_modules("[ { environment.pathsToLink = [ \"/share\" ]; } ]",
                             "r.sinkDefinitions")
    assert len(found) == 1 and found[0].startswith("environment.pathsToLink: ")


# ---------------------------------------------------------------- glued flakes, top-level flake


@pytest.mark.parametrize("svc", ["api", "web"])
def test_glued_flake_pure_parts(svc: str) -> None:
    edgekit = json.loads((ROOT / "services" / svc / "edgekit.json").read_text())
    flake_nix = _nix(ROOT / "services" / svc / "flake.nix")
    result = evaluate_modules(
        f"[ e.gluedModules.{svc} {{ services.edgekit.{svc} = {{ enable = true; "
        "environment = { }; passwordFile = \"/run/keys/edgekit-pg/x\"; }; } ]",
        f"{{ inputs = (import {flake_nix}).inputs; edgekit = e.glued.{svc}.lib.edgekit; "
        f"package = e.glued.{svc}.packages.x86_64-linux.default; "
        f"default = (e.evalModules [ e.gluedModules.{svc} ]).options.services.edgekit.{svc}"
        ".passwordFile.default; "
        f"unit = r.services.\"edgekit-{svc}\"; }}")
    assert result["inputs"] == {
        "nixpkgs": {"url": "github:NixOS/nixpkgs/nixos-25.11"},
        "edgekit-service": {"url": "path:../lib", "inputs": {"nixpkgs": {"follows": "nixpkgs"}}},
    }
    assert result["edgekit"] == edgekit
    package = result["package"]
    assert package.endswith(f"-edgekit-{svc}")
    assert result["default"] == f"/run/keys/edgekit-pg/{edgekit['postgres']['role']}"
    unit = result["unit"]
    assert unit["serviceConfig"]["DynamicUser"] is True
    assert unit["serviceConfig"]["ExecStart"] == f"{package}/bin/edgekit-{svc}"
    assert unit["serviceConfig"]["LoadCredential"] == ["pgpassword:/run/keys/edgekit-pg/x"]
    assert unit["environment"]["PORT"] == str(edgekit["port"])
    assert unit["environment"]["BIND"] == "127.0.0.1"
    assert unit["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert unit["environment"]["OTEL_SERVICE_NAME"] == svc
    assert not {"PGPASSWORD", "PGPASSFILE"} & set(unit["environment"])


@pytest.mark.parametrize("svc", ["api", "web"])
def test_glued_package_runs_the_app_with_the_library(svc: str) -> None:
    text = evaluate(f"let e = import {_nix(NODE_EVAL)} {{ }}; "
                    f"p = e.glued.{svc}.packages.x86_64-linux.default; in "
                    "{ inherit (p) script; "
                    "inputs = map (i: i.packages or i.name) p.runtimeInputs; }")
    assert text["inputs"] == [["psycopg"]]
    assert "-app.py" in text["script"] and "-edgekit.json" in text["script"]
    assert 'export PYTHONPATH="/nix/store/' in text["script"]  # the service library


@pytest.mark.parametrize(("arguments", "message"), [
    ("environment = { PGPASSWORD = \"hunter2\"; };",
     "edgekit api: PGPASSWORD must not be in the environment"),
    ("passwordFile = ./secret;", "must be a string path under /run/keys, not a Nix path"),
    ("passwordFile = \"/etc/secret\";", "passwordFile /etc/secret must be under /run/keys/"),
    ("environment = { BIND = \"0.0.0.0\"; };", "BIND must be a loopback address"),
])
def test_unit_refuses_secrets_in_the_store_and_public_binds(arguments: str,
                                                            message: str) -> None:
    expression = (f"import {_nix(ROOT / 'services' / 'lib' / 'unit.nix')} "
                  f"{{ package = \"/nix/store/p\"; {arguments} edgekit = builtins.fromJSON "
                  f"(builtins.readFile {_nix(ROOT / 'services' / 'api' / 'edgekit.json')}); }}")
    with pytest.raises(NixEvalError, match=message.replace(".", r"\.")):
        evaluate(expression)


def test_top_level_flake_has_a_configuration_per_node_and_a_dev_shell() -> None:
    expression = (
        f"let e = import {_nix(NODE_EVAL)} {{ }}; flake = import {_nix(ROOT / 'flake.nix')}; "
        "in { inputs = flake.inputs; nodes = builtins.attrNames e.flake.nixosConfigurations; "
        "shell = map (p: p.name or p.type) e.flake.devShells.x86_64-linux.default.packages; }")
    result = evaluate(expression)
    assert result["inputs"]["api"] == {"url": "path:./services/api", "inputs": {
        "nixpkgs": {"follows": "nixpkgs"}, "edgekit-service": {"follows": "edgekit-service"}}}
    assert result["inputs"]["edgekit-service"] == {
        "url": "path:./services/lib", "inputs": {"nixpkgs": {"follows": "nixpkgs"}}}
    nodes = {node for env in Estate.env_names(ROOT) for node in _estate(env).env.nodes}
    assert set(result["nodes"]) == nodes
    assert result["shell"] == ["opentofu-0", "cue-0", "python3-env-3.13.9", "nodejs-0", "nix-0"]
