"""The operations on stacks with local state, with the real `tofu` and the real `random`
provider: the state survives a synth (it used to live in the stack folder synth
replaces), `--app X` plans from the manifest X just wrote, tofu's own warnings reach the
user instead of breaking what edgekit parses, and a manifest that is not what synth writes
is a located error — never a traceback, never a path outside the output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.cli import main
from tests.conftest import default_ctrl_c
from tools.toolpaths import plugin_dir, tofu_bin

APP = '''
from edgekit import App, LocalState, Resource, Stack

app = App(outdir="{outdir}")
for name in {names!r}:
    stack = Stack(app, name, state=LocalState())
    Resource(stack, "id", type="random_id", config={{"byte_length": 4}})
app.synth()
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # a scratch project, never the checkout
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("EDGEKIT_TOFU", tofu_bin())
    monkeypatch.setenv("EDGEKIT_PLUGIN_DIR", plugin_dir())
    monkeypatch.setenv("TF_VAR_state_passphrase", "local-test-passphrase-0123")
    monkeypatch.delenv("CDKTF_OUTDIR", raising=False)
    (tmp_path / "my_app.py").write_text(APP.format(outdir="cdktf.out", names=["local"]))
    return tmp_path


def edgekit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code, out, err = edgekit(capsys, "plan", "--app", "my_app.py", "--json", *args)
    assert out, err
    return code, json.loads(out)


@pytest.mark.tools
def test_local_state_survives_synth_plan_apply_synth_plan(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = plan(capsys)
    assert code == 2, doc
    code, _, err = edgekit(capsys, "apply", "--app", "my_app.py", "--yes")
    assert code == 0, err
    state = project / ".edgekit/state/local/terraform.tfstate"
    assert state.is_file()
    assert not list((project / "cdktf.out").rglob("*.tfstate"))
    code, _, err = edgekit(capsys, "synth", "--app", "my_app.py")
    assert code == 0, err
    assert state.is_file()
    code, doc = plan(capsys)
    assert code == 0, doc  # nothing to create again: the state is where it was
    assert [s["status"] for s in doc["stacks"]] == ["no-changes"]  # type: ignore[attr-defined]


@pytest.mark.tools
def test_app_x_plans_from_the_manifest_it_just_wrote(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An older cdktf.out (another app's stacks) must not be what `plan --app X` reads."""
    (project / "old.py").write_text(APP.format(outdir="cdktf.out", names=["old"]))
    assert edgekit(capsys, "synth", "--app", "old.py")[0] == 0
    (project / "my_app.py").write_text(APP.format(outdir="build", names=["mine"]))
    code, doc = plan(capsys)
    assert code == 2, doc
    assert [s["stack"] for s in doc["stacks"]] == ["mine"]  # type: ignore[attr-defined]
    assert (project / "build/stacks/mine/cdk.tf.json").is_file()
    assert json.loads((project / "cdktf.out/manifest.json").read_text())["stacks"].keys() \
        == {"old"}
    code, _, err = edgekit(capsys, "apply", "--app", "my_app.py", "--yes")
    assert code == 0, err
    assert "applied: mine" in err


@pytest.mark.tools
def test_a_missing_cli_config_file_is_reported_not_fatal(
        project: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """tofu prints this warning on stdout, before `show -json`'s document."""
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(project / "missing.tfrc"))
    code, out, err = edgekit(capsys, "plan", "--app", "my_app.py", "--json")
    assert code == 2, err
    assert json.loads(out)["stacks"][0]["add"] == 1
    assert "printed no JSON" not in err
    assert "tofu said (stack 'local')" in err
    said = " ".join(err.split())  # tofu wraps its lines
    assert f'The CLI configuration file at "{project / "missing.tfrc"}" does not exist' in said
    assert err.count("tofu said") == 1  # once, not per stack and step


