"""Where an environment is: each node's wanted and running revision, switch, health, and
how old its report is (`edgekit status`; `edgekit deploy` judges waves with the same rules).

A node is ``ok`` only when a fresh report says it runs the revision its ref names, switched
to it, with every check passing. Anything else is named: ``missing`` (never reported),
``unreadable``, ``stale`` (older than the environment's ``stale_after_seconds``, whatever it
said), ``pending`` (has not picked up its ref yet), ``switching``, ``failed``,
``rolled-back``, ``unhealthy``, ``unknown`` (no ref names a revision for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from edgekit.deploy.refs import node_ref
from edgekit.deploy.reports import NodeStatus, Report, Unreadable, summary


def short(rev: str | None) -> str:
    return rev[:12] if rev else "-"


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{max(0, int(seconds))}s ago"


def failing(report: NodeStatus) -> str:
    return "; ".join(f"{name}: {c.detail}" for name, c in report.health.items() if not c.ok)


def judge(target: str | None, report: Report, now: datetime,
          stale_after: float) -> tuple[str, str]:
    """(state, detail) of one node that should run `target` (module doc)."""
    if report is None:
        return "missing", ("no report: the node never reported (not booted yet, or it cannot "
                           "reach the logs bucket)")
    if isinstance(report, Unreadable):
        return "unreadable", f"{report.key}: {report.reason}"
    age = (now - report.written()).total_seconds()
    if age > stale_after:
        return "stale", (f"last report {ago(age)} (stale after {int(stale_after)} s): it said "
                         f"{report.switch.result}, running {short(report.running)}")
    if target is None:
        return "unknown", "no deploy ref names a revision for it"
    if report.wanted != target:
        return "pending", (f"has not picked up {short(target)} yet (its last look at the ref "
                           f"found {short(report.wanted)})")
    result = report.switch.result
    if result in ("failed", "rolled-back"):
        return result, report.switch.message
    if result == "pending":
        return "switching", (f"attempt {report.switch.attempt} of "
                             f"{report.switch.max_attempts}: {report.switch.message}")
    if report.running != target:
        return "pending", f"runs {short(report.running)}, not {short(target)}"
    if not report.healthy:
        return "unhealthy", failing(report)
    return "ok", f"running {short(target)} since {report.switch.time}"


@attrs.frozen(kw_only=True)
class NodeView:
    node: str
    follows: str
    """The branch that names the node's revision: its own, else the environment's."""
    target: str | None
    report: Report
    age: float | None
    state: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@attrs.frozen(kw_only=True)
class EnvView:
    env: str
    env_ref: str
    last_good: str | None
    """The environment's ref: the last revision healthy on every node."""
    nodes: tuple[NodeView, ...]
    time: datetime
    stale_after: float

    @property
    def ok(self) -> bool:
        return self.last_good is not None and all(n.ok for n in self.nodes)

    def rollout(self) -> dict[str, list[str]] | None:
        """revision -> nodes following it, when the nodes do not all follow the environment's
        ref's revision (a rollout under way or stopped)."""
        groups: dict[str, list[str]] = {}
        for view in self.nodes:
            groups.setdefault(view.target or "-", []).append(view.node)
        if set(groups) <= {self.last_good or "-"}:
            return None
        return groups


def evaluate(*, env: str, env_ref: str, nodes: Sequence[str], branches: Mapping[str, str],
             reports: Mapping[str, Report], now: datetime, stale_after: float) -> EnvView:
    views = []
    for node in sorted(nodes):
        own = node_ref(env_ref, node)
        follows = own if own in branches else env_ref
        target = branches.get(follows)
        report = reports.get(node)
        age = ((now - report.written()).total_seconds()
               if isinstance(report, NodeStatus) else None)
        state, detail = judge(target, report, now, stale_after)
        views.append(NodeView(node=node, follows=follows, target=target, report=report,
                              age=age, state=state, detail=detail))
    return EnvView(env=env, env_ref=env_ref, last_good=branches.get(env_ref),
                   nodes=tuple(views), time=now, stale_after=stale_after)


# -- output ----------------------------------------------------------------------------------

COLUMNS = ("NODE", "WANTED", "RUNNING", "GEN", "SWITCH", "HEALTH", "REPORT", "STATE")


def _row(view: NodeView) -> tuple[str, ...]:
    report = view.report if isinstance(view.report, NodeStatus) else None
    if report is None:
        return (view.node, short(view.target), "-", "-", "-", "-", ago(view.age), view.state)
    switch = f"{report.switch.result} #{report.switch.attempt} {report.switch.time}"
    health = ", ".join(f"{n} {'ok' if c.ok else 'FAIL'}" for n, c in report.health.items())
    generation = "-" if report.generation is None else str(report.generation)
    return (view.node, short(view.target), short(report.running), generation, switch,
            health or "-", ago(view.age), view.state)


def render(view: EnvView) -> str:
    lines = [f"{view.env}: {view.env_ref} = {short(view.last_good)} (the last revision "
             f"healthy on every node)" if view.last_good else
             f"{view.env}: no {view.env_ref} yet (push it: the first boot of every node "
             "builds it)"]
    rollout = view.rollout()
    if rollout:
        spread = "; ".join(f"{short(rev)} on {', '.join(nodes)}"
                           for rev, nodes in sorted(rollout.items()))
        newest = [r for r in rollout if r not in (view.last_good, "-")]
        lines.append(f"rollout under way or stopped: {spread}")
        if newest:
            lines.append(f"  resume: edgekit deploy {view.env} {newest[0]}    undo: edgekit "
                         f"rollback {view.env} (back to {short(view.last_good)})")
    rows = [COLUMNS, *(_row(n) for n in view.nodes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    lines += [f"  {n.node}: {n.state}: {n.detail}" for n in view.nodes if not n.ok]
    lines.append(f"{view.env}: {'ok' if view.ok else 'NOT OK'}: "
                 f"{sum(n.ok for n in view.nodes)} of {len(view.nodes)} node(s) run their "
                 "revision, healthy")
    return "\n".join(lines)


def as_json(view: EnvView) -> dict[str, Any]:
    reports = summary({n.node: n.report for n in view.nodes})
    return {
        "env": view.env, "ok": view.ok, "time": view.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stale_after_seconds": view.stale_after,
        "last_good": {"ref": view.env_ref, "revision": view.last_good},
        "rollout": view.rollout(),
        "nodes": [{"node": n.node, "follows": n.follows, "wanted": n.target,
                   "state": n.state, "detail": n.detail,
                   "age_seconds": None if n.age is None else round(n.age, 1),
                   "report": reports[n.node]} for n in view.nodes],
    }
