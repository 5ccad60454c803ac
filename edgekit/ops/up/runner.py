"""`edgekit up ENV`: the whole first apply of an environment, in eleven steps (ADR 0031).

Each step first reads where the estate is (the state bucket, the stacks' state through
their plans, the remote deploy ref, the imported values in ``cue/``, the bucket's key and
status objects) and does only what is missing, so running it again after a failure or an
interruption continues where the estate is. Plans go through the same machinery as
`edgekit plan/apply` (`edgekit.ops.commands`); a plan that would replace or destroy
anything stops the run: `up` only ever creates and updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from edgekit.core.errors import EdgekitError
from edgekit.core.gates import GATES_FILE, PRIMARY_UP
from edgekit.estate.account_stacks import BOOTSTRAP_STATE
from edgekit.ops.commands import apply, plan
from edgekit.ops.progress import Progress
from edgekit.ops.summary import StackSummary, counts
from edgekit.ops.tofu import OpsError, Tofu
from edgekit.ops.up import steps as st
from edgekit.ops.up.deploy_ref import DeployRef
from edgekit.ops.up.probes import Clock, Probe, Seen, wait_for
from edgekit.ops.up.steps import StepFailed, StepResult, UpResult, WaitTimedOut

if TYPE_CHECKING:
    from edgekit.cue.model import Estate


@attrs.frozen
class UpSettings:
    env: str
    dry_run: bool = False
    push: bool = True
    remote: str = "origin"
    timeout: float = 45 * 60.0
    """Seconds each wait may take (mesh keys, the primary)."""
    interval: float = 15.0
    """Seconds between two questions of a wait."""


@attrs.frozen
class Hooks:
    """What `Up` needs from outside: synth, the account check, the probes, time."""

    synth: Callable[[], None]
    token_check: Callable[[Mapping[str, Mapping[str, Any]]], str]
    """Checks the Cloudflare token against the documents' needs; returns what it saw."""
    bucket_exists: Callable[[str, str], bool]
    """``(endpoint, bucket)``: whether the state bucket exists (raises when it cannot tell)."""
    primary_probe: Callable[[Estate, str], Probe]
    """``(estate, pushed commit)``: what says the primary is up."""
    mesh_probe: Callable[[Estate, Sequence[str]], Probe]
    import_outputs: Callable[[str], list[str]]
    """``tofu output -json`` text → imported into cue/; returns what changed."""
    import_mesh_keys: Callable[[Estate], list[str]]
    """The published keys → cue/; returns what changed (raises on a changed key)."""
    ca_probe: Callable[[Estate], Probe]
    """What says the primary published its TLS authority (ADR 0025)."""
    import_ca: Callable[[Estate], list[str] | None]
    """The published authority → cue/ as ``pg_tls_ca``; what changed ([] nothing new), or
    None when nothing is published (raises on a changed authority: trust on first use)."""
    committed_paths: Callable[[], list[Path]]
    """The files and folders `up` writes (imported values, exports, generated files)."""
    load_estate: Callable[[], Estate]
    stack_order: Callable[[], tuple[list[str], dict[str, list[str]]]]
    """The environment and the stacks it depends on, in order, and every stack's
    dependencies (from the manifest synth wrote)."""
    clock: Clock


def _backend(document: Mapping[str, Any]) -> Mapping[str, Any]:
    backend: Mapping[str, Any] = document.get("terraform", {}).get("backend", {})
    return backend