MANIFESTS = {
    "a list": ([], "expected an object with 'stacks', got a list @ $"),
    "no stacks": ({}, "expected an object (stack name → stack), got null @ $.stacks"),
    "stacks a list": ({"stacks": ["a"]}, "got a list @ $.stacks"),
    "stacks a string": ({"stacks": "a"}, "got a string @ $.stacks"),
    "a null stack": ({"stacks": {"a": None}}, 'expected an object (the stack), got null '
                     '@ $.stacks["a"]'),
    "a stack a list": ({"stacks": {"a": []}}, 'got a list @ $.stacks["a"]'),
    "depends on itself": ({"stacks": {"a": {"dependencies": ["a"]}}},
                          "stack 'a' depends on itself @ $.stacks[\"a\"].dependencies[0]"),
    "dependencies a string": ({"stacks": {"a": {"dependencies": "b"}}},
                              'expected a list of stack names, got a string @ '
                              '$.stacks["a"].dependencies'),
    "a number dependency": ({"stacks": {"a": {"dependencies": [3]}}},
                            "got 3 @ $.stacks[\"a\"].dependencies[0]"),
    "an unknown dependency": ({"stacks": {"a": {"dependencies": ["zz"]}}},
                              'got "zz" @ $.stacks["a"].dependencies[0]'),
    "a cycle": ({"stacks": {"a": {"dependencies": ["b"]}, "b": {"dependencies": ["a"]}}},
                "stacks depend on each other in a cycle: a, b @ $.stacks"),
    "a path for a name": ({"stacks": {"../../../x": {}}},
                          "invalid stack name '../../../x'"),
}


@pytest.mark.parametrize("command", ["graph", "plan", "apply", "drift"])
@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_a_manifest_that_is_not_what_synth_writes_is_a_located_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        command: str, case: str) -> None:
    project = tmp_path / "project"
    (project / "cdktf.out/stacks/a").mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("EDGEKIT_TOFU", str(tmp_path / "no-tofu-may-run"))
    data, message = MANIFESTS[case]
    (project / "cdktf.out/manifest.json").write_text(json.dumps(data))
    code, out, err = edgekit(capsys, command, "--no-synth")
    assert code == 1, err
    assert f"{project / 'cdktf.out/manifest.json'}: " in err
    assert message in err, err
    assert "Traceback" not in err and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # nothing outside
    assert not (project / ".edgekit").exists()  # no tofu init anywhere


SLOW_APP = '''
from edgekit import App, LocalState, Resource, Stack

app = App(outdir="cdktf.out")
stack = Stack(app, "slow", state=LocalState())
a = Resource(stack, "a", type="terraform_data", config={{"input": "made first"}})
b = Resource(stack, "b", type="terraform_data", config={{"input": a.attr("id")}})
b.override("provisioner", [{{"local-exec": {{"command": "touch {marker} && sleep 60"}}}}])
app.synth()
'''


@pytest.mark.tools
def test_ctrl_c_during_apply_lets_tofu_write_its_state_and_release_its_lock(
        project: Path) -> None:
    """Interrupted while `tofu apply` runs (a slow create), edgekit passes the interrupt
    on and waits: tofu writes what it created to its state and releases its lock, so a run
    after it neither creates that again nor waits on a lock (`subprocess.run` used to kill
    tofu 0.25 s after the KeyboardInterrupt, leaving both behind)."""
    marker = project / "b-is-being-created"
    (project / "slow.py").write_text(SLOW_APP.format(marker=marker))
    env = {**os.environ, "NO_COLOR": "1"}
    edgekit_cli = [sys.executable, "-m", "edgekit.cli"]
    done = subprocess.run([*edgekit_cli, "plan", "--app", "slow.py"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    apply = subprocess.Popen([*edgekit_cli, "apply", "--app", "slow.py", "--yes"],
                             cwd=project, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c)
    deadline = time.monotonic() + 120
    while not marker.exists() and apply.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), apply.communicate(timeout=60)
    apply.send_signal(signal.SIGINT)  # what Ctrl-C sends edgekit
    _, err = apply.communicate(timeout=120)
    assert apply.returncode == 130, err
    state_dir = project / ".edgekit/state/slow"
    assert not (state_dir / ".terraform.tfstate.lock.info").exists(), err
    done = subprocess.run([*edgekit_cli, "plan", "--app", "slow.py", "--json"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)
    (summary,) = json.loads(done.stdout)["stacks"]
    # `a` is in the state: only the interrupted `b` is still to make
    assert summary["add"] + summary["replace"] == 1, (summary, done.stderr)
    assert "waiting for tofu to stop cleanly" in err  # and the operator was told why
