"""plan, apply and drift over stacks in dependency order, with the real `tofu`.

* plan: ``tofu plan -detailed-exitcode -out`` per stack; the plan file and what it was
  made from (a hash of the stack folder) are kept under ``.edgekit/plans/``.
* apply: applies those saved plans in order; refuses a plan whose stack folder changed
  since (re-synthesized), or that was made before a stack it depends on was applied;
  `tofu` itself refuses a plan whose state moved on. Asks before a replace or destroy
  unless told yes; stops at the first failure.
* drift: ``tofu plan -refresh-only`` per stack: what changed outside OpenTofu.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson

from edgekit.core.files import write_atomic
from edgekit.ops.progress import Progress
from edgekit.ops.summary import StackSummary, counts, from_plan
from edgekit.ops.tofu import OpsError, Tofu

PLAN_FLAGS = ("-input=false", "-no-color", "-lock-timeout=60s", "-detailed-exitcode")


def _failed(stack: str, text: str, started: float) -> StackSummary:
    return StackSummary(stack, status="error", error=text.strip() or "tofu failed",
                        seconds=time.perf_counter() - started)


def plan(tofu: Tofu, stacks: Sequence[str], progress: Progress,
         extra: Mapping[str, Sequence[str]] | None = None) -> list[StackSummary]:
    """Plan each stack in order. A stack that reads the state of a stack planned with
    changes in this run waits: its plan would read state that is about to change (or does
    not exist yet, on a first deploy); `apply` stops before it and says to plan again.
    `extra` adds arguments to a stack's ``tofu plan`` (`edgekit up`: ``-exclude=…``)."""
    workspace = tofu.workspace
    summaries = []
    pending: set[str] = set()  # stacks of this run whose state will change
    for stack in stacks:
        started = time.perf_counter()
        plan_file, meta = workspace.plan_file(stack), workspace.plan_meta(stack)
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        plan_file.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        try:
            waits = sorted(workspace.remote_reads(stack) & pending)
        except OpsError as err:
            summaries.append(_failed(stack, str(err), started))
            continue
        if waits:
            pending.add(stack)
            write_atomic(meta, orjson.dumps({
                "stack": stack, "config": workspace.config_hash(stack), "created": time.time(),
                "changes": True, "risky": False, "replaced": [], "destroyed": [],
                "waits_for": waits,
            }))
            summaries.append(StackSummary(stack, status="waiting", waits_for=waits))
            continue
        try:
            with progress.step(stack, "init"):
                tofu.init(stack)
            with progress.step(stack, "plan"):
                done = tofu.run(stack, "plan", *PLAN_FLAGS, *(extra or {}).get(stack, ()),
                                f"-out={plan_file}")
            if done.returncode not in (0, 2):
                summaries.append(_failed(stack, tofu.redact(done.stderr), started))
                continue
            with progress.step(stack, "summary"):
                summary = from_plan(stack, tofu.show_json(stack, plan_file))
        except OpsError as err:
            summaries.append(_failed(stack, str(err), started))
            continue
        summary.seconds = time.perf_counter() - started
        if summary.status == "changes":
            pending.add(stack)
        write_atomic(meta, orjson.dumps({
            "stack": stack, "config": workspace.config_hash(stack), "created": time.time(),
            "changes": summary.status == "changes", "risky": summary.risky,
            "replaced": summary.replaced, "destroyed": summary.destroyed,
        }))
        summaries.append(summary)
    return summaries


def drift(tofu: Tofu, stacks: Sequence[str], progress: Progress) -> list[StackSummary]:
    workspace = tofu.workspace
    summaries = []
    for stack in stacks:
        started = time.perf_counter()
        scratch = workspace.home / "drift" / f"{stack}.tfplan"
        scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            with progress.step(stack, "init"):
                tofu.init(stack)
            with progress.step(stack, "refresh"):
                done = tofu.run(stack, "plan", "-refresh-only", *PLAN_FLAGS, f"-out={scratch}")
            if done.returncode not in (0, 2):
                summaries.append(_failed(stack, tofu.redact(done.stderr), started))
                continue
            summary = from_plan(stack, tofu.show_json(stack, scratch))
        except OpsError as err:
            summaries.append(_failed(stack, str(err), started))
            continue
        finally:
            scratch.unlink(missing_ok=True)
        # Resources changed outside OpenTofu, or outputs that no longer match the world
        # (e.g. a value read from another stack's state that changed since this apply).
        summary.status = "drift" if summary.drifted or summary.outputs_changed else "no-changes"
        summary.seconds = time.perf_counter() - started
        summaries.append(summary)
    return summaries


