"""`edgekit up ENV` end to end: the real tofu and S3 backend (SeaweedFS), a real git remote,
the project's CUE, the nodes' real mesh-key unit, the primary's real TLS units and a real
PostgreSQL; the stacks' cloud resources and the nodes themselves are stood in for as
`tests/up_rig.py` describes.

One estate goes through what a team meets on a first apply: a dry run, a failing zone
apply, a wait that times out, a Ctrl-C while waiting, a re-run that finishes, a re-run with
nothing left to do, and a change that would replace something.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgekit.obs.testing import SeaweedS3
from tests.conftest import RunCli, default_ctrl_c
from tests.gitserver import GitServer, git_in, git_server  # noqa: F401 (fixture)
from tests.pg_server import throwaway_postgres
from tests.up_rig import (
    NODES,
    PRIMARY,
    NodeStandIn,
    make_project,
    read_lines,
    running,
    wireguard_config,
)
from tools.toolpaths import plugin_dir, tofu_bin

PASSPHRASE = "up-test-passphrase-0123456789"


@pytest.fixture
def s3(logs_s3: SeaweedS3) -> SeaweedS3:
    return logs_s3


@pytest.fixture
def estate(project_copy: Path, git_server: GitServer,  # noqa: F811
           s3: SeaweedS3) -> tuple[Path, str]:
    url = git_server.create("estate")
    make_project(project_copy, url)
    return project_copy, "estate"


def env_for(project: Path, s3: SeaweedS3, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TF_VAR_", "AWS_"))}
    return {**base, "EDGEKIT_SCHEMA_DIR": str(project / "schema"),
            "EDGEKIT_TOFU": tofu_bin(), "EDGEKIT_PLUGIN_DIR": str(plugin_dir()),
            "TF_CLI_CONFIG_FILE": os.devnull, "NO_COLOR": "1",
            "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "TF_VAR_state_passphrase": PASSPHRASE, "EDGEKIT_R2_ENDPOINT": s3.endpoint,
            "UP_S3": s3.endpoint, "UP_PYTHON": sys.executable,
            "UP_PG_FILE": str(project / "pg-address"),
            "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "op", "GIT_AUTHOR_EMAIL": "op@edgekit.invalid",
            "GIT_COMMITTER_NAME": "op", "GIT_COMMITTER_EMAIL": "op@edgekit.invalid", **extra}


UP = [sys.executable, "-m", "edgekit.cli", "--app", "upapp", "up", "prod",
      "--interval", "0.2"]
"""No --wait-for: the primary's status object is what `up` waits for by default."""


def up(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*UP, *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)


