"""`edgekit deploy ENV REV` and `edgekit rollback ENV` (ADR 0033).

A deploy moves the nodes' own refs (``<env ref>.nodes/<node>``) to REV a wave at a time and
waits, after each wave, until every node of the wave reports REV running and healthy (the
wave timeout bounds it). A node that reports a failed switch or a rollback, or does not
report in time, stops the deploy: nothing else moves, and the exit code is 1. When the last
wave is done the environment's ref (``<env ref>``) moves to REV: it always names the last
revision healthy on every node.

Everything a deploy knows is in the refs and the reports, never on the operator's machine:
run again after a crash, it finds the waves already done (their nodes at REV and healthy)
and goes on from the first that is not, without moving a ref twice. A rollback moves every
node's ref back to the environment's ref at once and waits the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import attrs

from edgekit.deploy import git
from edgekit.deploy.refs import node_ref
from edgekit.deploy.reports import Report
from edgekit.deploy.view import judge, short

WAITING = ("pending", "switching", "missing", "stale", "unhealthy", "unreadable", "unknown")
"""States a wave waits out (until its timeout); ``failed`` and ``rolled-back`` stop it."""


class Estate(Protocol):
    """What a rollout reads and moves: the refs, the reports, and the clock."""

    def branches(self) -> dict[str, str]: ...
    def reports(self) -> Mapping[str, Report]: ...
    def push(self, moves: Mapping[str, str], expected: Mapping[str, str | None]) -> None: ...
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


@attrs.define
class Live:
    """The real estate: the git remote and the logs bucket."""

    remote: str
    cwd: Path
    prefix: str
    read: Callable[[], Mapping[str, Report]]

    def branches(self) -> dict[str, str]:
        return git.refs(self.remote, self.prefix, self.cwd)

    def reports(self) -> Mapping[str, Report]:
        return self.read()

    def push(self, moves: Mapping[str, str], expected: Mapping[str, str | None]) -> None:
        git.push(self.remote, moves, expected, self.cwd)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@attrs.frozen(kw_only=True)
class Plan:
    env: str
    env_ref: str
    waves: tuple[tuple[str, ...], ...]
    timeout: float
    """Seconds a wave may take to report healthy."""
    stale_after: float
    poll: float = 5.0


@attrs.define
class Outcome:
    """What a deploy or rollback did, for the exit code and ``--json``."""

    command: str
    env: str
    revision: str
    waves: list[dict[str, Any]] = attrs.field(factory=list)
    env_ref: dict[str, str | None] = attrs.field(factory=dict)
    stopped: dict[str, str] = attrs.field(factory=dict)
    """node -> why the rollout stopped at it."""

    @property
    def exit_code(self) -> int:
        return 1 if self.stopped else 0

    def as_json(self) -> dict[str, Any]:
        return {"command": self.command, "env": self.env, "revision": self.revision,
                "exit_code": self.exit_code, "waves": self.waves, "env_ref": self.env_ref,
                "stopped": self.stopped}


Say = Callable[[str], None]


def wait(estate: Estate, plan: Plan, nodes: Sequence[str], rev: str, say: Say,
         label: str) -> dict[str, tuple[str, str]]:
    """Poll until every node of `nodes` is ``ok`` at `rev`, one has ``failed`` or
    ``rolled-back`` and the others settled, or the wave timeout; node -> (state, detail)."""
    deadline = estate.monotonic() + plan.timeout
    started = estate.monotonic()
    said: dict[str, str] = {}
    while True:
        reports, now = estate.reports(), estate.now()
        states = {n: judge(rev, reports.get(n), now, plan.stale_after) for n in nodes}
        for node, (state, detail) in states.items():
            line = f"{state}: {detail}"
            if said.get(node) != line:
                said[node] = line
                say(f"{label}: {node} {line} [{estate.monotonic() - started:.0f} s]")
        settled = [s for s, _ in states.values() if s not in WAITING]
        if len(settled) == len(nodes):
            return states
        if estate.monotonic() >= deadline:
            return {n: (s, d) if s not in WAITING else
                    ("timed-out", f"{s} after {plan.timeout:.0f} s: {d}")
                    for n, (s, d) in states.items()}
        estate.sleep(plan.poll)


def deploy(estate: Estate, plan: Plan, rev: str, say: Say) -> Outcome:
    outcome = Outcome("deploy", plan.env, rev)
    branches = estate.branches()
    before = branches.get(plan.env_ref)
    outcome.env_ref = {"ref": plan.env_ref, "before": before, "after": before}
    say(f"deploy {plan.env} {short(rev)} in {len(plan.waves)} wave(s): "
        + " then ".join(f"[{', '.join(w)}]" for w in plan.waves)
        + f"; each may take {plan.timeout:.0f} s to report healthy")
    for index, wave in enumerate(plan.waves, 1):
        label = f"wave {index}/{len(plan.waves)}"
        record: dict[str, Any] = {"nodes": list(wave), "moved": []}
        outcome.waves.append(record)
        reports, now = estate.reports(), estate.now()
        if all(judge(rev, reports.get(n), now, plan.stale_after)[0] == "ok" and
               branches.get(node_ref(plan.env_ref, n), before) == rev for n in wave):
            record["status"] = "done before"
            say(f"{label} ({', '.join(wave)}): already at {short(rev)} and healthy")
            continue
        moves = {node_ref(plan.env_ref, n): rev for n in wave
                 if branches.get(node_ref(plan.env_ref, n)) != rev}
        estate.push(moves, {ref: branches.get(ref) for ref in moves})
        branches.update(moves)
        record["moved"] = sorted(moves)
        if moves:
            say(f"{label}: moved {', '.join(sorted(moves))} to {short(rev)}")
        else:
            say(f"{label}: its refs already name {short(rev)} (a rollout resumed); waiting")
        states = wait(estate, plan, wave, rev, say, label)
        record["nodes_state"] = {n: {"state": s, "detail": d} for n, (s, d) in states.items()}
        bad = {n: f"{s}: {d}" for n, (s, d) in states.items() if s != "ok"}
        if bad:
            record["status"] = "stopped"
            outcome.stopped = bad
            later = [n for w in plan.waves[index:] for n in w]
            say(f"{label} stopped: " + "; ".join(f"{n} {why}" for n, why in bad.items()))
            say(f"not moved: {', '.join(later) or 'no other node'}; {plan.env_ref} stays "
                f"{short(before)}. `edgekit status --stack {plan.env}` shows each node; "
                f"`edgekit rollback {plan.env}` moves every node back to {short(before)}; "
                f"`edgekit deploy {plan.env} {rev}` goes on once the cause is fixed")
            for rest in plan.waves[index:]:
                outcome.waves.append({"nodes": list(rest), "moved": [],
                                      "status": "not started"})
            return outcome
        record["status"] = "done"
        say(f"{label}: {', '.join(wave)} at {short(rev)} and healthy")
    if before != rev:
        estate.push({plan.env_ref: rev}, {plan.env_ref: before})
    outcome.env_ref["after"] = rev
    say(f"{plan.env_ref} = {short(rev)}: healthy on every node")
    return outcome


def rollback(estate: Estate, plan: Plan, say: Say) -> Outcome:
    branches = estate.branches()
    target = branches.get(plan.env_ref)
    outcome = Outcome("rollback", plan.env, target or "")
    outcome.env_ref = {"ref": plan.env_ref, "before": target, "after": target}
    if target is None:
        outcome.stopped = {"-": f"{plan.env_ref} does not exist: there is no revision that "
                                "was healthy on every node to go back to"}
        say(outcome.stopped["-"])
        return outcome
    nodes = [n for wave in plan.waves for n in wave]
    moves = {node_ref(plan.env_ref, n): target for n in nodes
             if branches.get(node_ref(plan.env_ref, n), target) != target}
    estate.push(moves, {ref: branches.get(ref) for ref in moves})
    say(f"rollback {plan.env} to {short(target)} ({plan.env_ref}, the last revision healthy "
        f"on every node): " + (f"moved {', '.join(sorted(moves))}" if moves else
                               "every node's ref already names it"))
    outcome.waves.append({"nodes": nodes, "moved": sorted(moves)})
    states = wait(estate, plan, nodes, target, say, "rollback")
    outcome.waves[0]["nodes_state"] = {n: {"state": s, "detail": d}
                                       for n, (s, d) in states.items()}
    outcome.stopped = {n: f"{s}: {d}" for n, (s, d) in states.items() if s != "ok"}
    if outcome.stopped:
        say("not back on every node: " + "; ".join(f"{n} {why}"
                                                    for n, why in outcome.stopped.items()))
    else:
        say(f"every node runs {short(target)} again, healthy")
    return outcome


__all__ = ["Estate", "Live", "Outcome", "Plan", "deploy", "rollback"]
