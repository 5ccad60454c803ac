"""`edgekit plan | apply | drift | import` against the real `tofu`, the real random and
local providers and OpenTofu's built-in `terraform_data`, with the S3 backend on a local
SeaweedFS that checks signatures, and encrypted state read across stacks through real
remote state."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgekit.cli import main
from edgekit.obs.testing import SeaweedS3
from edgekit.ops.secrets import operator_env
from edgekit.ops.tofu import Tofu, Workspace
from tools.toolpaths import plugin_dir, tofu_bin

PASSPHRASE = "ops-test-passphrase-0123456789"

APP = '''
import os
from edgekit import App, Output, Resource, S3State, Stack


def make_app(outdir=None):
    app = App(outdir=outdir)
    state = S3State(endpoint=os.environ["OPS_S3"], bucket=os.environ["OPS_BUCKET"])
    # declared consumer first: the order comes from the reference, not from here
    app_stack = Stack(app, "app", state=state)
    net = Stack(app, "net", state=state)
    rid = Resource(net, "id", type="random_id",
                   config={"byte_length": 4, "keepers": {"gen": os.environ.get("OPS_GEN", "1")}})
    Resource(net, "marker", type="terraform_data", config={"input": "v1"})
    Output(net, "region", value="eu-test")
    Resource(app_stack, "use", type="terraform_data",
             config={"input": [rid.attr("hex"), net.output("region")]})
    Output(app_stack, "seen", value=rid.attr("hex"))
    if os.environ.get("OPS_FILE"):
        Resource(net, "page", type="local_file",
                 config={"filename": os.environ["OPS_FILE"], "content": "served v1\\n"})
    if os.environ.get("OPS_IMPORT"):
        Resource(net, "adopted", type="random_id", config={"byte_length": 4},
                 import_id=os.environ["OPS_IMPORT"])
    return app
'''


@pytest.fixture
def project(s3: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bucket = f"state-{tmp_path.name.lower().replace('_', '-')[-40:]}".rstrip("-")
    s3.client().create_bucket(Bucket=bucket)
    module = f"opsapp_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{module}.py").write_text(APP)
    (tmp_path / "cdktf.json").write_text(json.dumps({"app": f"python -m {module}"}))
    (tmp_path / "secrets.env").write_text(
        f"AWS_ACCESS_KEY_ID={s3.access_key}\n"
        f"export AWS_SECRET_ACCESS_KEY='{s3.secret_key}'\n"
        f"TF_VAR_state_passphrase={PASSPHRASE}  # comment\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPS_S3", s3.endpoint)
    monkeypatch.setenv("OPS_BUCKET", bucket)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("EDGEKIT_TOFU", tofu_bin())
    monkeypatch.setenv("EDGEKIT_PLUGIN_DIR", plugin_dir())
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TF_VAR_state_passphrase",
                "NO_COLOR", "OPS_IMPORT", "OPS_FILE"):
        monkeypatch.delenv(key, raising=False)
    yield tmp_path
    sys.modules.pop(module, None)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys: pytest.CaptureFixture[str], *stacks: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "plan", *stacks, "--json", "--env-file", "secrets.env")
    return code, json.loads(out)


def stack_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in document["stacks"] if s["stack"] == name]
    assert len(found) == 1, document
    return found[0]


def tofu_for(project: Path) -> Tofu:
    env, secrets = operator_env(project / "secrets.env")
    return Tofu(Workspace(project, project / "cdktf.out"), env, binary=tofu_bin(),
                plugin_dir=plugin_dir(), secrets=secrets)


@pytest.mark.tools
def test_plan_apply_replan_and_cross_stack_reference(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the producer first: the consumer cannot plan before net has state
    code, doc = plan_json(capsys, "net")
    assert code == 2, doc
    net = stack_of(doc, "net")
    assert (net["status"], net["add"], net["destroy"]) == ("changes", 2, 0)
    assert doc["exit_code"] == 2 and doc["command"] == "plan"
    code, _, err = run(capsys, "apply", "net", "--env-file", "secrets.env")
    assert code == 0, err
    assert "applied: net" in err

    code, doc = plan_json(capsys)  # every stack, in dependency order
    assert code == 2, doc
    assert [s["stack"] for s in doc["stacks"]] == ["net", "app"]
    assert stack_of(doc, "net")["status"] == "no-changes"
    assert stack_of(doc, "app")["add"] == 1
    code, _, err = run(capsys, "apply", "--env-file", "secrets.env")
    assert code == 0, err
    assert "applied: app; unchanged: net" in err

    code, doc = plan_json(capsys)
    assert code == 0, doc
    assert {s["status"] for s in doc["stacks"]} == {"no-changes"}

    # the consumer saw the producer's value through real, encrypted remote state
    tofu = tofu_for(project)
    outputs = json.loads(tofu.run("app", "output", "-json", check=True).stdout)
    produced = json.loads(tofu.run("net", "output", "-json", check=True).stdout)
    assert outputs["seen"]["value"] == produced["xref_random_id_id_hex"]["value"]
    assert len(outputs["seen"]["value"]) == 8
    # the state in the bucket is encrypted: the hex never appears in plain text
    body = _object(project, "net/terraform.tfstate")
    assert outputs["seen"]["value"].encode() not in body
    assert b"encrypted_data" in body


def _object(project: Path, key: str) -> bytes:
    import boto3

    env, _ = operator_env(project / "secrets.env")
    client = boto3.client("s3", endpoint_url=os.environ["OPS_S3"], region_name="us-east-1",
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    data: bytes = client.get_object(Bucket=os.environ["OPS_BUCKET"], Key=key)["Body"].read()
    return data


@pytest.mark.tools
def test_replace_is_listed_asked_for_and_a_stale_plan_refused(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "plan", "net", "--env-file", "secrets.env")[0] == 2
    assert run(capsys, "apply", "net", "--env-file", "secrets.env")[0] == 0
    monkeypatch.setenv("OPS_GEN", "2")  # a new keeper forces a replacement
    code, out, _ = run(capsys, "plan", "net", "--env-file", "secrets.env",
                       "--markdown", "plan.md")
    assert code == 2
    assert "net: 0 to add, 0 to change, 1 to replace, 0 to destroy" in out
    assert "-/+ random_id.id (replace)" in out
    assert "\x1b[" not in out  # not a terminal: no colour
    md = Path("plan.md").read_text()
    assert "| `net` | **replace/destroy** | 0 | 0 | 1 | 0 |" in md
    assert "| `net` | `random_id.id` | replace |" in md
    # not a terminal and no --yes: refused, nothing applied
    code, _, err = run(capsys, "apply", "net", "--env-file", "secrets.env")
    assert code == 1
    assert "not confirmed: 'net' would replace or destroy" in err
    assert "applied: none" in err
    # a re-synth that changes the stack makes the saved plan stale
    monkeypatch.setenv("OPS_GEN", "3")
    assert main(["synth"]) == 0
    code, _, err = run(capsys, "apply", "net", "--yes", "--env-file", "secrets.env")
    assert code == 1
    assert "the saved plan of 'net' is stale" in err


@pytest.mark.tools
def test_fresh_estate_plans_every_stack_and_consumers_wait_for_their_producers(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = plan_json(capsys)  # nothing applied yet: app cannot read net's state
    assert code == 2, doc
    assert stack_of(doc, "net")["add"] == 2
    app = stack_of(doc, "app")
    assert (app["status"], app["waits_for"]) == ("waiting", ["net"])
    code, out, _ = run(capsys, "plan", "--env-file", "secrets.env", "--markdown", "p.md")
    assert "app: waits for net (reads its state): planned again after `edgekit apply` " \
        "applies net" in out
    assert "| `app` | waits for net |" in Path("p.md").read_text()
    code, _, err = run(capsys, "apply", "--env-file", "secrets.env")
    assert code == 0, err
    assert "applied: net" in err
    assert "app (and the stacks after it) waited for these: run `edgekit plan` and " \
        "`edgekit apply` again" in err
    code, doc = plan_json(capsys)
    assert code == 2 and stack_of(doc, "app")["add"] == 1
    assert stack_of(doc, "net")["status"] == "no-changes"
    code, _, err = run(capsys, "apply", "--env-file", "secrets.env")
    assert code == 0 and "applied: app; unchanged: net" in err
    assert plan_json(capsys)[0] == 0


@pytest.mark.tools
def test_plan_made_before_a_dependency_was_applied_is_refused_and_init_is_cached(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for stack in ("net", "app"):
        assert run(capsys, "plan", stack, "--env-file", "secrets.env")[0] == 2
        assert run(capsys, "apply", stack, "--env-file", "secrets.env")[0] == 0
    monkeypatch.setenv("OPS_GEN", "2")  # net's value changes: app must follow
    code, doc = plan_json(capsys, "net")
    assert code == 2 and stack_of(doc, "net")["replace"] == 1
    code, doc = plan_json(capsys, "app")  # planned on its own: net's old value
    assert code == 0
    code, _, err = run(capsys, "apply", "--yes", "--env-file", "secrets.env")
    assert code == 1
    assert "the plan of 'app' was made before net was applied; run `edgekit plan` again" in err
    assert "applied: net" in err
    code, doc = plan_json(capsys, "app")  # re-planned: reads net's new value
    assert code == 2
    assert run(capsys, "apply", "app", "--env-file", "secrets.env")[0] == 0
    tofu = tofu_for(project)
    assert tofu.init("net") is False  # the same terraform block: no second init
    assert (project / ".edgekit/tofu/net/edgekit-init.stamp").is_file()
    seen = json.loads(tofu.run("app", "output", "-json", check=True).stdout)["seen"]["value"]
    produced = json.loads(tofu.run("net", "output", "-json", check=True).stdout)
    assert seen == produced["xref_random_id_id_hex"]["value"]


@pytest.mark.tools
def test_drift_sees_a_producer_changed_behind_the_consumers_back(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of band for `app`: net is replaced by another run; app's refresh reads the new
    value through real remote state and reports its output as no longer current."""
    for stack in ("net", "app"):
        assert run(capsys, "plan", stack, "--env-file", "secrets.env")[0] == 2
        assert run(capsys, "apply", stack, "--env-file", "secrets.env")[0] == 0
    code, out, _ = run(capsys, "drift", "--json", "--env-file", "secrets.env")
    assert code == 0, out
    monkeypatch.setenv("OPS_GEN", "2")
    assert run(capsys, "plan", "net", "--env-file", "secrets.env")[0] == 2
    assert run(capsys, "apply", "net", "--yes", "--env-file", "secrets.env")[0] == 0
    code, out, _ = run(capsys, "drift", "app", "--json", "--env-file", "secrets.env",
                       "--markdown", "drift.md")
    assert code == 2, out
    app = stack_of(json.loads(out), "app")
    assert app["status"] == "drift" and app["outputs_changed"] == ["seen"]
    assert "| `app` | **drift** |" in Path("drift.md").read_text()
    code, out, _ = run(capsys, "drift", "app", "--env-file", "secrets.env")
    assert code == 2
    assert "app: 0 changed outside OpenTofu\n  outputs no longer current: seen" in out