def steps(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(done.stdout)
    return {s["name"]: s for s in report["steps"]}


def exists(s3: SeaweedS3, bucket: str) -> bool:
    return any(b["Name"] == bucket for b in s3.client().list_buckets()["Buckets"])


@pytest.mark.tools
def test_up_from_nothing_is_rerunnable_and_never_replaces(
        estate: tuple[Path, str], git_server: GitServer, s3: SeaweedS3,  # noqa: F811
        tmp_path: Path) -> None:
    project, repo = estate
    env = env_for(project, s3)

    # --dry-run: plans what it can (the bootstrap), says the rest, creates nothing
    done = up(project, env, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = steps(done)
    assert plan["bootstrap"]["status"] == "planned"
    assert "bootstrap: would apply 1 to add" in plan["bootstrap"]["detail"]
    assert plan["account"]["status"] == "would" and plan["environment"]["status"] == "would"
    assert plan["wait-primary"]["status"] == "would"
    assert json.loads(done.stdout)["result"] == "dry-run"
    assert not exists(s3, "edgekit-state")
    assert git_server.ref(repo, "deploy/prod") is None

    # a zone apply that fails: exit 13 (step 3), the bucket made by step 2 stays
    done = up(project, {**env, "UP_ZONE_FAILS": "1"}, "--json")
    assert done.returncode == 13, done.stderr
    report = json.loads(done.stdout)
    assert (report["result"], report["failed_step"]) == ("failed", 3)
    assert "the zone API said no" in steps(done)["account"]["detail"]
    assert steps(done)["bootstrap"]["status"] == "done"
    assert exists(s3, "edgekit-state")
    assert "failed at step 3 (account)" in done.stderr
    bootstrap_state = project / ".edgekit/bootstrap/terraform.tfstate"
    assert b"encrypted_data" in bootstrap_state.read_bytes()  # local, still encrypted

    with contextlib.ExitStack() as servers:
        def start_postgres(authority: Path) -> tuple[str, int]:
            pg = servers.enter_context(throwaway_postgres("edgekit-up-", authority=authority))
            return "127.0.0.1", pg.port

        node = NodeStandIn(git_server, repo, s3, tmp_path / "nodes", project / "pg-address",
                           start_postgres)
        with running(node):
            # the primary never comes up: the wait times out (exit 3), nothing undone
            done = up(project, env, "--timeout", "3", "--json")
            assert done.returncode == 3, done.stderr + str(node.errors)
            report = steps(done)
            assert report["bootstrap"]["status"] == "skipped"  # the bucket exists now
            assert report["account"]["status"] == "done"
            assert report["deploy-ref"]["status"] == "done"
            assert report["environment"]["status"] == "done"
            assert report["outputs"]["status"] == "done"
            assert report["mesh-keys"]["status"] == "done"  # the nodes published them
            assert report["push"]["status"] == "done"
            assert report["wait-primary"]["status"] == "timed-out"
            assert "the primary pg-tokyo to report it runs" in \
                report["wait-primary"]["waited_for"]
            assert report["pg-tls-ca"]["status"] == "not-run"
            assert report["hyperdrive"]["status"] == "not-run"
            pushed = git_server.ref(repo, "deploy/prod")
            assert pushed == git_in(project, "rev-parse", "HEAD").stdout.strip()

            # Ctrl-C while it waits for the primary: exit 130, nothing undone or pushed twice
            proc = subprocess.Popen([*UP, "--timeout", "120", "--json"], cwd=project, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=default_ctrl_c)
            lines = read_lines(proc, "[9/11] wait-primary: waiting for", timeout=300)
            proc.send_signal(signal.SIGINT)
            out, rest = proc.communicate(timeout=120)
            assert proc.returncode == 130, "".join(lines) + rest
            interrupted = json.loads(out)
            assert (interrupted["result"], interrupted["failed_step"]) == ("interrupted", 9)
            assert "interrupted during step 9" in rest
            assert git_server.ref(repo, "deploy/prod") == pushed

            # again: the node switches once `up` waits for it; `up` then imports the
            # primary's authority, which its own unit published, and creates Hyperdrive
            # pinned to it (the stand-in connects verifying the server against it)
            assert not (project / "cue" / "outputs" / "prod.pg-tls.cue").exists()
            proc = subprocess.Popen([*UP, "--timeout", "120", "--json"], cwd=project, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=default_ctrl_c)
            lines = read_lines(proc, "[9/11] wait-primary: …", timeout=300)
            node.may_switch.set()
            out, rest = proc.communicate(timeout=300)
            err = "".join(lines) + rest
            assert proc.returncode == 0, err + str(node.errors)
            report = {s["name"]: s for s in json.loads(out)["steps"]}
            assert report["outputs"]["status"] == "unchanged"
            assert report["mesh-keys"]["status"] == "unchanged"
            assert report["wait-primary"]["status"] == "done"
            assert "healthy (postgresql); reported" in report["wait-primary"]["detail"]
            assert report["pg-tls-ca"]["status"] == "done"
            assert "imported pg-tokyo's authority" in report["pg-tls-ca"]["detail"]
            assert report["hyperdrive"]["status"] == "done"
            assert "prod: applied (1 to add" in report["hyperdrive"]["detail"]
            assert "[9/11] wait-primary: waiting for the primary pg-tokyo" in err
            assert node.errors == []
            ca_pem = (node.authority / "ca.crt").read_text()
            export = json.loads((project / "cue" / "export" / "prod.json").read_text())
            # exactly what the primary's unit made and published
            assert export["env"]["observed"]["pg_tls_ca"]["value"] == ca_pem
            final = git_server.ref(repo, "deploy/prod")
            assert final is not None and final != pushed  # the import went out too
            assert json.dumps(ca_pem)[1:-1] in git_server.show(
                repo, final, "cue/outputs/prod.pg-tls.cue")

            # every client node's WireGuard configuration at the pushed commit lists the
            # primary, with the key the primary's own unit published
            mesh = json.loads(git_server.show(repo, final, "nix/mesh/prod.json"))
            for client in (n for n in NODES if n != PRIMARY):
                wg = wireguard_config(mesh["nodes"][client])
                peers = wg["networking"]["wireguard"]["interfaces"]["wg-edgekit"]["peers"]
                by_name = {p["name"]: p for p in peers}
                assert by_name[PRIMARY]["publicKey"] == node.keys[PRIMARY], client
                assert by_name[PRIMARY]["endpoint"] == "203.0.113.31:51820"
                assert by_name[PRIMARY]["allowedIPs"] == ["10.100.0.1/32"]

            # once more: nothing left to do, nothing committed or pushed
            head = git_in(project, "rev-parse", "HEAD").stdout.strip()
            done = up(project, env, "--json")
            assert done.returncode == 0, done.stderr
            report = steps(done)
            assert {s["status"] for s in report.values()} <= {
                "done", "unchanged", "skipped"}, report
            assert report["pg-tls-ca"]["status"] == "unchanged"
            assert report["hyperdrive"]["status"] == "unchanged"
            assert report["push"]["status"] == "unchanged"
            assert git_in(project, "rev-parse", "HEAD").stdout.strip() == head
            assert git_server.ref(repo, "deploy/prod") == final

    # a change that would replace something: refused at its step, nothing applied
    done = up(project, {**env, "UP_GEN": "2"}, "--json")
    assert done.returncode == 13, done.stderr
    detail = steps(done)["account"]["detail"]
    assert "would replace terraform_data.waf" in detail
    assert "`edgekit up` only creates and updates" in detail


@pytest.mark.tools
def test_up_help_and_bad_command_line(estate: tuple[Path, str], s3: SeaweedS3) -> None:
    project, _ = estate
    env = env_for(project, s3)
    done = subprocess.run([sys.executable, "-m", "edgekit.cli", "up", "--help"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for words in ("10+N failed at step N", "3 a wait timed out", "--dry-run", "--no-push",
                  "9. wait-primary", "10. pg-tls-ca", "11 preflight ... 21 hyperdrive",
                  "only creates and updates"):
        assert words in done.stdout, words
    done = subprocess.run([*UP, "--timeout", "0"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "must be more than 0 seconds" in done.stderr
    done = up(project, {**env, "AWS_SECRET_ACCESS_KEY": ""})
    assert done.returncode == 11, done.stderr  # preflight: the missing variable is named
    assert "AWS_SECRET_ACCESS_KEY" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("argv", "said"), [
    # the environment is unknown to CUE: the estate is read in step 1
    (("up", "nosuch", "--json"), "no CUE export for environment 'nosuch'"),
    # the app cannot be loaded: the synth before step 1 fails it
    (("--app", "nosuchmod", "up", "staging", "--json"), "cannot import app module 'nosuchmod'"),
])
def test_any_failure_is_a_failed_step_with_its_exit_code_and_json(
        cli: RunCli, argv: tuple[str, ...], said: str) -> None:
    """Whatever stops `up` (CUE, the synth, an import: not only tofu and git) is reported
    as the step it stopped at, with exit 10 + N and the --json document machines read."""
    done = cli(*argv)
    assert done.returncode == 11, done.stderr
    report = json.loads(done.stdout)
    assert (report["result"], report["failed_step"], report["exit_code"]) == ("failed", 1, 11)
    first, *rest = report["steps"]
    assert first["status"] == "failed" and said in first["detail"]
    assert {s["status"] for s in rest} == {"not-run"}
    assert "failed at step 1 (preflight)" in done.stderr and "Traceback" not in done.stderr
