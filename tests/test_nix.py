"""The Nix side, with Debian's real nix-instantiate (2.8) and no nixpkgs.

Every .nix file of the repository parses; the pure composition (nix/compose.nix) evaluates for
each committed CUE export and equals what edgekit/nix/compose.py computes; bad placements give
the same thrown message in Nix and in Python; the pure parts of the node modules, the glued
flakes and the top-level flake evaluate against the stand-ins of nix/stubs.nix.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

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
    nix_instantiate,
    parse,
)
from edgekit.obs.vector import VECTOR_VERSION
from tests.conftest import ROOT

pytestmark = pytest.mark.tools

EXCLUDED = {".venv", "node_modules", ".git", "cdktf.out", ".mypy_cache", ".pytest_cache"}
STUBS = ROOT / "nix" / "stubs.nix"


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
    return Estate.load(ROOT, env, refresh=False)


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


# ---------------------------------------------------------------- nix/node.nix


def cloud_facts(provider: str) -> Any:
    """The node facts the flake gives node.nix (nix/estate.nix: nix/clouds.json)."""
    return json.loads((ROOT / "nix" / "clouds.json").read_text())[provider]


def _node_modules(env: str, node: str, postgresql: Mapping[str, Any] | None = None) -> Any:
    """node.nix for one composed node, its last module applied to the stubs' lib."""
    provider = _estate(env).env.nodes[node].provider
    arguments = {"node": compose_estate(_estate(env))[node], "name": node,
                 "cloud": cloud_facts(provider),
                 "postgresql": postgresql, "upgradeFlake": "git+https://example/edgekit",
                 "vectorPackage": {"pname": "vector", "version": VECTOR_VERSION,
                                   "outPath": "/nix/store/vector"}}
    modules = "{ api = { _glued = \"api\"; }; web = { _glued = \"web\"; }; }"
    expression = (
        f"args: let s = import {_nix(STUBS)}; "
        f"mods = import {_nix(ROOT / 'nix' / 'node.nix')} (args // {{ modules = {modules}; }}); "
        "last = builtins.elemAt mods (builtins.length mods - 1); "
        "in { imported = builtins.filter builtins.isAttrs (builtins.genList "
        "(i: builtins.elemAt mods i) (builtins.length mods - 1)); "
        "config = last { lib = s.lib; "
        "pkgs = s.pkgs \"x86_64-linux\"; "
        "config = { services.postgresql.package = \"/nix/store/postgresql\"; "
        "services.vector.package = \"/nix/store/vector\"; }; }; }")
    return evaluate(expression, arguments)


def test_edge_node_modules() -> None:
    result = _node_modules("prod", "edge-1")
    assert result["imported"] == [{"_glued": "api"}, {"_glued": "web"}]
    config = result["config"]
    assert config["networking"]["hostName"] == "edge-1"
    assert config["networking"]["firewall"]["allowedTCPPorts"]["content"] == []
    assert "cloudflared" not in config["services"]  # edgekit's own units, one per token
    tunnel = config["systemd"]["services"]["edgekit-cloudflared-tunnel-token"]
    assert tunnel["serviceConfig"]["LoadCredential"] == ["token:/run/keys/edgekit/tunnel_token"]
    assert tunnel["serviceConfig"]["ExecStart"].endswith("run --token-file %d/token")
    assert config["services"]["vector"]["enable"] is True
    assert config["services"]["edgekit"]["api"]["passwordFile"] == \
        "/run/keys/edgekit-pg/svc_api_rw"
    assert config["services"]["edgekit"]["web"]["environment"]["PORT"] == "8081"
    assert "postgresql" not in config["services"]
    keys = config["systemd"]["services"]["edgekit-keys"]
    assert set(config["systemd"]["services"]) == {
        "edgekit-keys", "edgekit-cloudflared-tunnel-token", "vector"}
    assert keys["before"] == ["edgekit-cloudflared-tunnel-token.service", "edgekit-api.service",
                              "edgekit-web.service", "vector.service"]
    assert "pg_password_*) file=/run/keys/edgekit-pg/${key#pg_password_}" in keys["script"]
    assert keys["path"] == ["jq", "coreutils"]
    assert "users" not in config
    assert config["system"]["autoUpgrade"]["flake"] == "git+https://example/edgekit#edge-1"


def test_postgres_node_modules() -> None:
    estate = _estate("prod")
    pg = nixos_postgresql(estate.services, listen_address="10.0.1.5",
                          private_cidr="10.0.0.0/16")
    config = _node_modules("prod", "pg-tokyo", postgresql=pg)["config"]
    postgresql = config["services"]["postgresql"]
    assert EDGEKIT_KEY not in postgresql
    assert postgresql["ensureDatabases"] == ["api", "web"]
    assert postgresql["authentication"] == pg["authentication"]
    assert postgresql["settings"]["listen_addresses"] == {
        "_type": "override", "priority": 50, "content": "10.0.1.5"}
    unit = config["systemd"]["services"]["edgekit-pg-bootstrap"]
    assert unit["serviceConfig"]["User"] == "postgres"
    assert unit["after"] == [*pg[EDGEKIT_KEY]["after"], "edgekit-keys.service"]
    assert unit["script"].splitlines()[0] == \
        "'psql' '-X' '-v' 'ON_ERROR_STOP=1' '-d' 'postgres' '-f' '/etc/edgekit/pg-bootstrap.sql'"
    assert "edgekit" not in config["services"]  # nothing placed on the primary
    assert config["systemd"]["services"]["edgekit-keys"]["before"] == [
        "edgekit-cloudflared-pg-tunnel-token.service", "vector.service",
        "edgekit-pg-bootstrap.service"]
    assert "users" not in config  # postgres reads only its passwords (group postgres)


