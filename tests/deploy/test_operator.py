"""The operator's side of deploys without nodes: how reports are read and judged, the waves,
the rollout's decisions against a simulated estate (an injected clock, refs and reports),
the check rules, the commands' help and errors, and the Nix unit that runs the agent.
The same code runs for real in tests/deploy/test_rollout.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from edgekit.cue.model import Estate
from edgekit.deploy import agent
from edgekit.deploy.plan import PlanError, agent_settings, waves
from edgekit.deploy.refs import follow_refs, node_ref
from edgekit.deploy.reports import NodeStatus, Report, Unreadable, parse_report
from edgekit.deploy.rollout import Plan, deploy, rollback
from edgekit.deploy.view import evaluate, judge
from edgekit.nix.evaluate import evaluate_node
from stacks import make_app
from tests.conftest import ROOT, RunCli

NOW = datetime(2026, 12, 6, 20, 0, 0, tzinfo=UTC)
A, B = "a" * 40, "b" * 40


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report(node: str = "edge-1", *, wanted: str | None = A, running: str | None = A,
           result: str = "ok", healthy: bool = True, at: datetime = NOW,
           **extra: Any) -> dict[str, Any]:
    """A report exactly as edgekit/deploy/agent.py writes one."""
    return {"schema": "edgekit.status/v1", "env": "prod", "node": node, "wanted": wanted,
            "running": running, "generation": 3, "time": stamp(at),
            "ref": "refs/heads/deploy/prod.nodes/edge-1",
            "switch": {"result": result, "attempt": 1, "max_attempts": 5,
                       "message": "switched", "time": stamp(at)},
            "health": {"api": {"ok": healthy, "detail": "HTTP 200" if healthy else "HTTP 503"},
                       "web": {"ok": True, "detail": "HTTP 200"}}, **extra}


def parsed(data: dict[str, Any]) -> NodeStatus | Unreadable:
    return parse_report(json.dumps(data).encode(), "s3://b/status/prod/edge-1.json")


# -- reports and how they are judged --------------------------------------------------------

def test_a_report_is_read_with_the_types_the_agent_writes() -> None:
    status = parsed(report())
    assert isinstance(status, NodeStatus)
    assert status.switch.result == "ok" and status.health["api"].ok and status.at(A)


@pytest.mark.parametrize(("change", "named"), [
    ({"switch": {"result": "done", "attempt": 1, "max_attempts": 5, "message": "",
                 "time": stamp(NOW)}}, "$.switch.result"),
    ({"running": "HEAD"}, "$.running"),
    ({"surprise": 1}, "unknown property 'surprise'"),
    ({"time": "yesterday"}, "$.time"),
])
def test_a_report_outside_the_contract_is_unreadable_never_healthy(
        change: dict[str, Any], named: str) -> None:
    status = parsed({**report(), **change})
    assert isinstance(status, Unreadable) and named in status.reason
    assert judge(A, status, NOW, 900)[0] == "unreadable"
    not_json = parse_report(b"{", "s3://b/k")
    assert isinstance(not_json, Unreadable) and "not JSON" in not_json.reason


@pytest.mark.parametrize(("data", "state"), [
    (None, "missing"),
    (report(at=NOW - timedelta(seconds=901)), "stale"),
    (report(at=NOW - timedelta(seconds=899)), "ok"),
    (report(wanted=B, running=B), "pending"),
    (report(result="pending", running=B), "switching"),
    (report(result="rolled-back", running=B), "rolled-back"),
    (report(result="failed", running=B), "failed"),
    (report(healthy=False), "unhealthy"),
])
def test_each_node_is_judged_against_the_revision_its_ref_names(
        data: dict[str, Any] | None, state: str) -> None:
    status = None if data is None else parsed(data)
    assert judge(A, status, NOW, 900)[0] == state


def test_status_names_a_rollout_and_is_ok_only_when_every_node_is() -> None:
    branches = {"deploy/prod": A, node_ref("deploy/prod", "edge-1"): B}
    reports: dict[str, Report] = {"edge-1": parsed(report(wanted=B, running=B)),
                                  "edge-2": parsed(report("edge-2")), "edge-tokyo": None}
    view = evaluate(env="prod", env_ref="deploy/prod", nodes=["edge-1", "edge-2", "edge-tokyo"],
                    branches=branches, reports=reports, now=NOW, stale_after=900)
    assert [(n.node, n.follows, n.target, n.state) for n in view.nodes] == [
        ("edge-1", "deploy/prod.nodes/edge-1", B, "ok"),
        ("edge-2", "deploy/prod", A, "ok"),
        ("edge-tokyo", "deploy/prod", A, "missing")]
    assert view.ok is False
    assert view.rollout() == {B: ["edge-1"], A: ["edge-2", "edge-tokyo"]}


# -- waves ----------------------------------------------------------------------------------

def test_default_waves_are_one_canary_per_service_then_the_rest() -> None:
    prod = Estate.load(ROOT, "prod", check_fresh=False)
    assert waves(prod) == [["edge-1"], ["edge-2", "edge-tokyo", "pg-tokyo"]]
    assert waves(Estate.load(ROOT, "staging", check_fresh=False)) == [["staging-1"]]
    split = attrs.evolve(prod, env=attrs.evolve(prod.env, placement={
        "edge-1": ("api",), "edge-2": ("web",), "edge-tokyo": ("api", "web")}))
    assert waves(split) == [["edge-tokyo"], ["edge-1", "edge-2", "pg-tokyo"]]


def with_waves(declared: tuple[tuple[str, ...], ...]) -> Estate:
    prod = Estate.load(ROOT, "prod", check_fresh=False)
    deploy_spec = attrs.evolve(prod.env.deploy, waves=declared)
    return attrs.evolve(prod, env=attrs.evolve(prod.env, deploy=deploy_spec))


def test_declared_waves_are_used_and_a_rollout_refuses_bad_ones() -> None:
    """The check rules (EK240, EK241: tests/test_check_rules.py) name each problem; a
    rollout refuses to start with any of them."""
    good = with_waves((("pg-tokyo",), ("edge-1", "edge-2"), ("edge-tokyo",)))
    assert waves(good) == [["pg-tokyo"], ["edge-1", "edge-2"], ["edge-tokyo"]]
    bad = with_waves((("edge-1", "edge-9"), ("edge-1", "edge-2")))
    with pytest.raises(PlanError) as refused:
        waves(bad)
    lines = str(refused.value).splitlines()
    assert lines[0] == ("cue/envs.cue envs.prod.deploy.waves: wave 0 names 'edge-9', which is "
                        "not a node of environment 'prod' (nodes: edge-1, edge-2, edge-tokyo, "
                        "pg-tokyo) (EK240, $.env.deploy.waves[0][1])")
    assert len(lines) == 4  # edge-1 twice, edge-tokyo and pg-tokyo in none (EK241)


# -- the rollout, against a simulated estate -------------------------------------------------

@attrs.define
class Sim:
    """Refs, reports and a clock; nodes that follow their refs as scripted."""

    refs: dict[str, str]
    reports_: dict[str, Report]
    behaviour: dict[str, str]
    """node -> what it does with a new revision: ok | rolled-back | silent."""
    clock: float = 0.0
    pushes: list[dict[str, str]] = attrs.field(factory=list)

    def branches(self) -> dict[str, str]:
        return dict(self.refs)

    def reports(self) -> Mapping[str, Report]:
        for node, how in self.behaviour.items():
            target = self.refs.get(node_ref("deploy/prod", node), self.refs["deploy/prod"])
            now = self.now()
            if how == "silent":
                continue
            current = self.reports_.get(node)
            if isinstance(current, NodeStatus) and current.wanted == target:
                if current.time != stamp(now):
                    self.reports_[node] = parsed({**attrs.asdict(current), "time": stamp(now)})
                continue
            if how == "ok":
                self.reports_[node] = parsed(report(node, wanted=target, running=target,
                                                    at=now))
            else:
                self.reports_[node] = parsed(report(node, wanted=target, running=A,
                                                    result="rolled-back", at=now))
        return self.reports_

    def push(self, moves: Mapping[str, str], expected: Mapping[str, str | None]) -> None:
        assert all(self.refs.get(r) == expected[r] for r in moves)  # the lease holds
        self.refs.update(moves)
        self.pushes.append(dict(moves))

    def now(self) -> datetime:
        return NOW + timedelta(seconds=self.clock)

    def monotonic(self) -> float:
        return self.clock

    def sleep(self, seconds: float) -> None:
        self.clock += seconds


NODES = ("edge-1", "edge-2", "edge-tokyo")
PLAN = Plan(env="prod", env_ref="deploy/prod", waves=(("edge-1",), ("edge-2", "edge-tokyo")),
            timeout=60, stale_after=900, poll=5)


def estate_at_a(**behaviour: str) -> Sim:
    return Sim({"deploy/prod": A},
               {n: parsed(report(n)) for n in NODES},
               {n: behaviour.get(n, "ok") for n in NODES})


def test_a_rollout_moves_wave_after_wave_then_the_environment_ref() -> None:
    sim = estate_at_a()
    lines: list[str] = []
    outcome = deploy(sim, PLAN, B, lines.append)
    assert outcome.exit_code == 0
    assert sim.pushes == [{"deploy/prod.nodes/edge-1": B},
                          {"deploy/prod.nodes/edge-2": B, "deploy/prod.nodes/edge-tokyo": B},
                          {"deploy/prod": B}]
    assert outcome.env_ref == {"ref": "deploy/prod", "before": A, "after": B}


def test_a_failing_canary_stops_the_rollout_and_nothing_else_moves() -> None:
    sim = estate_at_a(**{"edge-1": "rolled-back"})
    lines: list[str] = []
    outcome = deploy(sim, PLAN, B, lines.append)
    assert outcome.exit_code == 1 and list(outcome.stopped) == ["edge-1"]
    assert sim.pushes == [{"deploy/prod.nodes/edge-1": B}]
    assert [w["status"] for w in outcome.waves] == ["stopped", "not started"]
    assert any(line.startswith("not moved: edge-2, edge-tokyo") for line in lines)


def test_a_silent_node_times_the_wave_out_and_is_named() -> None:
    sim = estate_at_a(**{"edge-2": "silent"})
    outcome = deploy(sim, PLAN, B, lambda _: None)
    assert outcome.exit_code == 1
    assert outcome.stopped["edge-2"].startswith("timed-out: pending after 60 s")
    assert "edge-tokyo" not in outcome.stopped
    assert sim.clock >= 60 and {"deploy/prod": B} not in sim.pushes


def test_a_rollout_run_again_goes_on_from_the_first_wave_not_done() -> None:
    sim = estate_at_a()
    sim.refs[node_ref("deploy/prod", "edge-1")] = B  # a first run moved the canary
    sim.reports()  # ... which switched, and the operator's machine died
    outcome = deploy(sim, PLAN, B, lambda _: None)
    assert outcome.exit_code == 0
    assert outcome.waves[0]["status"] == "done before"
    assert sim.pushes[0] == {"deploy/prod.nodes/edge-2": B, "deploy/prod.nodes/edge-tokyo": B}


def test_rollback_moves_every_node_back_to_the_environment_ref_at_once() -> None:
    sim = estate_at_a()
    sim.refs[node_ref("deploy/prod", "edge-1")] = B
    sim.reports()
    outcome = rollback(sim, PLAN, lambda _: None)
    assert outcome.exit_code == 0 and outcome.revision == A
    assert sim.pushes == [{"deploy/prod.nodes/edge-1": A}]
    no_ref = Sim({}, {}, {})
    assert rollback(no_ref, PLAN, lambda _: None).exit_code == 1


# -- the commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["status", "deploy", "rollback"])
def test_each_command_explains_itself(cli: RunCli, command: str) -> None:
    done = cli(command, "--help")
    assert done.returncode == 0
    assert "--json" in done.stdout and "AWS_ACCESS_KEY_ID" in done.stdout
    assert {"status": "stale", "deploy": "wave", "rollback": "last revision"}[command] in \
        done.stdout
    assert "Exit 0 when every" in done.stdout and "1 when" in done.stdout  # what 0/1 mean


@pytest.mark.parametrize("argv", [("deploy", "prod", "HEAD", "--poll", "0"),
                                  ("rollback", "prod", "--wave-timeout", "-5"),
                                  ("status", "--stale-after", "0")])
def test_a_wait_of_no_time_is_a_bad_command_line(cli: RunCli, argv: tuple[str, ...]) -> None:
    done = cli(*argv)  # --poll 0 would read the bucket in a busy loop
    assert done.returncode == 2, done.stderr
    assert "must be more than 0 seconds" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_environment_or_revision_is_a_clear_error(cli: RunCli) -> None:
    done = cli("deploy", "qa", "HEAD")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no environment 'qa' in cue/ (environments: prod, staging)" in done.stderr


def test_a_revision_that_is_not_a_commit_here_is_refused(cli: RunCli,
                                                         project_copy: Any) -> None:
    subprocess.run(["git", "init", "-q", str(project_copy)], check=True)
    done = cli("deploy", "prod", "no-such-branch")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "'no-such-branch' is not a commit of the repository" in done.stderr


# -- on the node: the unit, and what it is given ------------------------------------------

def test_the_deploy_unit_survives_its_own_switch_and_replaces_auto_upgrade() -> None:
    """A switch restarts changed units: the agent's own unit must not be restarted or
    stopped by the switch it performs (it checks health and rolls back afterwards)."""
    settings = agent_settings(Estate.load(ROOT, "prod", check_fresh=False))["pg-tokyo"]
    node = evaluate_node("prod", "pg-tokyo")  # the real evaluation (ADR 0023)
    unit = node["services"]["edgekit-deploy"]
    assert unit["restartIfChanged"] is False
    assert unit["unitConfig"]["X-StopOnRemoval"] is False
    command = unit["serviceConfig"]["ExecStart"].split()
    assert command[0].startswith("/nix/store/") and command[0].endswith("/bin/python3")
    assert command[1].endswith("-agent.py") and command[1].startswith("/nix/store/")
    assert command[2:] == ["run", "--config", "/etc/edgekit/deploy.json"]
    assert any(p["name"].startswith("postgresql-") for p in unit["path"])  # pg_isready
    assert json.loads(node["etc"]["edgekit/deploy.json"]["text"]) == settings
    assert node["timers"]["edgekit-deploy"]["timerConfig"]["OnUnitInactiveSec"] == "1min"
    assert node["autoUpgrade"]["enable"] is False
    assert settings["refs"] == follow_refs("deploy/prod", "pg-tokyo")


def test_every_nodes_user_data_stays_well_under_the_smallest_cap(tmp_path: Any) -> None:
    """The agent adds about 10 KB to the first-boot document; with every secret at a
    generous length, each node's user data stays under 32 KiB (Hetzner's cap)."""
    app = make_app(outdir=tmp_path / "out")
    app.disable_schema_check()
    for result in app.synth_results(["prod", "staging"]):
        locals_ = result.document["locals"]
        for name, boot in locals_.items():
            if not name.endswith("_boot"):
                continue
            filled = {**boot, "secrets": dict.fromkeys(boot["secrets"], "x" * 400)}
            config = locals_[name.replace("_boot", "_cloud_config")]
            files = [{**f, "content": json.dumps(filled)} if f["path"] == "/etc/edgekit/boot.json"
                     else f for f in config["write_files"]]
            size = len("#cloud-config\n" + json.dumps({**config, "write_files": files}))
            assert size < 32 * 1024, (name, size)


def test_the_agent_maps_repositories_to_what_git_and_nix_fetch() -> None:
    assert agent.git_url("git+https://git.example/e?dir=x") == "https://git.example/e"
    assert agent.git_url("github:me/estate") == "https://github.com/me/estate.git"
    assert agent.flake_url("github:me/estate", "refs/heads/x", A) == f"github:me/estate/{A}"
    assert agent.flake_url("git+https://g/e?dir=x", "refs/heads/x", A) == \
        f"git+https://g/e?dir=x&ref=refs/heads/x&rev={A}"
    with pytest.raises(agent.Failed, match="expected git\\+https"):
        agent.git_url("path:/srv/estate")
    assert sys.version_info >= (3, 11)
