"""CUE is the source of truth: vet, export, freshness, validated properties, generated files,
and outputs flowing back. Uses the real `cue` built by tools/build.sh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs
import pytest

from edgekit.constructs.props import PROPS, TunnelProps, VpsNodeProps
from edgekit.cue import model
from edgekit.cue.export import render_exports, source_hash
from edgekit.cue.outputs import OutputsError, parse_outputs
from edgekit.schema.props import PropsError, schema_for, structure
from tests.conftest import ROOT
from tools.toolpaths import cue_bin

pytestmark = pytest.mark.tools

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session", autouse=True)
def cue_present() -> None:
    if not Path(cue_bin()).is_file():
        pytest.fail(f"cue not found at {cue_bin()}: run `make tools` (make test does)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project (cue/, services/, stacks/, schemas) to change freely."""
    root = tmp_path / "project"
    for name in ("cue", "services", "stacks", "nix"):
        shutil.copytree(ROOT / name, root / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "cdktf.json", root / "cdktf.json")
    shutil.copytree(ROOT / "edgekit/schema/cue", root / "schema")
    return root


@pytest.fixture
def edgekit(project: Path) -> Run:
    def run(*args: str, stdin: str | None = None, cue: bool = True
            ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "EDGEKIT_SCHEMA_DIR": str(project / "schema"),
               "EDGEKIT_CUE": cue_bin() if cue else str(project / "no-cue-here")}
        return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], cwd=project,
                              env=env, input=stdin, capture_output=True, text=True,
                              timeout=300)

    return run


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


# --- the module itself -------------------------------------------------------------------


