"""What a plan (or a drift check) means, from ``tofu show -json``, and three ways to say it:
text for a terminal (coloured only on a TTY with ``NO_COLOR`` unset), Markdown for a
pull-request comment, and one JSON document for CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs


@attrs.define
class StackSummary:
    stack: str
    status: str = "no-changes"
    """``changes``, ``no-changes``, ``waiting`` (reads the state of a stack with changes not
    applied yet: planned after that apply), ``drift``, ``error``."""
    add: int = 0
    change: int = 0
    replace: int = 0
    destroy: int = 0
    imports: int = 0
    replaced: list[str] = attrs.field(factory=list)
    tainted: list[str] = attrs.field(factory=list)
    """Of `replaced`, those replaced because their create failed (tofu marked them
    tainted): the object never became what the configuration says."""
    destroyed: list[str] = attrs.field(factory=list)
    drifted: list[dict[str, str]] = attrs.field(factory=list)
    outputs_changed: list[str] = attrs.field(factory=list)
    waits_for: list[str] = attrs.field(factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def risky(self) -> bool:
        return bool(self.replace or self.destroy)

    def as_json(self) -> dict[str, Any]:
        data = {"stack": self.stack, "status": self.status, "add": self.add,
                "change": self.change, "replace": self.replace, "destroy": self.destroy,
                "import": self.imports, "replaced": self.replaced,
                "destroyed": self.destroyed, "outputs_changed": self.outputs_changed,
                "seconds": round(self.seconds, 2)}
        if self.drifted:
            data["drifted"] = self.drifted
        if self.waits_for:
            data["waits_for"] = self.waits_for
        if self.error:
            data["error"] = self.error
        return data


def from_plan(stack: str, plan: dict[str, Any]) -> StackSummary:
    summary = StackSummary(stack)
    for rc in plan.get("resource_changes", []):
        change = rc.get("change", {})
        actions = change.get("actions", [])
        address = str(rc.get("address", ""))
        if change.get("importing"):
            summary.imports += 1
        if actions == ["create"]:
            summary.add += 1
        elif actions == ["update"]:
            summary.change += 1
        elif sorted(actions) == ["create", "delete"]:
            summary.replace += 1
            summary.replaced.append(address)
            if rc.get("action_reason") == "replace_because_tainted":
                summary.tainted.append(address)
        elif actions == ["delete"]:
            summary.destroy += 1
            summary.destroyed.append(address)
    for name, change in sorted(plan.get("output_changes", {}).items()):
        if change.get("actions") not in (["no-op"], None):
            summary.outputs_changed.append(name)
    for rd in plan.get("resource_drift", []):
        actions = rd.get("change", {}).get("actions", [])
        kind = "deleted" if actions == ["delete"] else "changed"
        summary.drifted.append({"address": str(rd.get("address", "")), "drift": kind})
    summary.replaced.sort()
    summary.destroyed.sort()
    summary.drifted.sort(key=lambda d: d["address"])
    changed = (summary.add or summary.change or summary.replace or summary.destroy
               or summary.imports or summary.outputs_changed)
    summary.status = "changes" if changed else "no-changes"
    return summary


def counts(s: StackSummary) -> str:
    text = (f"{s.add} to add, {s.change} to change, {s.replace} to replace, "
            f"{s.destroy} to destroy")
    return text + (f", {s.imports} to import" if s.imports else "")


def text_lines(s: StackSummary, kind: str = "plan") -> list[tuple[str, str]]:
    """(style, line) pairs; the style is a Rich style or ``""``."""
    if s.status == "error":
        return [("bold red", f"{s.stack}: error"), *(("red", "  " + line)
                                                     for line in s.error.splitlines())]
    if kind == "drift":
        if not s.drifted and not s.outputs_changed:
            return [("green", f"{s.stack}: no drift")]
        lines = [("yellow", f"{s.stack}: {len(s.drifted)} changed outside OpenTofu")]
        lines += [("yellow", f"  ~ {d['address']} ({d['drift']})") for d in s.drifted]
        if s.outputs_changed:
            lines.append(("yellow", f"  outputs no longer current: {', '.join(s.outputs_changed)}"))
        return lines
    if s.status == "no-changes":
        return [("green", f"{s.stack}: no changes")]
    if s.status == "waiting":
        after = ", ".join(s.waits_for)
        return [("yellow", f"{s.stack}: waits for {after} (reads its state): planned again "
                 f"after `edgekit apply` applies {after}")]
    style = "bold red" if s.risky else "yellow"
    lines = [(style, f"{s.stack}: {counts(s)}")]
    lines += [("bold red", f"  -/+ {a} (replace)") for a in s.replaced]
    lines += [("bold red", f"  -   {a} (destroy)") for a in s.destroyed]
    if s.outputs_changed:
        lines.append(("", f"  outputs: {', '.join(s.outputs_changed)}"))
    return lines


def markdown(summaries: Sequence[StackSummary], kind: str = "plan") -> str:
    title = "edgekit drift" if kind == "drift" else "edgekit plan"
    out = [f"### {title}", "", "| stack | status | add | change | replace | destroy |",
           "|---|---|---:|---:|---:|---:|"]
    for s in summaries:
        status = {"changes": "changes", "no-changes": "no changes", "error": "**error**",
                  "drift": "**drift**"}.get(s.status, s.status)
        if s.waits_for:
            status = f"waits for {', '.join(s.waits_for)}"
        if s.risky:
            status = "**replace/destroy**"
        out.append(f"| `{s.stack}` | {status} | {s.add} | {s.change} | {s.replace} | "
                   f"{s.destroy} |")
    details = [(s.stack, a, "replace") for s in summaries for a in s.replaced]
    details += [(s.stack, a, "destroy") for s in summaries for a in s.destroyed]
    details += [(s.stack, d["address"], f"drift ({d['drift']})") for s in summaries
                for d in s.drifted]
    if details:
        out += ["", "| stack | address | action |", "|---|---|---|"]
        out += [f"| `{st}` | `{a}` | {what} |" for st, a, what in details]
    errors = [s for s in summaries if s.error]
    for s in errors:
        out += ["", f"<details><summary>error in <code>{s.stack}</code></summary>", "",
                "```", s.error.strip(), "```", "</details>"]
    return "\n".join(out) + "\n"


def exit_code(summaries: Sequence[StackSummary]) -> int:
    """0 no changes, 2 changes (or drift, or a stack waiting for one), 1 any error."""
    if any(s.status == "error" for s in summaries):
        return 1
    if any(s.status in ("changes", "drift", "waiting") for s in summaries):
        return 2
    return 0
