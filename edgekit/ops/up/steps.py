"""The steps of `edgekit up`, their results, and its exit codes (ADR 0031)."""

from __future__ import annotations

from typing import Any

import attrs

STEPS: tuple[tuple[str, str], ...] = (
    ("preflight", "synthesize; check credentials, the git remote and the Cloudflare token"),
    ("bootstrap", "create the state bucket (bootstrap stack, local state) if it is missing"),
    ("account", "plan and apply the stacks the environment builds on (zone)"),
    ("deploy-ref", "make sure {ref} exists on the remote: the nodes' first boot pulls it"),
    ("environment", "plan and apply {env}, without what waits for the primary"),
    ("outputs", "tofu output -json of {env} into cue/outputs/{env}.cue; regenerate"),
    ("mesh-keys", "wait for the mesh nodes' public keys; import them (peers)"),
    ("push", "commit what edgekit wrote, push it to {ref}"),
    ("wait-primary", "wait for the primary to report it is up"),
    ("pg-tls-ca", "wait for the primary's TLS authority; import it (Hyperdrive pins it)"),
    ("hyperdrive", "plan and apply {env} again: what waited for the primary"),
)
"""(name, what it does) in order; a step's number is its index + 1."""

EXIT_DONE = 0
EXIT_USAGE = 2
EXIT_TIMED_OUT = 3
EXIT_FAILED_BASE = 10
"""Failed at step N: exit 10 + N (11 preflight … 21 hyperdrive)."""
EXIT_INTERRUPTED = 130

DONE, UNCHANGED, SKIPPED, PLANNED, WOULD, PRINTED = (
    "done", "unchanged", "skipped", "planned", "would", "printed")
FAILED, TIMED_OUT, NOT_RUN = "failed", "timed-out", "not-run"


def number_of(name: str) -> int:
    return [n for n, _ in STEPS].index(name) + 1


def describe(name: str, env: str, ref: str) -> str:
    return dict(STEPS)[name].format(env=env, ref=ref)


@attrs.define
class StepResult:
    number: int
    name: str
    status: str = NOT_RUN
    detail: str = ""
    seconds: float = 0.0
    waited_for: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"number": self.number, "name": self.name,
                                "status": self.status, "detail": self.detail,
                                "seconds": round(self.seconds, 2)}
        if self.waited_for:
            data["waited_for"] = self.waited_for
        return data


class StepFailed(Exception):
    """The current step cannot finish; the message says why and what to do."""


class WaitTimedOut(Exception):
    """A wait ran out of time; the message says what was last seen."""


@attrs.define
class UpResult:
    env: str
    steps: list[StepResult]
    dry_run: bool = False
    failed_step: int | None = None
    timed_out: bool = False
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.timed_out:
            return EXIT_TIMED_OUT
        if self.failed_step is not None:
            return EXIT_FAILED_BASE + self.failed_step
        return EXIT_DONE

    @property
    def result(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.timed_out:
            return "timed-out"
        if self.failed_step is not None:
            return "failed"
        return "dry-run" if self.dry_run else "done"

    @classmethod
    def start(cls, env: str, dry_run: bool = False) -> UpResult:
        """Every step not run yet."""
        return cls(env, [StepResult(i + 1, name) for i, (name, _) in enumerate(STEPS)],
                   dry_run=dry_run)

    def fail_before_the_steps(self, why: str) -> None:
        """What stops `up` before its first step runs (the synth) fails that step."""
        first = self.steps[0]
        first.status, first.detail, self.failed_step = FAILED, why, first.number

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"command": "up", "env": self.env, "result": self.result,
                                "exit_code": self.exit_code, "dry_run": self.dry_run,
                                "steps": [s.as_json() for s in self.steps]}
        if self.failed_step is not None:
            data["failed_step"] = self.failed_step
        return data
