"""A command not asked to write changes no tracked file and no mtime: with stale CUE
exports the commands that only read the estate say so and exit non-zero (they used to
re-export and regenerate up to 19 tracked files); an `outputs import` that imports
nothing changes nothing; an environment without nodes is named. Real `cue`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tools.toolpaths import cue_bin

pytestmark = pytest.mark.tools


def stat_tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file below `root` with its mtime (ns) and bytes."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture
def stale(project_copy: Path) -> Path:
    """The project with cue/ changed after its last export (a comment is enough)."""
    services = project_copy / "cue/services.cue"
    services.write_text(services.read_text() + "\n// changed after the last export\n")
    return project_copy


READERS = [
    (("pg", "backups", "--stack", "prod"), None),
    (("pg", "restore", "--stack", "prod", "--to", "2026-11-30T12:00:00Z"), None),
    (("pg", "bootstrap", "--stack", "prod"), "{}"),
    (("mesh", "import-keys", "--stack", "prod", "--bucket", "b", "--endpoint",
      "http://127.0.0.1:9"), None),
    (("pg", "import-ca", "--stack", "prod", "--bucket", "b", "--endpoint",
      "http://127.0.0.1:9"), None),
    (("logs", "sync", "--stack", "prod", "--dest", "/nonexistent/logs"), None),
    # status, deploy and rollback worked from the stale nodes and waves without a word
    (("status", "--stack", "prod"), None),
    (("deploy", "prod", "HEAD", "--endpoint", "http://127.0.0.1:9"), None),
    (("rollback", "prod", "--endpoint", "http://127.0.0.1:9"), None),
]


@pytest.mark.parametrize(("args", "stdin"), READERS, ids=lambda v: " ".join(v or ())[:30])
def test_readers_refuse_stale_exports_and_change_nothing(
        stale: Path, cli: RunCli, args: tuple[str, ...], stdin: str | None) -> None:
    before = stat_tree(stale)
    done = cli(*args, stdin=stdin, env={"EDGEKIT_CUE": cue_bin(), "AWS_ACCESS_KEY_ID": "k",
                                        "AWS_SECRET_ACCESS_KEY": "s"})
    assert done.returncode == 1, done.stderr
    assert "the CUE exports are stale against cue/" in done.stderr
    assert "this command only reads them and changed nothing" in done.stderr
    assert "Traceback" not in done.stderr
    assert stat_tree(stale) == before


def test_commands_that_only_build_the_app_write_nothing(stale: Path, cli: RunCli) -> None:
    before = stat_tree(stale)
    assert cli("stacks", env={"EDGEKIT_CUE": cue_bin()}).returncode == 0
    assert cli("check", env={"EDGEKIT_CUE": cue_bin()}).returncode == 0
    assert stat_tree(stale) == before


SENSITIVE_ONLY = {"pg_password": {"sensitive": True, "type": "string", "value": "hunter2-x"}}


def test_outputs_import_of_only_a_sensitive_output_changes_nothing(project_copy: Path,
                                                                   cli: RunCli) -> None:
    """It refused the output (as documented) but re-rendered and re-exported 19 files."""
    before = stat_tree(project_copy)
    env = {"EDGEKIT_CUE": cue_bin()}
    refused = cli("outputs", "import", "--stack", "staging",
                  stdin=json.dumps(SENSITIVE_ONLY), env=env)
    assert refused.returncode == 1, refused.stderr
    assert "refused sensitive output 'pg_password'" in refused.stderr
    assert stat_tree(project_copy) == before
    skipped = cli("outputs", "import", "--stack", "staging", "--skip-sensitive",
                  stdin=json.dumps(SENSITIVE_ONLY), env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped sensitive output 'pg_password'" in skipped.stderr
    assert "nothing new to import" in skipped.stderr
    assert stat_tree(project_copy) == before


def test_an_environment_without_nodes_is_named(project_copy: Path, cli: RunCli) -> None:
    envs = project_copy / "cue/envs.cue"
    text = envs.read_text()
    node = '\tnodes: "staging-1": {provider: "hetzner", region: "nbg1", size: "cx33", ' \
        'roles: ["edge", "postgres"], mesh_host: 1}\n\tplacement: "staging-1": ["api", "web"]\n'
    assert node in text
    envs.write_text(text.replace(node, "\tnodes: {}\n\tplacement: {}\n"))
    before = stat_tree(project_copy)
    done = cli("synth", env={"EDGEKIT_CUE": cue_bin()})
    assert done.returncode == 1
    assert ("environment staging has no nodes: add at least one under envs.staging.nodes"
            in done.stderr), done.stderr
    assert stat_tree(project_copy) == before


def test_schemas_never_exported_are_a_message_not_a_traceback(project_copy: Path,
                                                              cli: RunCli) -> None:
    """Where the project's JSON Schemas were never exported (edgekit installed apart from a
    project whose cue/export/schema is missing), building the app raised a KeyError."""
    missing = project_copy / "no-schemas"
    missing.mkdir()
    before = stat_tree(project_copy)
    done = cli("stacks", env={"EDGEKIT_SCHEMA_DIR": str(missing)})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert (f"edgekit: no exported JSON Schema for #Service in {missing} (exported there: "
            "none); run `edgekit cue export`") in done.stderr, done.stderr
    assert stat_tree(project_copy) == before