@attrs.frozen
class ApplyResult:
    applied: tuple[str, ...]
    unchanged: tuple[str, ...]
    failed: str | None = None
    error: str = ""
    waiting: str | None = None
    """The first stack that waited for this apply: plan it (and what follows) again."""


Confirm = Callable[[str], bool]


def apply(tofu: Tofu, stacks: Sequence[str], deps: Mapping[str, Sequence[str]],
          progress: Progress, confirm: Confirm) -> ApplyResult:
    """Apply saved plans in order; the first problem stops the run."""
    workspace = tofu.workspace
    metas = {stack: _meta(tofu, stack) for stack in stacks}  # every plan checked first
    applied: list[str] = []
    unchanged: list[str] = []
    applied_at: dict[str, float] = {}

    def stop(stack: str, message: str) -> ApplyResult:
        return ApplyResult(tuple(applied), tuple(unchanged), stack, message)

    for stack in stacks:
        meta = metas[stack]
        if meta.get("waits_for"):
            return ApplyResult(tuple(applied), tuple(unchanged), waiting=stack)
        # Only a stack whose state this one reads can make its plan stale; an order-only
        # dependency (`add_dependency`) cannot.
        reads = workspace.remote_reads(stack) & set(deps.get(stack, ()))
        newer = sorted(d for d in reads if applied_at.get(d, 0.0) > meta["created"])
        if newer:
            return stop(stack, f"the plan of {stack!r} was made before {', '.join(newer)} "
                        "was applied; run `edgekit plan` again")
        if not meta["changes"]:
            unchanged.append(stack)
            continue
        if meta["risky"]:
            what = [f"replace {a}" for a in meta["replaced"]]
            what += [f"destroy {a}" for a in meta["destroyed"]]
            if not confirm(f"{stack}: " + "; ".join(what)):
                return stop(stack, f"not confirmed: {stack!r} would replace or destroy "
                            "resources (pass --yes to apply without asking)")
        plan_file = workspace.plan_file(stack)
        started = time.perf_counter()
        try:
            tofu.init(stack)  # cached: puts back the lock file a re-synth removed
        except OpsError as err:
            return stop(stack, str(err))
        with progress.step(stack, "apply"):
            done = tofu.run(stack, "apply", "-input=false", "-no-color", "-lock-timeout=60s",
                            str(plan_file))
        if done.returncode != 0:
            return stop(stack, tofu.redact(done.stderr or done.stdout).strip())
        applied.append(stack)
        applied_at[stack] = time.time()
        plan_file.unlink(missing_ok=True)
        workspace.plan_meta(stack).unlink(missing_ok=True)
        progress.note(f"applied {stack} in {time.perf_counter() - started:.1f}s")
    return ApplyResult(tuple(applied), tuple(unchanged))


def _meta(tofu: Tofu, stack: str) -> dict[str, Any]:
    workspace = tofu.workspace
    path: Path = workspace.plan_meta(stack)
    if not path.is_file():
        raise OpsError(f"no saved plan for stack {stack!r}; run `edgekit plan {stack}` first")
    meta: dict[str, Any] = orjson.loads(path.read_bytes())
    if not meta.get("waits_for") and not workspace.plan_file(stack).is_file():
        raise OpsError(f"no saved plan for stack {stack!r}; run `edgekit plan {stack}` first")
    if meta.get("config") != workspace.config_hash(stack):
        raise OpsError(f"the saved plan of {stack!r} is stale: the stack changed since "
                       f"`edgekit plan` (re-synthesized); run `edgekit plan {stack}` again")
    return meta


def describe(summary: StackSummary) -> str:
    return f"{summary.stack}: {counts(summary)}"
