"""Where the app comes from (ADR 0027): ``--app`` (before or after the command) or
``cdktf.json`` names a module with ``make_app()``, ``module:function``, a file
``path/app.py`` (a program ending in ``app.synth()``, or defining ``make_app``) or
``path/app.py:function``; the README's first example works as written; and a program run
with ``python my_app.py`` reports every stack's problems without a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

SMALL = '''
from edgekit import App, LocalState, Resource, Stack


def build(outdir=None):
    app = App(outdir=outdir)
    stack = Stack(app, "{name}", state=LocalState(), encryption=None)
    Resource(stack, "marker", type="terraform_data", config={{"input": "{name}"}})
    return app
'''


def run(folder: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """`edgekit ARGS` in `folder`, a fresh process (as a user runs it)."""
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], cwd=folder,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def readme_first_example() -> str:
    """The README's first python block: the user's own app, as the README shows it."""
    match = next(m for m in FENCE.finditer((ROOT / "README.md").read_text())
                 if m.group(1) == "python")
    return match.group(2)


def stacks_of(out: Path) -> list[str]:
    return sorted(json.loads((out / "manifest.json").read_text())["stacks"])


def test_the_readme_example_app_works_as_written(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(readme_first_example())
    synth = run(tmp_path, "synth", "--app", "my_app.py")
    assert synth.returncode == 0, synth.stderr
    assert "synthesized edge" in synth.stderr
    assert stacks_of(tmp_path / "cdktf.out") == ["edge"]
    check = run(tmp_path, "check", "--app", "my_app.py")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 error(s)" in check.stdout
    # plain Python writes the same files
    plain = subprocess.run([sys.executable, "my_app.py"], cwd=tmp_path, capture_output=True,
                           text=True, env={**os.environ, "CDKTF_OUTDIR": "plain.out"})
    assert plain.returncode == 0, plain.stderr
    ours = tmp_path / "cdktf.out/stacks/edge/cdk.tf.json"
    assert (tmp_path / "plain.out/stacks/edge/cdk.tf.json").read_bytes() == ours.read_bytes()


def test_the_app_registered_in_cdktf_json_is_what_plain_synth_runs(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(readme_first_example())
    (tmp_path / "cdktf.json").write_text(json.dumps({"language": "python",
                                                    "app": "python my_app.py"}))
    done = run(tmp_path, "synth")
    assert done.returncode == 0, done.stderr
    assert stacks_of(tmp_path / "cdktf.out") == ["edge"]
    listed = run(tmp_path, "stacks")
    assert listed.stdout.split() == ["edge"]


@pytest.mark.parametrize("spec", ["apps/small.py:build", "small_mod:build",
                                  f"{'{tmp}'}/apps/small.py:build"])
def test_app_as_module_function_or_file_function(tmp_path: Path, spec: str) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps/small.py").write_text(SMALL.format(name="small"))
    (tmp_path / "small_mod.py").write_text(SMALL.format(name="small"))
    done = run(tmp_path, "--app", spec.replace("{tmp}", str(tmp_path)), "synth")
    assert done.returncode == 0, done.stderr
    assert stacks_of(tmp_path / "cdktf.out") == ["small"]


def test_a_file_defining_make_app_and_the_out_option(tmp_path: Path) -> None:
    (tmp_path / "factory.py").write_text(SMALL.format(name="f") + "\nmake_app = build\n")
    done = run(tmp_path, "synth", "--app", "factory.py", "--out", "elsewhere")
    assert done.returncode == 0, done.stderr
    assert stacks_of(tmp_path / "elsewhere") == ["f"]
    assert not (tmp_path / "cdktf.out").exists()


@pytest.mark.parametrize(("spec", "message"), [
    ("missing.py", "no file"),
    ("nothing.py", "neither calls app.synth() nor defines make_app()"),
    ("nothing.py:nope", "has no nope() function"),
    ("small_mod:nope", "module 'small_mod' has no nope() function"),
    ("small_mod:no-pe", "is not a function name"),
    ("not_a_module_here", "cannot import app module 'not_a_module_here'"),
    ("wrong.py", "gave int, not an edgekit App"),
])
def test_a_wrong_app_is_a_usage_error(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "nothing.py").write_text("x = 1\n")
    (tmp_path / "small_mod.py").write_text(SMALL.format(name="small"))
    (tmp_path / "wrong.py").write_text("def make_app():\n    return 3\n")
    done = run(tmp_path, "synth", "--app", spec)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cdktf.out").exists()


def test_no_cdktf_json_and_no_app_says_how_to_name_one(tmp_path: Path) -> None:
    done = run(tmp_path, "synth")
    assert done.returncode == 2
    assert "no cdktf.json" in done.stderr and "--app path/app.py" in done.stderr


TWO_BROKEN = '''
from edgekit import App, LocalState, Resource, Stack

app = App()
a = Stack(app, "a", state=LocalState())
Resource(a, "x", type="hcloud_server",
         config={"name": "x", "server_typ": "cx23", "image": "debian-12"})
b = Stack(app, "b", state=LocalState())
Resource(b, "fw", type="hcloud_firewall", config={"name": "fw", "rule": [
    {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0"]}]})
app.synth()
print("not reached")
'''


def test_python_my_app_reports_every_stacks_problems_without_a_traceback(
        tmp_path: Path) -> None:
    """Stack a's schema problem used to hide stack b's rule error, behind a traceback."""
    (tmp_path / "my_app.py").write_text(TWO_BROKEN)
    done = subprocess.run([sys.executable, "my_app.py"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "edgekit: synth found 3 problems; nothing was written" in done.stderr
    assert "[a/x] hcloud_server.x: unknown attribute 'server_typ'" in done.stderr
    assert "[b/fw] hcloud_firewall.fw: EK101 inbound traffic allowed from 0.0.0.0/0" \
        in done.stderr
    assert "not reached" not in done.stdout
    assert not (tmp_path / "cdktf.out").exists()
    # the same problems through the command
    via = run(tmp_path, "synth", "--app", "my_app.py")
    assert via.returncode == 1 and "synth found 3 problems" in via.stderr


def test_python_my_app_with_a_construct_error_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(
        "from edgekit import App, LocalState, Stack\napp = App()\n"
        "Stack(app, 'a', state=LocalState())\nStack(app, 'a', state=LocalState())\n"
        "app.synth()\n")
    done = subprocess.run([sys.executable, "my_app.py"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("edgekit: ") and "Traceback" not in done.stderr
    assert "'a'" in done.stderr


def test_other_exceptions_keep_their_traceback(tmp_path: Path) -> None:
    """Only edgekit's own errors are reports; a bug in the program stays a traceback."""
    (tmp_path / "my_app.py").write_text("from edgekit import App\napp = App()\n1 / 0\n")
    done = subprocess.run([sys.executable, "my_app.py"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 1 and "ZeroDivisionError" in done.stderr
    assert "Traceback" in done.stderr