def test_cue_vet_passes_on_the_module() -> None:
    result = subprocess.run([cue_bin(), "vet", "-c", "./..."], cwd=ROOT / "cue",
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_committed_exports_are_exactly_what_cue_exports_now() -> None:
    for path, data in render_exports(ROOT).items():
        assert path.read_bytes() == data, f"{path} is stale: run `edgekit cue export`"


def test_every_export_carries_the_source_hash() -> None:
    digest = source_hash(ROOT)
    for path in [*(ROOT / "edgekit/schema/cue").glob("*.json"),
                 *(ROOT / "cue/export").glob("*.json")]:
        assert json.loads(path.read_text())["x-edgekit-cue-sha256"] == digest, path


# --- freshness ---------------------------------------------------------------------------


def test_synth_refuses_stale_exports_without_cue(project: Path, edgekit: Run) -> None:
    edit(project / "cue/services.cue", "port: 8080", "port: 8090")
    before = tree(project)
    result = edgekit("synth", "--out", str(project / "out"), cue=False)
    assert result.returncode == 1
    assert "the CUE exports are stale against cue/" in result.stderr
    assert "refresh them with `edgekit cue export`" in result.stderr
    assert tree(project) == before  # nothing written, not even cdktf.out


def test_synth_reexports_by_itself_when_cue_is_installed(project: Path, edgekit: Run) -> None:
    edit(project / "cue/services.cue", "port: 8080", "port: 8090")
    result = edgekit("synth", "--out", str(project / "out"))
    assert result.returncode == 0, result.stderr
    assert "re-exported cue/export/prod.json" in result.stderr
    assert "regenerated services/api/edgekit.json" in result.stderr
    assert json.loads((project / "services/api/edgekit.json").read_text())["port"] == 8090
    assert edgekit("check", "--generated").returncode == 0


def test_synth_without_cue_uses_fresh_committed_exports(project: Path, edgekit: Run) -> None:
    result = edgekit("synth", "--out", str(project / "out"), cue=False)
    assert result.returncode == 0, result.stderr
    assert (project / "out/stacks/prod/placement.auto.tfvars.json").is_file()


# --- bad input in CUE: CUE's own message with file:line, nothing written -----------------

CUE_CASES = {
    "wrong type": ("services.cue", "port: 8081", 'port: "8081"',
                   'services.web.port: conflicting values "8081" and int (mismatched types '
                   "string and int)"),
    "unknown field": ("services.cue", "port: 8081", "prot: 8081",
                      "services.web.prot: field not allowed"),
    "port out of range": ("services.cue", "port: 8081", "port: 70000",
                          "services.web.port: invalid value 70000 (out of bound <=65535)"),
    "duplicate hostname": ("services.cue", '"www.edgekit.example"', '"api.edgekit.example"',
                           '_hostname_owner."api.edgekit.example": conflicting values "web" '
                           'and "api"'),
    "placement on unknown node": ("envs.cue", '"staging-1": ["api", "web"]',
                                  '"staging-9": ["api", "web"]',
                                  "environment 'staging': placement names node "
                                  "'staging-9', which is not a node of the environment"),
    "placement of unknown service": ("envs.cue", '"staging-1": ["api", "web"]',
                                     '"staging-1": ["api", "wbe"]',
                                     "environment 'staging': node 'staging-1' is given "
                                     "'wbe', which is not a service that runs on nodes "
                                     "(expected one of: api, web) @ placement.staging-1[1]"),
}


@pytest.mark.parametrize("case", sorted(CUE_CASES))
def test_bad_cue_is_refused_with_cues_message(case: str, project: Path, edgekit: Run) -> None:
    filename, old, new, message = CUE_CASES[case]
    edit(project / "cue" / filename, old, new)
    before = tree(project)
    result = edgekit("cue", "export")
    assert result.returncode == 1
    assert message in result.stderr
    assert f"./{filename}:" in result.stderr  # CUE's file:line survives
    assert tree(project) == before


# --- construct properties: JSON Schema from CUE, attrs classes, cattrs --------------------

TYPE_OF = {str: "string", int: "integer", bool: "boolean"}


def _schema_types(prop: dict[str, object], defs: dict[str, dict[str, object]]) -> set[str]:
    if "$ref" in prop:
        return _schema_types(defs[str(prop["$ref"]).split("/")[-1]], defs)
    if "type" in prop:
        return {str(prop["type"])}
    if "enum" in prop:
        return {TYPE_OF[type(v)] for v in prop["enum"]}  # type: ignore[attr-defined]
    if "allOf" in prop:
        return _schema_types(prop["allOf"][-1], defs)  # type: ignore[index]
    return set()


def _python_types(annotation: Any) -> set[str]:
    origin = get_origin(annotation)
    if origin in (tuple, list):
        return {"array"}
    if origin is dict or attrs.has(annotation):
        return {"object"}
    if origin is Literal:
        return {TYPE_OF[type(arg)] for arg in get_args(annotation)}
    if origin in (Union, UnionType):
        return set().union(*(_python_types(a) for a in get_args(annotation)
                             if a is not type(None)))
    return {TYPE_OF[annotation]} if annotation in TYPE_OF else set()


AGREEMENT = {**PROPS, "Service": model.Service, "Node": model.Node, "Env": model.Env}


@pytest.mark.parametrize("definition", sorted(AGREEMENT))
def test_attrs_class_and_exported_schema_agree_field_by_field(definition: str) -> None:
    cls = AGREEMENT[definition]
    schema = schema_for(definition)
    defs = schema.get("$defs", {})
    fields = {f.name: f for f in attrs.fields(cls)}
    assert set(fields) == set(schema["properties"]), definition
    required = {n for n, f in fields.items() if f.default is attrs.NOTHING}
    assert required == set(schema.get("required", [])), definition
    hints = get_type_hints(cls)
    for name, prop in schema["properties"].items():
        expected = _schema_types(prop, defs)
        if expected:
            assert _python_types(hints[name]) == expected, (definition, name)


def test_valid_props_structure_into_attrs() -> None:
    node = structure("VpsNode", VpsNodeProps, {
        "name": "edge-1", "provider": "hetzner", "region": "fsn1", "size": "cx23",
        "admin_ssh_cidrs": ["203.0.113.0/24"],
    }, "prod/edge-1")
    assert node == VpsNodeProps(name="edge-1", provider="hetzner", region="fsn1",
                                size="cx23", admin_ssh_cidrs=("203.0.113.0/24",))


def test_bad_props_are_all_reported_with_path_and_pointer() -> None:
    with pytest.raises(PropsError) as err:
        structure("VpsNode", VpsNodeProps, {
            "name": "Edge_1", "provider": "aws", "region": "fsn1", "size": 2,
            "colour": "blue", "admin_ssh_cidrs": ["10.0.0.0/8", 5],
        }, "prod/edge-1")
    assert [str(p) for p in err.value.problems] == [
        "[prod/edge-1] #VpsNode: unknown property 'colour' (allowed: admin_ssh_cidrs, "
        "backups, image, name, private_network, provider, region, roles, size) @ $",
        "[prod/edge-1] #VpsNode: expected string, got integer 5 @ $.admin_ssh_cidrs[1]",
        '[prod/edge-1] #VpsNode: "Edge_1" is not a name: a lowercase letter, then lowercase '
        "letters, digits and '-', at most 63 characters (e.g. 'edge-1') @ $.name",
        '[prod/edge-1] #VpsNode: expected one of "hetzner", "linode", "vultr", '
        '"digitalocean", got "aws" @ $.provider',
        "[prod/edge-1] #VpsNode: expected string, got integer 2 @ $.size",
    ]


def test_range_and_required_messages() -> None:
    with pytest.raises(PropsError) as err:
        structure("Tunnel", TunnelProps, {"name": "t", "nodes": [],
                                          "weights": {"edge-1": 101}}, "prod/tunnel")
    assert [str(p) for p in err.value.problems] == [
        "[prod/tunnel] #Tunnel: expected at least 1 item(s), got 0 @ $.nodes",
        "[prod/tunnel] #Tunnel: 101 is out of range 0-100 @ $.weights.edge-1",
    ]
    with pytest.raises(PropsError, match=r"missing required property 'nodes' @ \$"):
        structure("Tunnel", TunnelProps, {"name": "t"}, "prod/tunnel")


def test_each_validator_is_compiled_once() -> None:
    from edgekit.schema.props import validator_for

    assert validator_for("VpsNode") is validator_for("VpsNode")


# --- generated files ---------------------------------------------------------------------


def test_generated_files_in_the_repo_are_current() -> None:
    result = subprocess.run([sys.executable, "-m", "edgekit.cli", "check", "--generated"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_check_generated_lists_hand_edits_and_generate_repairs_them(project: Path,
                                                                    edgekit: Run) -> None:
    edit(project / "services/api/edgekit.json", '"port": 8080', '"port": 9999')
    (project / "services/web/edgekit.json").unlink()
    result = edgekit("check", "--generated")
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == ["  services/api/edgekit.json",
                                              "  services/web/edgekit.json"]
    assert edgekit("generate").returncode == 0
    assert edgekit("check", "--generated").returncode == 0


def test_generated_files_say_they_are_generated() -> None:
    for path in (ROOT / "services").glob("*/edgekit.json"):
        assert json.loads(path.read_text())["//"].startswith("Generated by edgekit")
    wrangler = (ROOT / "services/edge-worker/wrangler.jsonc").read_text()
    assert wrangler.startswith("// Generated by edgekit")


def test_placement_becomes_a_declared_variable_with_its_tfvars(project: Path,
                                                               edgekit: Run) -> None:
    assert edgekit("synth", "--out", str(project / "out")).returncode == 0
    stack = json.loads((project / "out/stacks/staging/cdk.tf.json").read_text())
    assert stack["variable"]["placement"]["type"] == "map(list(string))"
    tfvars = json.loads((project / "out/stacks/staging/placement.auto.tfvars.json").read_text())
    assert tfvars == {"placement": {"staging-1": ["api", "web"]}}


# --- outputs flow back -------------------------------------------------------------------


def test_malformed_outputs_are_refused_with_a_clear_message() -> None:
    with pytest.raises(OutputsError, match=r"are not valid JSON .*expected the output of "
                       r"`tofu output -json`"):
        parse_outputs("{not json", "prod")
    with pytest.raises(OutputsError, match=r"expected a JSON object of outputs .* got list"):
        parse_outputs("[]", "prod")
    with pytest.raises(OutputsError) as err:
        parse_outputs('{"ip": {"value": "1.2.3.4"}, "Bad-Name": {"sensitive": false, '
                      '"type": "string", "value": "x"}}', "prod")
    text = str(err.value)
    assert "output 'ip': expected an object with sensitive, type and value @ $.ip" in text
    assert "#Outputs: unknown property 'Bad-Name'" in text


def test_outputs_import_refuses_sensitive_values_and_unknown_stacks(project: Path,
                                                                    edgekit: Run) -> None:
    outputs = {
        "pg_primary_private_ip": {"sensitive": False, "type": "string", "value": "10.0.1.5"},
        "pg_password": {"sensitive": True, "type": "string", "value": "hunter2-secret"},
    }
    untouched = tree(project)
    refused = edgekit("outputs", "import", "--stack", "staging", stdin=json.dumps(outputs))
    assert refused.returncode == 1, refused.stderr
    assert "refused sensitive output 'pg_password'" in refused.stderr
    assert "pass --skip-sensitive to import the 1 plain output(s)" in refused.stderr
    assert tree(project) == untouched  # a refused import changes nothing
    result = edgekit("outputs", "import", "--stack", "staging", "--skip-sensitive",
                     stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    assert "skipped sensitive output 'pg_password'" in result.stderr
    imported = (project / "cue/outputs/staging.cue").read_text()
    assert "10.0.1.5" in imported and "hunter2-secret" not in imported
    for path in project.rglob("*"):
        if path.is_file():
            assert b"hunter2-secret" not in path.read_bytes(), path
    before = tree(project)
    bad = edgekit("outputs", "import", "--stack", "nope", stdin=json.dumps(outputs))
    assert bad.returncode == 1
    assert "stack 'nope' is not an environment of cue/ (environments: prod, staging)" \
        in bad.stderr
    malformed = edgekit("outputs", "import", "--stack", "prod", stdin="{oops")
    assert malformed.returncode == 1 and "not valid JSON" in malformed.stderr
    assert tree(project) == before


def test_outputs_round_trip_through_tofu_test_cue_and_generated_files(
    project: Path, edgekit: Run, tmp_path: Path
) -> None:
    """synth → tofu test apply with mocks → outputs → import → re-export → regenerated."""
    from edgekit import App, LocalState, Output, Resource, Stack
    from tests.conftest import Tofu

    app = App(outdir=tmp_path / "out")
    stack = Stack(app, "staging", state=LocalState(), encryption=None)
    network = Resource(stack, "net", type="hcloud_network",
                       config={"name": "staging", "ip_range": "10.0.0.0/16"})
    server = Resource(stack, "pg", type="hcloud_server",
                      config={"name": "pg", "server_type": "cx23", "image": "debian-12"})
    attachment = Resource(stack, "pg-net", type="hcloud_server_network",
                          config={"server_id": server.attr("id"),
                                  "network_id": network.attr("id"), "ip": "10.0.1.5"})
    Output(stack, "pg_primary_private_ip", value=attachment.attr("ip"))
    Output(stack, "pg_private_cidr", value=network.attr("ip_range"))
    app.synth()
    folder = tmp_path / "out/stacks/staging"
    tofu = Tofu()
    assert tofu.init(folder).returncode == 0
    run = subprocess.run([tofu.binary, "test", "-json", "-verbose"], cwd=folder, env=tofu.env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    states = [json.loads(line) for line in run.stdout.splitlines()
              if '"test_state"' in line]
    outputs = states[-1]["test_state"]["values"]["outputs"]
    ip = outputs["pg_primary_private_ip"]["value"]
    assert ip == "10.0.1.5"

    result = edgekit("outputs", "import", "--stack", "staging", stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    export = json.loads((project / "cue/export/staging.json").read_text())
    assert export["env"]["observed"]["pg_primary_private_ip"]["value"] == ip
    # Services reach the primary on the WireGuard mesh (ADR 0010): its mesh address comes
    # from CUE; the imported private address is what Postgres also listens on.
    api = json.loads((project / "services/api/edgekit.json").read_text())
    assert api["envs"]["staging"]["postgres_host"] == "10.100.0.1"
    assert api["envs"]["prod"]["postgres_host"] == "10.100.0.1"
    postgres = json.loads((project / "nix/postgresql/staging.json").read_text())
    assert postgres["settings"]["listen_addresses"] == "10.100.0.1"
    mesh = json.loads((project / "nix/mesh/staging.json").read_text())
    assert mesh["nodes"]["staging-1"]["postgres"]["listen"] == ["10.100.0.1", ip]
    prod_mesh = json.loads((project / "nix/mesh/prod.json").read_text())
    assert prod_mesh["nodes"]["pg-tokyo"]["postgres"]["listen"] == ["10.100.0.1"]
    assert edgekit("check", "--generated").returncode == 0


def test_cdktf_entry_point_reports_stale_exports_without_a_traceback(project: Path) -> None:
    edit(project / "cue/services.cue", "port: 8080", "port: 8090")
    env = {**os.environ, "EDGEKIT_SCHEMA_DIR": str(project / "schema"),
           "EDGEKIT_CUE": str(project / "no-cue-here"), "CDKTF_OUTDIR": str(project / "out")}
    result = subprocess.run([sys.executable, "-m", "stacks"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("edgekit: the CUE exports are stale against cue/")
    assert "Traceback" not in result.stderr
    assert not (project / "out").exists()
