"""`edgekit deploy`, `edgekit status` and `edgekit rollback`, end to end (ADR 0033): the
reference estate's four prod nodes, each in its network namespace running the real deploy
agent (tests/deploy/world.py), the operator's commands run as processes in a copy of the
project whose git remote is the real git server, and SeaweedFS for the reports.

Scenarios: a good revision rolls out in waves; a bad one stops at the canary, which rolls
back by itself; the operator's process killed mid-rollout, and the same command resumes;
a node that stopped reporting is named as stale and blocks the next wave.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.deploy.refs import node_ref, status_key
from tests.conftest import RunCli
from tests.deploy.rig import wait_for
from tests.deploy.world import BUCKET, ENV, World, break_api_health, touch_web, units
from tests.gitserver import git

NODES = ("edge-1", "edge-2", "edge-tokyo", "pg-tokyo")
CANARY = "edge-1"  # the fewest nodes running api and web: the default first wave
WAVE_TIMEOUT = "90"


@attrs.define
class Operator:
    """The operator's checkout (the project copy, its origin the git server) and commands."""

    world: World
    cli: RunCli
    root: Path

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.world.s3.access_key,
                "AWS_SECRET_ACCESS_KEY": self.world.s3.secret_key,
                "EDGEKIT_R2_ENDPOINT": self.world.s3.endpoint}

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", cwd=self.root)
        return self.cli(*argv, env=self.env())

    def deploy(self, rev: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("deploy", ENV, rev, "--poll", "0.3", "--wave-timeout", WAVE_TIMEOUT,
                        *extra)

    def status(self) -> tuple[int, dict[str, Any]]:
        done = self.run("status", "--stack", ENV, "--json")
        assert done.returncode in (0, 1), done.stderr
        document: dict[str, Any] = json.loads(done.stdout)["envs"][0]
        return done.returncode, document


@pytest.fixture
def estate(world: World, documents: dict[str, Any], cli: RunCli,
           project_copy: Path) -> Iterator[Operator]:
    """Every prod node booted into v1 (its first switch) and following its refs."""
    world.move("deploy/prod", world.revisions["v1"])
    nodes = [world.rig.add(name, world.settings(name), units(name)) for name in NODES]
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda node: world.first_switch(node, documents), nodes))
    for node in nodes:
        node.start()
    for name in NODES:
        wait_for(f"{name} up at v1", partial(world.reported, name, world.revisions["v1"]))
    git("init", "-q", "-b", "main", str(project_copy))
    git("remote", "add", "origin", world.remote, cwd=project_copy)
    yield Operator(world, cli, project_copy)


def node_refs(world: World) -> dict[str, str]:
    return {ref.rsplit("/", 1)[1]: rev for ref, rev in world.refs().items()
            if ".nodes/" in ref}


def test_a_good_revision_rolls_out_to_every_node_in_waves(estate: Operator) -> None:
    world = estate.world
    v1, v2 = world.revisions["v1"], world.commit("v2", touch_web)
    # watch the refs and the reports while the rollout runs: when did each node's ref move,
    # and was the canary healthy at v2 by then?
    seen: dict[str, bool] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            canary_ok = world.reported(CANARY, v2) is not None
            for node, rev in node_refs(world).items():
                if rev == v2 and node not in seen:
                    seen[node] = canary_ok
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        done = estate.deploy(v2, "--json")
    finally:
        stop.set()
        watcher.join()
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert [w["nodes"] for w in outcome["waves"]] == [[CANARY],
                                                      ["edge-2", "edge-tokyo", "pg-tokyo"]]
    assert [w["status"] for w in outcome["waves"]] == ["done", "done"]
    assert outcome["env_ref"] == {"ref": "deploy/prod", "before": v1, "after": v2}
    assert seen[CANARY] is False  # the canary moved first, alone
    assert all(seen[n] for n in NODES if n != CANARY), seen  # the rest once it was healthy
    assert world.refs()["deploy/prod"] == v2  # the last revision healthy everywhere
    for name in NODES:
        report = world.reported(name, v2)
        assert report is not None, world.status(name)
    assert world.status("pg-tokyo")["health"]["postgresql"]["ok"] is True  # type: ignore[index]
    code, status = estate.status()
    assert code == 0 and status["ok"] is True and status["rollout"] is None
    assert {n["node"]: n["state"] for n in status["nodes"]} == dict.fromkeys(NODES, "ok")