@pytest.mark.tools
def test_drift_sees_a_local_file_edited_on_disk_out_of_band(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real resource changed outside OpenTofu: the `local` provider's refresh finds the
    file's content no longer what it wrote and drops it from state; drift names it."""
    page = project / "site" / "index.txt"
    monkeypatch.setenv("OPS_FILE", str(page))
    code, doc = plan_json(capsys, "net")
    assert code == 2 and stack_of(doc, "net")["add"] == 3, doc
    assert run(capsys, "apply", "net", "--env-file", "secrets.env")[0] == 0
    assert page.read_text() == "served v1\n"
    assert plan_json(capsys, "net")[0] == 0
    code, out, _ = run(capsys, "drift", "net", "--json", "--env-file", "secrets.env")
    assert code == 0 and stack_of(json.loads(out), "net")["status"] == "no-changes", out

    page.write_text("edited by hand\n")  # out of band: not through OpenTofu
    code, out, _ = run(capsys, "drift", "net", "--json", "--env-file", "secrets.env")
    assert code == 2, out
    net = stack_of(json.loads(out), "net")
    assert net["status"] == "drift"
    assert net["drifted"] == [{"address": "local_file.page", "drift": "deleted"}]
    code, out, _ = run(capsys, "drift", "net", "--env-file", "secrets.env")
    assert code == 2
    assert "net: 1 changed outside OpenTofu\n  ~ local_file.page (deleted)" in out
    # drift only reports: the state and the file stay as they were
    assert page.read_text() == "edited by hand\n"
    # plan and apply put the file back
    code, doc = plan_json(capsys, "net")
    assert code == 2 and stack_of(doc, "net")["add"] == 1, doc
    assert run(capsys, "apply", "net", "--env-file", "secrets.env")[0] == 0
    assert page.read_text() == "served v1\n"
    code, out, _ = run(capsys, "drift", "net", "--json", "--env-file", "secrets.env")
    assert code == 0, out


@pytest.mark.tools
def test_import_block_adopts_an_existing_object_and_import_prints_the_call(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # random_id's import id is the base64url of its bytes: q83vEg is 0xabcdef12
    code, out, err = run(capsys, "import", "--stack", "net", "--type", "random_id",
                         "--id", "q83vEg", "--name", "adopted", "--env-file", "secrets.env")
    assert code == 0, err
    assert out.strip() == ("Resource(self, 'adopted', type='random_id', config={\n"
                           "    'byte_length': 4,\n}, import_id='q83vEg')")
    monkeypatch.setenv("OPS_IMPORT", "q83vEg")
    code, doc = plan_json(capsys, "net")
    assert code == 2
    assert stack_of(doc, "net")["import"] == 1
    assert run(capsys, "apply", "net", "--env-file", "secrets.env")[0] == 0
    state = json.loads(tofu_for(project).run("net", "show", "-json", check=True).stdout)
    (adopted,) = [r for r in state["values"]["root_module"]["resources"]
                  if r["address"] == "random_id.adopted"]
    assert adopted["values"]["hex"] == "abcdef12"


@pytest.mark.tools
def test_missing_variables_are_named_before_tofu_runs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("partial.env").write_text("TF_VAR_state_passphrase=" + PASSPHRASE + "\n")
    code, out, err = run(capsys, "plan", "--env-file", "partial.env")
    assert code == 1
    assert "missing variables" in err
    assert "app: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in err
    assert PASSPHRASE not in err + out
    assert not (project / ".edgekit" / "tofu").exists()  # no tofu ran