class Up:
    def __init__(self, tofu: Tofu, settings: UpSettings, hooks: Hooks,
                 progress: Progress) -> None:
        self.tofu = tofu
        self.workspace = tofu.workspace
        self.s = settings
        self.hooks = hooks
        self.progress = progress
        self.deps: dict[str, list[str]] = {}
        self.order: list[str] = []
        self.result = UpResult.start(settings.env, settings.dry_run)
        self.estate: Estate | None = None
        self.ref: DeployRef | None = None
        self.primary_up = False

    # -- driving ---------------------------------------------------------------------------

    def run(self) -> UpResult:
        runs: list[Callable[[StepResult], None]] = [
            self.preflight, self.bootstrap, self.account, self.deploy_ref, self.environment,
            self.outputs, self.mesh_keys, self.push, self.wait_primary, self.pg_tls_ca,
            self.hyperdrive]
        for step, run in zip(self.result.steps, runs, strict=True):
            started = time.perf_counter()
            self._say(step, "…")
            try:
                run(step)
            except (StepFailed, EdgekitError) as err:  # OpsError, CUE, synth, imports
                step.status, step.detail = st.FAILED, str(err)
                self.result.failed_step = step.number
            except WaitTimedOut as err:
                step.status, step.detail = st.TIMED_OUT, str(err)
                self.result.timed_out = True
            except KeyboardInterrupt:
                step.status, step.detail = st.FAILED, "interrupted"
                self.result.interrupted = True
                self.result.failed_step = step.number
            finally:
                step.seconds = time.perf_counter() - started
            self._say(step, f"{step.status}: {step.detail}" if step.detail else step.status)
            if step.status in (st.FAILED, st.TIMED_OUT):
                break
        return self.result

    def _say(self, step: StepResult, text: str) -> None:
        took = f" ({step.seconds:.1f}s)" if step.seconds else ""
        self.progress.note(f"[{step.number}/{len(st.STEPS)}] {step.name}: {text}{took}")

    @property
    def env(self) -> str:
        return self.s.env

    def _estate(self) -> Estate:
        if self.estate is None:
            self.estate = self.hooks.load_estate()
        return self.estate

    def _ref(self) -> DeployRef:
        assert self.ref is not None  # set by preflight
        return self.ref

    # -- plan and apply, never replace or destroy --------------------------------------------

    def _plan(self, stack: str, exclude: Sequence[str] = ()) -> StackSummary:
        extra = {stack: [f"-exclude={a}" for a in exclude]} if exclude else None
        (summary,) = plan(self.tofu, [stack], self.progress, extra)
        if summary.status == "error":
            raise StepFailed(f"`tofu plan` of {stack} failed:\n{summary.error}")
        # A tainted resource's create failed: replacing it finishes what `up` started.
        replaced = [a for a in summary.replaced if a not in summary.tainted]
        if replaced or summary.destroyed:
            what = [f"replace {a}" for a in replaced]
            what += [f"destroy {a}" for a in summary.destroyed]
            raise StepFailed(
                f"the plan of {stack} would {'; '.join(what)}: `edgekit up` only creates and "
                "updates. Look at it with `edgekit plan`, and if it is meant, apply it with "
                "`edgekit apply`; then run `edgekit up` again")
        return summary

    def _plan_and_apply(self, stack: str, exclude: Sequence[str] = ()) -> str:
        summary = self._plan(stack, exclude)
        if summary.status == "no-changes":
            return f"{stack}: no changes"
        if self.s.dry_run:
            return f"{stack}: would apply {counts(summary)}"
        retried = f"; re-created after a failed create: {', '.join(summary.tainted)}" \
            if summary.tainted else ""
        done = apply(self.tofu, [stack], self.deps, self.progress,
                     lambda _: set(summary.replaced) <= set(summary.tainted)
                     and not summary.destroyed)
        if done.failed:
            raise StepFailed(f"`tofu apply` of {stack} failed:\n{done.error}")
        return f"{stack}: applied ({counts(summary)}){retried}"

    # -- the steps ---------------------------------------------------------------------------

    def preflight(self, step: StepResult) -> None:
        estate = self._estate()
        self.ref = DeployRef(self.workspace.root, self.s.remote, estate.env.deploy.ref)
        self.hooks.synth()
        self.order, self.deps = self.hooks.stack_order()
        documents = {s: self.workspace.document(s) for s in self.order}
        from edgekit.ops.secrets import check_variables

        check_variables(self.workspace, self.order, self.tofu.env)
        for stack in self._local_stacks():  # the bootstrap state, wherever cdktf.out is
            path = _backend(self.workspace.document(stack)).get("local", {}).get("path")
            if isinstance(path, str) and path.endswith(BOOTSTRAP_STATE):
                self.tofu.init_args[stack] = [
                    f"-backend-config=path={self.workspace.root / BOOTSTRAP_STATE}"]
        self._ref().check_repository()
        token = self.hooks.token_check(documents)
        step.status, step.detail = st.DONE, (f"stacks {' → '.join(self.order)}; {token}")

    def _local_stacks(self) -> list[str]:
        return [s for s in self.order if s != self.env
                and "s3" not in _backend(self.workspace.document(s))]

    def _state_bucket(self) -> tuple[str, str] | None:
        s3 = _backend(self.workspace.document(self.env)).get("s3")
        if not isinstance(s3, Mapping):
            return None
        return str(s3.get("endpoints", {}).get("s3", "")), str(s3["bucket"])

    def bootstrap(self, step: StepResult) -> None:
        where = self._state_bucket()
        if where is None:
            step.status, step.detail = st.SKIPPED, f"{self.env} keeps no state in a bucket"
            return
        endpoint, bucket = where
        if self.hooks.bucket_exists(endpoint, bucket):
            step.status, step.detail = st.SKIPPED, f"state bucket {bucket} exists"
            return
        local = self._local_stacks()
        if not local:
            raise StepFailed(f"state bucket {bucket} does not exist at {endpoint} and no stack "
                             f"{self.env} depends on creates it")
        lines = [self._plan_and_apply(s) for s in local]
        if not self.s.dry_run and not self.hooks.bucket_exists(endpoint, bucket):
            raise StepFailed(f"{', '.join(local)} applied, but bucket {bucket} is still "
                             f"missing at {endpoint}")
        step.status = st.PLANNED if self.s.dry_run else st.DONE
        step.detail = "; ".join(lines)

    def _bucket_ready(self) -> bool:
        where = self._state_bucket()
        return where is None or self.hooks.bucket_exists(*where)

    def account(self, step: StepResult) -> None:
        stacks = [s for s in self.order if s != self.env and s not in self._local_stacks()]
        if not stacks:
            step.status, step.detail = st.SKIPPED, "no stack before the environment"
            return
        if self.s.dry_run and not self._bucket_ready():
            step.status = st.WOULD
            step.detail = f"plan and apply {', '.join(stacks)} once the state bucket exists"
            return
        lines = [self._plan_and_apply(s) for s in stacks]
        changed = any(": no changes" not in line for line in lines)
        step.status = (st.PLANNED if self.s.dry_run else st.DONE) if changed else st.UNCHANGED
        step.detail = "; ".join(lines)

    def deploy_ref(self, step: StepResult) -> None:
        ref = self._ref()
        remote = ref.remote_head()
        if remote is not None:
            step.status, step.detail = st.SKIPPED, f"{ref.remote} {ref.ref} is at {remote[:12]}"
            return
        if self.s.dry_run:
            step.status, step.detail = st.WOULD, f"push HEAD to {ref.remote} {ref.ref}"
        elif not self.s.push:
            step.status = st.PRINTED
            step.detail = f"run `{ref.push_command()}`: the nodes' first boot pulls {ref.ref}"
        else:
            head, _ = ref.push()
            step.status, step.detail = st.DONE, f"pushed {head[:12]} to {ref.remote} {ref.ref}"

    def _gated(self) -> list[str]:
        path = self.workspace.stack_dir(self.env) / GATES_FILE
        if not path.is_file():
            return []
        gates: dict[str, Any] = orjson.loads(path.read_bytes())
        return list(gates.get(PRIMARY_UP, {}).get("addresses", []))

    def environment(self, step: StepResult) -> None:
        if self.s.dry_run and not self._bucket_ready():
            step.status = st.WOULD
            step.detail = f"plan and apply {self.env} once the state bucket exists"
            return
        gated = self._gated()
        held = gated if gated and not self._primary_is_up() else []
        line = self._plan_and_apply(self.env, exclude=held)
        if held:
            line += f" (held until the primary is up: {', '.join(held)})"
        if ": no changes" in line:
            step.status = st.UNCHANGED
        else:
            step.status = st.PLANNED if self.s.dry_run else st.DONE
        step.detail = line

    def _primary_is_up(self) -> bool:
        """One question to the probe, for a run after the primary came up."""
        if self.primary_up:
            return True
        try:
            seen = self.hooks.primary_probe(self._estate(), self._ref().head()).check()
        except OpsError:
            return False
        self.primary_up = seen.ready
        return seen.ready

    def outputs(self, step: StepResult) -> None:
        if self.s.dry_run:
            step.status = st.WOULD
            step.detail = f"import `tofu output -json` of {self.env} into cue/outputs/"
            return
        done = self.tofu.run(self.env, "output", "-json", "-no-color", check=True)
        changed = self.hooks.import_outputs(done.stdout)
        self.estate = None  # re-read: the imported values are in the export now
        step.status = st.DONE if changed else st.UNCHANGED
        step.detail = (f"imported; wrote {', '.join(changed)}" if changed
                       else "nothing new: cue/outputs already has these values")

    def mesh_keys(self, step: StepResult) -> None:
        from edgekit.estate.mesh_plan import mesh_plan

        estate = self._estate()
        nodes = sorted(mesh_plan(estate.env).addresses)
        if len(nodes) < 2:
            step.status = st.SKIPPED
            step.detail = f"{len(nodes)} mesh node(s): no peers to know"
            return
        missing = [n for n in nodes if n not in estate.env.mesh.public_keys]
        if not missing:
            step.status, step.detail = st.UNCHANGED, "every mesh node's key is in cue/"
            return
        if self.s.dry_run:
            step.status = st.WOULD
            step.detail = f"wait for the keys of {', '.join(missing)}, import them"
            return
        self._wait(step, self.hooks.mesh_probe(estate, nodes))
        changed = self.hooks.import_mesh_keys(estate)
        self.estate = None
        step.status = st.DONE
        step.detail = f"imported the keys of {', '.join(missing)}; wrote {', '.join(changed)}"

    def push(self, step: StepResult) -> None:
        ref = self._ref()
        if self.s.dry_run:
            step.status, step.detail = st.WOULD, f"commit what edgekit wrote, push to {ref.ref}"
            return
        step.status, step.detail = self._commit_and_push(
            f"{self.env}: observed outputs and mesh keys (edgekit up)",
            "waiting for the primary next")

    def _commit_and_push(self, message: str, then: str) -> tuple[str, str]:
        """Commit the files `up` wrote, push HEAD to the deploy ref (or print the push);
        the step's (status, detail)."""
        ref = self._ref()
        commit = ref.commit(self.hooks.committed_paths(), message)
        head = ref.head()
        made = f"committed {commit[:12]}; " if commit else ""
        if ref.remote_head() == head:
            return (st.DONE if commit else st.UNCHANGED,
                    f"{made}{ref.remote} {ref.ref} is at {head[:12]}")
        if not self.s.push:
            return st.PRINTED, f"{made}run `{ref.push_command()}`; {then}"
        ref.push()
        return st.DONE, f"{made}pushed {head[:12]} to {ref.ref}"

    def wait_primary(self, step: StepResult) -> None:
        if self.s.dry_run:
            step.status, step.detail = st.WOULD, "wait for the primary to report it is up"
            return
        probe = self.hooks.primary_probe(self._estate(), self._ref().head())
        seen = self._wait(step, probe)
        self.primary_up = True
        step.status, step.detail = st.DONE, seen.detail

    def pg_tls_ca(self, step: StepResult) -> None:
        from edgekit.constructs.pg_tls import CA_OUTPUT
        from edgekit.cue.pg_ca import object_key

        estate = self._estate()
        primary = estate.env.primary
        if primary is None:
            step.status, step.detail = st.SKIPPED, f"{self.env} has no self-hosted primary"
            return
        key = object_key(self.env, primary)
        known = isinstance(estate.env.observed_value(CA_OUTPUT), str)
        if self.s.dry_run:
            step.status = st.WOULD
            step.detail = (f"check that {key} is still the pg_tls_ca in cue/" if known else
                           f"wait for {key}, import it as pg_tls_ca, commit and push")
            return
        if not known:
            self._wait(step, self.hooks.ca_probe(estate))
        changed = self.hooks.import_ca(estate)
        if changed is None and not known:
            raise StepFailed(f"{key} was there and is gone: is something deleting the "
                             "logs bucket's pg-tls/ keys? Run `edgekit up` again")
        if not changed:
            step.status = st.UNCHANGED
            step.detail = ("pg_tls_ca in cue/ is the primary's published authority"
                           if changed is not None else
                           f"pg_tls_ca is in cue/; nothing at {key} now (the primary "
                           "publishes it again at its next certificate check)")
            return
        self.estate = None
        status, pushed = self._commit_and_push(
            f"{self.env}: the primary's Postgres authority (edgekit up)",
            "Hyperdrive is applied next")
        step.status = st.PRINTED if status == st.PRINTED else st.DONE
        step.detail = f"imported {primary}'s authority; wrote {', '.join(changed)}; {pushed}"

    def hyperdrive(self, step: StepResult) -> None:
        if self.s.dry_run:
            gated = self._gated()
            step.status = st.WOULD
            step.detail = (f"create {', '.join(gated)} once the primary is up" if gated
                           else f"plan {self.env} again after the outputs import")
            return
        self.hooks.synth()  # the imported values change what the stack holds
        line = self._plan_and_apply(self.env)
        step.status = st.UNCHANGED if ": no changes" in line else st.DONE
        step.detail = line

    # -- waiting ---------------------------------------------------------------------------

    def _wait(self, step: StepResult, probe: Probe) -> Seen:
        step.waited_for = probe.what
        last: list[tuple[str, float]] = []

        def report(seen: Seen, waited: float) -> None:
            # every change, and a heartbeat a minute, so CI logs show it is alive
            if not last or last[-1][0] != seen.detail or waited - last[-1][1] >= 60:
                self.progress.note(f"[{step.number}/{len(st.STEPS)}] {step.name}: waiting for "
                                   f"{probe.what}: {seen.detail} ({_clock(waited)} of "
                                   f"{_clock(self.s.timeout)})")
                last.append((seen.detail, waited))

        with self._live(f"waiting for {probe.what}"):
            seen, waited = wait_for(probe, timeout=self.s.timeout, interval=self.s.interval,
                                    clock=self.hooks.clock, report=report)
        if not seen.ready:
            raise WaitTimedOut(f"gave up after {_clock(waited)} waiting for {probe.what}; "
                               f"last seen: {seen.detail}. Nothing was undone: run "
                               f"`edgekit up {self.env}` again to keep waiting")
        return seen

    @contextmanager
    def _live(self, text: str) -> Iterator[None]:
        with self.progress.step(self.env, text):
            yield


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