def test_a_bad_revision_stops_at_the_canary_which_rolls_back_by_itself(
        estate: Operator) -> None:
    world = estate.world
    v1, bad = world.revisions["v1"], world.commit("bad", break_api_health)
    done = estate.deploy(bad)
    assert done.returncode == 1
    assert f"wave 1/2 stopped: {CANARY} rolled-back: " in done.stderr
    assert "api: HTTP 503" in done.stderr
    assert "not moved: edge-2, edge-tokyo, pg-tokyo" in done.stderr
    refs = world.refs()
    assert refs["deploy/prod"] == v1
    assert node_refs(world) == {CANARY: bad}  # no other node's ref was ever created
    report = world.status(CANARY)
    assert report is not None and report["switch"]["result"] == "rolled-back"
    assert report["running"] == v1 and report["health"]["api"]["ok"] is True
    for name in NODES[1:]:
        assert world.reported(name, v1) is not None  # untouched
    code, status = estate.status()
    assert code == 1 and status["ok"] is False
    states = {n["node"]: n["state"] for n in status["nodes"]}
    assert states == {CANARY: "rolled-back", "edge-2": "ok", "edge-tokyo": "ok",
                      "pg-tokyo": "ok"}
    text = estate.run("status", "--stack", ENV)
    assert f"resume: edgekit deploy prod {bad}    undo: edgekit rollback prod" in text.stdout

    undo = estate.run("rollback", ENV, "--poll", "0.3", "--wave-timeout", WAVE_TIMEOUT)
    assert undo.returncode == 0, undo.stderr
    assert f"moved deploy/prod.nodes/{CANARY}" in undo.stderr
    assert node_refs(world) == {CANARY: v1}
    code, status = estate.status()
    assert code == 0 and status["rollout"] is None


def test_the_operator_killed_mid_rollout_and_deploy_resumes(estate: Operator) -> None:
    world = estate.world
    v1, v2 = world.revisions["v1"], world.commit("v2", touch_web)
    git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", cwd=estate.root)
    operator = subprocess.Popen(
        [sys.executable, "-m", "edgekit.cli", "deploy", ENV, v2, "--poll", "0.3",
         "--wave-timeout", WAVE_TIMEOUT], cwd=estate.root,
        env={**os.environ, "EDGEKIT_SCHEMA_DIR": str(estate.root / "schema"), **estate.env()},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the canary's ref moved", lambda: node_refs(world).get(CANARY) == v2, 60, 0.05)
    finally:
        operator.send_signal(signal.SIGKILL)  # the operator's machine dies
        operator.wait(timeout=30)
    assert node_refs(world) == {CANARY: v2}
    code, status = estate.status()  # the estate explains itself
    assert code == 1
    assert status["rollout"] == {v2: [CANARY], v1: ["edge-2", "edge-tokyo", "pg-tokyo"]}
    assert status["last_good"]["revision"] == v1
    text = estate.run("status", "--stack", ENV).stdout
    assert f"resume: edgekit deploy prod {v2}" in text

    again = estate.deploy(v2)
    assert again.returncode == 0, again.stderr
    resumed = ("wave 1/2: its refs already name" in again.stderr or
               "wave 1/2 (edge-1): already at" in again.stderr)
    assert resumed, again.stderr
    assert f"moved deploy/prod.nodes/{CANARY}" not in again.stderr  # not moved twice
    assert world.refs()["deploy/prod"] == v2
    assert all(world.reported(n, v2) for n in NODES)
    assert [n for n, _ in world.rig.nodes[CANARY].generations()] == [1, 2]


def test_a_node_that_stopped_reporting_is_named_stale_and_blocks_the_next_wave(
        estate: Operator) -> None:
    world = estate.world
    v1, v2 = world.revisions["v1"], world.commit("v2", touch_web)
    canary = world.rig.nodes[CANARY]
    canary.stop()  # the node is gone: no agent runs there any more
    last = world.status(CANARY)
    assert last is not None
    old = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    world.s3.client().put_object(  # its last report, as it was written 20 minutes ago
        Bucket=BUCKET, Key=status_key(ENV, CANARY),
        Body=json.dumps({**last, "time": old, "switch": {**last["switch"], "time": old}}))
    code, status = estate.status()
    assert code == 1
    (canary_state,) = [n for n in status["nodes"] if n["node"] == CANARY]
    assert canary_state["state"] == "stale" and "last report 20m ago" in canary_state["detail"]

    done = estate.run("deploy", ENV, v2, "--poll", "0.3", "--wave-timeout", "5")
    assert done.returncode == 1
    assert f"wave 1/2 stopped: {CANARY} timed-out: stale after 5 s" in done.stderr
    assert "not moved: edge-2, edge-tokyo, pg-tokyo" in done.stderr
    assert node_refs(world) == {CANARY: v2}
    assert world.refs()["deploy/prod"] == v1
    time.sleep(2)  # the other nodes keep running v1: nothing told them otherwise
    for name in NODES[1:]:
        assert world.reported(name, v1) is not None
    assert node_ref("deploy/prod", "edge-2") not in world.refs()
