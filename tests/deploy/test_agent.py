"""The node side of a deploy, for real (ADR 0033, 0034): the deploy agent the node's unit
runs (edgekit/deploy/agent.py), in a network namespace per node, following refs on a real
git server (git http-backend), fetching with the real Nix, setting real Nix profile
generations with nix-env, checking the real api/web processes over HTTP and a real
Postgres with pg_isready, and reporting to SeaweedFS (which checks the SigV4 signature).
The stand-in is the build and activation of the NixOS system (tests/deploy/standin.py).
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from edgekit.constructs.boot import AGENT_PATH, cloud_config
from edgekit.deploy import agent
from edgekit.deploy.refs import AGENT_SOURCE, node_ref
from edgekit.schema.props import PACKAGE_SCHEMA_DIR
from tests.conftest import ROOT
from tests.deploy.rig import Rig, wait_for
from tests.deploy.world import AGENT_TIMINGS, World, break_api_health, units
from tests.pg_server import pg_bin, throwaway_postgres

SCHEMA = Draft202012Validator(json.loads((PACKAGE_SCHEMA_DIR / "NodeStatus.json").read_text()))


def checked(report: dict[str, Any] | None) -> dict[str, Any]:
    """A report, held to the CUE contract (cue/status.cue) the operator reads it with."""
    assert report is not None
    errors = [e.message for e in SCHEMA.iter_errors(report)]
    assert errors == [], errors
    return report


def add(world: World, node: str) -> Any:
    return world.rig.add(node, world.settings(node), units(node))


def in_node(rig_: Rig, node: str, url: str) -> int:
    """GET `url` from inside the node's namespace (its loopback): the HTTP status."""
    done = subprocess.run(rig_.nodes[node].exec(
        "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url),
        capture_output=True, text=True, timeout=30)
    return int(done.stdout or 0)


# -- the first switch ------------------------------------------------------------------------

def test_the_first_switch_retries_until_the_ref_exists_reporting_each_attempt(
        world: World, documents: dict[str, Any]) -> None:
    """A failed first switch was final and silent (issue 24): the ref pushed a little
    late, a network not up yet. Now each attempt is reported, and a later one succeeds."""
    node = add(world, "edge-1")
    argv = world.first_switch_argv(node, documents, attempts=4, backoff=[4, 4, 4])
    first = subprocess.Popen(node.exec(sys.executable, str(AGENT_SOURCE), *argv),
                             env=node.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        failed = checked(wait_for("attempt 1 reported", lambda: world.status("edge-1"), 30))
        assert failed["switch"]["result"] == "pending"  # another attempt follows
        assert failed["switch"]["attempt"] == 1 and failed["switch"]["max_attempts"] == 4
        assert "refs/heads/deploy/prod.nodes/edge-1, refs/heads/deploy/prod" in \
            failed["switch"]["message"]
        assert failed["wanted"] is None and failed["running"] is None
        world.move("deploy/prod", world.revisions["v1"])  # the operator pushes, late
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out + err
    built = checked(world.status("edge-1"))
    assert built["switch"]["attempt"] == 2
    assert built["switch"]["result"] == "pending"  # set to boot; the reboot follows
    assert built["wanted"] == built["running"] == world.revisions["v1"]
    assert built["ref"] == "refs/heads/deploy/prod"
    assert [n for n, _ in node.generations()] == [1]
    assert (node.run_dir / "boot-entry").read_text() == node.generations()[0][1]
    assert not (node.run_dir / "current-system").exists()  # nothing switched in place

    node.reboot()
    done = node.agent("run", "--config", str(node.config))
    assert done.returncode == 0, done.stderr
    up = checked(world.status("edge-1"))
    assert up["switch"]["result"] == "ok" and up["generation"] == 1
    assert up["health"] == {"api": {"ok": True, "detail": "HTTP 200"},
                            "web": {"ok": True, "detail": "HTTP 200"}}


def test_a_first_switch_that_never_finds_its_ref_gives_up_bounded(
        world: World, documents: dict[str, Any]) -> None:
    node = add(world, "edge-2")
    argv = world.first_switch_argv(node, documents, attempts=3, backoff=[0.2, 0.2])
    started = time.monotonic()
    done = node.agent(*argv)
    assert done.returncode == 1
    assert time.monotonic() - started < 60
    report = checked(world.status("edge-2"))
    assert report["switch"]["result"] == "failed" and report["switch"]["attempt"] == 3
    assert report["switch"]["message"].startswith("gave up after 3 attempts: none of ")
    assert done.stderr.count("edgekit-deploy: attempt ") == 2  # each attempt in the journal
    assert node.generations() == []


# -- later switches --------------------------------------------------------------------------

def test_a_good_revision_becomes_a_new_generation_and_reports_healthy(
        world: World, documents: dict[str, Any]) -> None:
    world.move("deploy/prod", world.revisions["v1"])
    node = add(world, "edge-1")
    world.first_switch(node, documents)
    assert node.agent("run", "--config", str(node.config)).returncode == 0
    v2 = world.commit("v2", lambda w: (w / "services/web/NOTE").write_text("v2\n"))
    world.move(node_ref("deploy/prod", "edge-1"), v2)
    done = node.agent("run", "--config", str(node.config))
    assert done.returncode == 0, done.stderr
    report = checked(world.status("edge-1"))
    assert report["wanted"] == report["running"] == v2
    assert report["ref"] == "refs/heads/deploy/prod.nodes/edge-1"  # its own ref first
    assert report["switch"]["result"] == "ok" and report["generation"] == 2
    assert report["switch"]["message"] == f"switched to {v2[:12]} (generation 2)"
    assert [n for n, _ in node.generations()] == [1, 2]
    assert Path(node.profile).resolve() == Path(node.generations()[1][1])
    # nothing changes: no new generation, a report only when a heartbeat is due
    stamp = report["time"]
    assert node.agent("run", "--config", str(node.config)).returncode == 0
    assert [n for n, _ in node.generations()] == [1, 2]
    assert checked(world.status("edge-1"))["time"] == stamp
    time.sleep(AGENT_TIMINGS["heartbeat"] + 1)
    assert node.agent("run", "--config", str(node.config)).returncode == 0
    beat = checked(world.status("edge-1"))
    assert beat["time"] > stamp and beat["switch"]["time"] == report["switch"]["time"]


def test_a_revision_failing_its_health_check_is_rolled_back_by_the_node(
        world: World, documents: dict[str, Any]) -> None:
    """deploy-rs' magic rollback, on the node: the new generation's api answers 503, so
    within the health window the node goes back to the generation before, on its own."""
    world.move("deploy/prod", world.revisions["v1"])
    node = add(world, "edge-1")
    world.first_switch(node, documents)
    assert node.agent("run", "--config", str(node.config)).returncode == 0
    good = world.revisions["v1"]
    bad = world.commit("bad", break_api_health)
    world.move(node_ref("deploy/prod", "edge-1"), bad)
    started = time.monotonic()
    done = node.agent("run", "--config", str(node.config))
    assert done.returncode == 1
    assert time.monotonic() - started >= AGENT_TIMINGS["health_timeout"]  # the window
    report = checked(world.status("edge-1"))
    assert report["switch"]["result"] == "rolled-back"
    assert report["wanted"] == bad and report["running"] == good
    assert "api: HTTP 503" in report["switch"]["message"]
    assert f"rolled back to {good[:12]} (generation 1)" in report["switch"]["message"]
    assert report["health"]["api"] == {"ok": True, "detail": "HTTP 200"}  # the old api again
    assert in_node(world.rig, "edge-1", "http://127.0.0.1:8080/healthz") == 200
    assert [n for n, _ in node.generations()] == [1]  # the failed generation is gone
    # not tried again while the ref names the same revision
    assert node.agent("run", "--config", str(node.config)).returncode == 1
    assert [n for n, _ in node.generations()] == [1]
    assert checked(world.status("edge-1"))["switch"]["result"] == "rolled-back"
    # the ref back on the good revision: the node reports it runs what it is asked
    world.move(node_ref("deploy/prod", "edge-1"), good)
    assert node.agent("run", "--config", str(node.config)).returncode == 0
    back = checked(world.status("edge-1"))
    assert back["switch"]["result"] == "ok" and back["wanted"] == back["running"] == good


def test_a_revision_whose_lock_does_not_pin_its_inputs_is_never_built(
        world: World, documents: dict[str, Any], tmp_path: Path) -> None:
    """No silent upgrade between deploys: the agent builds with the lock file of the
    revision and refuses to change it (the real Nix refuses an input the lock does not
    pin), so a node stays where it was rather than resolving inputs anew."""
    world.move("deploy/prod", world.revisions["v1"])
    node = add(world, "edge-1")
    world.first_switch(node, documents)
    pinned = tmp_path / "input"
    pinned.mkdir()
    (pinned / "flake.nix").write_text("{ outputs = { self }: { }; }\n")
    unlocked = world.commit("unlocked", lambda w: (w / "flake.nix").write_text(
        f'{{ inputs.extra.url = "path:{pinned}"; outputs = {{ self, extra }}: {{ }}; }}\n'))
    world.move(node_ref("deploy/prod", "edge-1"), unlocked)
    done = node.agent("run", "--config", str(node.config))
    assert done.returncode == 1
    report = checked(world.status("edge-1"))
    assert report["switch"]["result"] == "failed" and report["switch"]["attempt"] == 3
    assert "lock file" in report["switch"]["message"]
    assert report["running"] == world.revisions["v1"] and report["generation"] == 1
    assert "--no-update-lock-file" in agent.DEFAULTS["build"]
    forbidden = {"--update-input", "--recreate-lock-file", "--no-write-lock-file",
                 "--commit-lock-file", "--refresh"}
    assert forbidden.isdisjoint(agent.DEFAULTS["build"])
    build = agent.DEFAULTS["build"]  # the result stays a GC root until nix-env holds it
    assert build[build.index("--out-link") + 1] == "{result}" and "--no-link" not in build
    assert agent.flake_url("git+https://git.example/e", "refs/heads/deploy/prod",
                           "a" * 40) == ("git+https://git.example/e?ref=refs/heads/deploy/prod"
                                         f"&rev={'a' * 40}")


def test_the_primary_reports_whether_postgres_accepts_connections(tmp_path: Path) -> None:
    """The `postgresql` check of the primary is pg_isready against the real server."""
    with throwaway_postgres("edgekit-deploy-check-") as server:
        checks = {"postgresql": {"command": [str(pg_bin() / "pg_isready"), f"--host={server.run}",
                                             f"--port={server.port}", "--timeout=5"]}}
        health = agent.Health({"health": checks, "timeouts": {"check": 10}})
        up = health.now()["postgresql"]
        assert up["ok"] is True and "accepting connections" in up["detail"]
        server.pg(str(pg_bin() / "pg_ctl"), "-D", str(server.data), "-m", "fast", "-w", "stop")
        down = health.now()["postgresql"]
        assert down["ok"] is False and "no response" in down["detail"]


# -- the same script everywhere -------------------------------------------------------------

def test_the_first_boot_runs_the_same_agent_the_nodes_unit_runs() -> None:
    """The copy in the user data is the agent's source, byte for byte; nix/deploy.nix runs
    that source file (not a test copy)."""
    files = {f["path"]: f for f in cloud_config("boot", "hetzner")["write_files"]}
    copy = files[AGENT_PATH]
    assert copy["encoding"] == "gz+b64" and copy["permissions"] == "0500"
    assert gzip.decompress(base64.b64decode(copy["content"])) == AGENT_SOURCE.read_bytes()
    assert "agent ? ../edgekit/deploy/agent.py" in (ROOT / "nix/deploy.nix").read_text()
