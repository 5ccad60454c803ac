"""The `edgekit` command, driven through its entry point and as a real subprocess, in a
copy of the project (tests never write into the checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli import build_parser, command_of, main
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def in_project_copy(project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project_copy)
    monkeypatch.setenv("EDGEKIT_SCHEMA_DIR", str(project_copy / "schema"))


def test_synth_writes_the_cdktf_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    out = tmp_path / "cdktf.out"
    assert main(["synth", "--out", str(out)]) == 0
    assert (out / "manifest.json").is_file()
    assert (out / "stacks/example/cdk.tf.json").is_file()
    assert (out / "stacks/example/edgekit.tftest.json").is_file()
    err = capsys.readouterr().err
    assert "synthesized example" in err and str(out) in err


def test_unknown_stack_is_an_error_listing_the_stacks(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert main(["synth", "nope", "--out", str(tmp_path / "o")]) == 1
    assert ("no stack named 'nope' (stacks: example, bootstrap, zone, prod, staging)"
            in capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_bad_app_module_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--app", "no_such_module_here", "stacks"]) == 2
    assert "cannot import app module 'no_such_module_here'" in capsys.readouterr().err


def test_stacks_lists_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stacks"]) == 0
    assert capsys.readouterr().out.split() == ["example", "bootstrap", "zone", "prod", "staging"]


def test_help_explains_the_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "edgekit.cli", "synth", "--help"],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    assert "Nothing is written if any stack has a problem" in result.stdout
    assert "--no-schema-check" in result.stdout


def test_core_commands_start_without_the_ops_logs_and_pg_commands() -> None:
    """`edgekit synth` (and the other commands of cli.py) neither import nor register the
    ops, logs, mesh and pg commands; the full command line still lists all of them."""
    assert [command_of(a) for a in (["synth"], ["--app", "stacks", "check", "--list"],
                                    ["--app=x", "plan", "prod"], ["--version"], [])] == \
        ["synth", "check", "plan", None, None]
    probe = ("import sys; from edgekit.cli import build_parser; build_parser('synth'); "
             "print(sorted(m for m in sys.modules if m.split('.')[1:2] in "
             "(['ops'], ['obs'], ['pg']) or m == 'edgekit.cue.mesh_cli'))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, check=True).stdout.strip()
    assert loaded == "[]"
    full = build_parser().format_help()
    assert all(name in full for name in ("synth", "plan", "logs", "mesh", "pg", "graph"))
    assert "logs" not in build_parser("synth").format_help()


def test_cdktf_entry_point_writes_the_same_bytes(tmp_path: Path, project_copy: Path) -> None:
    """`cdktf synth` runs `python -m stacks` with CDKTF_OUTDIR; it must match edgekit synth."""
    via_edgekit, via_cdktf = tmp_path / "edgekit", tmp_path / "cdktf"
    assert main(["synth", "--out", str(via_edgekit)]) == 0
    env = {**os.environ, "CDKTF_OUTDIR": str(via_cdktf)}
    subprocess.run([sys.executable, "-m", "stacks"], cwd=project_copy, env=env, check=True,
                   capture_output=True)
    files = sorted(p.relative_to(via_edgekit) for p in via_edgekit.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(via_cdktf) for p in via_cdktf.rglob("*") if p.is_file())
    for rel in files:
        assert (via_edgekit / rel).read_bytes() == (via_cdktf / rel).read_bytes(), rel