def test_node_without_a_glued_module_is_refused() -> None:
    expression = (f"args: import {_nix(ROOT / 'nix' / 'node.nix')} "
                  "(args // { modules = { api = { }; }; })")
    node = compose_estate(_estate("prod"))["edge-1"]
    with pytest.raises(NixEvalError, match="no glued flake module for service 'web'"):
        evaluate(expression, {"node": node, "name": "edge-1"})


# ---------------------------------------------------------------- glued flakes, top-level flake


@pytest.mark.parametrize("svc", ["api", "web"])
def test_glued_flake_pure_parts(svc: str) -> None:
    edgekit = json.loads((ROOT / "services" / svc / "edgekit.json").read_text())
    expression = (
        f"let s = import {_nix(STUBS)}; "
        f"service = s.flake {_nix(ROOT / 'services' / 'lib' / 'flake.nix')} {{ }}; "
        f"f = s.flake {_nix(ROOT / 'services' / svc / 'flake.nix')} "
        "{ edgekit-service = service; }; "
        f"flake = import {_nix(ROOT / 'services' / svc / 'flake.nix')}; "
        f"m = f.nixosModules.default {{ lib = s.lib; pkgs = s.pkgs \"x86_64-linux\"; "
        f"config.services.edgekit.{svc} = {{ enable = true; package = \"/nix/store/p\"; "
        f"environment = {{ }}; passwordFile = \"/run/keys/edgekit-pg/x\"; }}; }}; "
        "in { inputs = flake.inputs; edgekit = f.lib.edgekit; "
        "package = f.packages.x86_64-linux.default; "
        f"defaults = m.options.services.edgekit.{svc}; "
        f"unit = m.config.systemd.services.\"edgekit-{svc}\"; }}")
    result = evaluate(expression)
    assert result["inputs"] == {
        "nixpkgs": {"url": "github:NixOS/nixpkgs/nixos-25.11"},
        "edgekit-service": {"url": "path:../lib", "inputs": {"nixpkgs": {"follows": "nixpkgs"}}},
    }
    assert result["edgekit"] == edgekit
    package = result["package"]
    assert package["name"] == f"edgekit-{svc}"
    assert package["runtimeInputs"] == [{"python3": ["psycopg"]}]
    assert "-app.py" in package["text"] and "-edgekit.json" in package["text"]
    assert 'export PYTHONPATH="/nix/store/' in package["text"]  # the service library
    assert result["defaults"]["passwordFile"]["_option"]["default"] == \
        f"/run/keys/edgekit-pg/{edgekit['postgres']['role']}"
    unit = result["unit"]
    assert unit["serviceConfig"]["DynamicUser"] is True
    assert unit["serviceConfig"]["ExecStart"] == f"/nix/store/p/bin/edgekit-{svc}"
    assert unit["serviceConfig"]["LoadCredential"] == ["pgpassword:/run/keys/edgekit-pg/x"]
    assert unit["environment"]["PORT"] == str(edgekit["port"])
    assert unit["environment"]["BIND"] == "127.0.0.1"
    assert unit["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    assert unit["environment"]["OTEL_SERVICE_NAME"] == svc
    assert not {"PGPASSWORD", "PGPASSFILE"} & set(unit["environment"])


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
        f"let s = import {_nix(STUBS)}; "
        f"service = s.flake {_nix(ROOT / 'services' / 'lib' / 'flake.nix')} {{ }}; "
        f"glued = svc: s.flake ({_nix(ROOT / 'services')} + \"/${{svc}}/flake.nix\") "
        "{ edgekit-service = service; }; "
        f"top = s.flake {_nix(ROOT / 'flake.nix')} "
        "{ api = glued \"api\"; web = glued \"web\"; "
        f"nixpkgs-vector = s.nixpkgsWithVector {json.dumps(VECTOR_VERSION)}; }}; "
        f"flake = import {_nix(ROOT / 'flake.nix')}; "
        "in { inputs = flake.inputs; nodes = top.nixosConfigurations; "
        "shell = top.devShells.x86_64-linux.default.packages; }")
    result = evaluate(expression)
    assert result["inputs"]["api"] == {"url": "path:./services/api", "inputs": {
        "nixpkgs": {"follows": "nixpkgs"}, "edgekit-service": {"follows": "edgekit-service"}}}
    assert result["inputs"]["edgekit-service"] == {
        "url": "path:./services/lib", "inputs": {"nixpkgs": {"follows": "nixpkgs"}}}
    nodes = {node for env in Estate.env_names(ROOT) for node in _estate(env).env.nodes}
    assert set(result["nodes"]) == nodes
    # base + the node's glued modules + its cloud's networking (nix/cloud.nix) + the mesh
    # (ADR 0010) + node.nix's own module; the primary also gets pgBackRest (ADR 0011)
    assert result["nodes"]["edge-1"]["moduleCount"] == 6
    assert result["nodes"]["pg-tokyo"]["moduleCount"] == 5
    assert result["shell"] == ["opentofu", "cue", {"python3": ["psycopg"]}, "nodejs", "nix"]
