"""`edgekit up ENV`: registration, options and the report (text on stderr, or --json)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from edgekit.core.errors import EdgekitError
from edgekit.ops.up import steps as st

if TYPE_CHECKING:
    from edgekit.cue.model import Estate
    from edgekit.ops.cli import Synthesize

DESCRIPTION = """\
The whole first apply of an environment, from an empty Cloudflare account to serving, in
eleven steps. Each step looks at where the estate is first and does only what is missing, so
`edgekit up ENV` can be run again after a failure or Ctrl-C: it continues from there. It
only creates and updates: a plan that would replace or destroy anything stops it.

steps:
{steps}

Progress goes to stderr: the step, what it waits for, how long. Secrets come from the
environment or --env-file (TF_VAR_*, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for the state
and logs buckets) and are never printed.

exit codes: 0 done (--dry-run: every step planned); 3 a wait timed out (run it again to
keep waiting); 10+N failed at step N (11 preflight ... 21 hyperdrive); 2 bad command line;
130 interrupted."""


def _steps_text() -> str:
    return "\n".join(f"  {i + 1:>2}. {name:<13}{what.format(env='ENV', ref='deploy/ENV')}"
                     for i, (name, what) in enumerate(st.STEPS))


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def seconds(text: str) -> float:
    """An argparse type: a number of seconds more than 0 (waits, timeouts, intervals)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def add_up_parser(sub: Any, synthesize: Synthesize,
                  regenerate: Callable[[Path], list[Path]]) -> None:
    """Register ``edgekit up``; `synthesize` is the project's one synth (as for plan/apply),
    run before the first step and again after the outputs come back into CUE, which
    `regenerate` re-exports and regenerates (both handed in by the command line)."""
    from edgekit.ops.cli import _common
    from edgekit.ops.up.world import PRIMARY_PROBES

    up = sub.add_parser(
        "up", help="from an empty account to serving: the whole first apply of ENV",
        description=DESCRIPTION.format(steps=_steps_text()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("env", metavar="ENV", help="the environment (a stack of cue/envs.cue)")
    _common(up, stacks=False)
    up.add_argument("--dry-run", action="store_true",
                    help="plan only: apply, import, commit and push nothing; print the steps")
    up.add_argument("--json", action="store_true",
                    help="print one JSON document on stdout at the end (progress on stderr)")
    up.add_argument("--no-push", action="store_true",
                    help="commit, but print the `git push` for you to run instead of pushing")
    up.add_argument("--remote", default="origin",
                    help="the git remote the nodes pull from (default: origin)")
    up.add_argument("--wait-for", choices=PRIMARY_PROBES, default=PRIMARY_PROBES[0],
                    help="what says the primary is up: its deploy agent's report in the logs "
                    "bucket (default, status/ENV/NODE.json, judged as `edgekit status` does: "
                    "fresh, running the pushed commit or a later one, every check ok, "
                    "postgresql among them), or its Postgres answering through its tunnel "
                    "(`cloudflared access tcp`, or --pg-address)")
    up.add_argument("--pg-address", type=_address, metavar="HOST:PORT",
                    help="ask Postgres here instead of through cloudflared (a forward you run)")
    up.add_argument("--timeout", type=seconds, default=45 * 60.0, metavar="SECONDS",
                    help="how long each wait may take (default 2700: a first NixOS build)")
    up.add_argument("--interval", type=seconds, default=15.0, metavar="SECONDS",
                    help="seconds between two questions while waiting (default 15)")
    up.set_defaults(func=cmd_up, synthesize=synthesize, regenerate=regenerate)


def _token_check(env: Mapping[str, str]) -> Any:
    def check(documents: Mapping[str, Mapping[str, Any]], estate: Estate,
              later: Mapping[str, Mapping[str, str]]) -> str:
        from edgekit.check.permissions import all_needs
        from edgekit.ops.cloudflare_api import check_token

        side = estate.env.cloudflare
        return check_token(env.get("TF_VAR_cloudflare_api_token"),
                           all_needs(documents, later), side.account_id, [side.zone_id])
    return check


def _resynth(args: argparse.Namespace) -> None:
    args.synthesize(args)


def cmd_up(args: argparse.Namespace) -> int:
    from edgekit.ops.cli import _tofu, _workspace
    from edgekit.ops.progress import Progress
    from edgekit.ops.up.runner import Up, UpSettings
    from edgekit.ops.up.world import Choices, make_hooks

    progress = Progress()
    try:
        workspace, _ = _workspace(args)  # the project's one synth, into the app's output
        tofu = _tofu(args, workspace)
        args.stacks = []
        hooks = make_hooks(workspace.root, tofu, Choices(
            env=args.env, wait_for=args.wait_for, pg_address=args.pg_address,
            remote=args.remote), lambda: _resynth(args), _token_check(tofu.env),
            args.regenerate)
    except EdgekitError as err:  # the synth before step 1: a failure of the preflight
        result = st.UpResult.start(args.env, args.dry_run)
        result.fail_before_the_steps(str(err))
        print(f"edgekit: {err}", file=sys.stderr)
    else:
        settings = UpSettings(env=args.env, dry_run=args.dry_run, push=not args.no_push,
                              remote=args.remote, timeout=args.timeout,
                              interval=args.interval)
        result = Up(tofu, settings, hooks, progress).run()
    if args.json:
        sys.stdout.write(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    print(_summary(result), file=sys.stderr)
    return result.exit_code


def _summary(result: st.UpResult) -> str:
    env = result.env
    if result.interrupted:
        return (f"edgekit: interrupted during step {result.failed_step}; run `edgekit up "
                f"{env}` again: it continues from what exists")
    if result.timed_out:
        return (f"edgekit: {env}: a wait timed out (exit {result.exit_code}); nothing was "
                f"undone: run `edgekit up {env}` again to keep waiting")
    if result.failed_step is not None:
        name = st.STEPS[result.failed_step - 1][0]
        return (f"edgekit: {env}: failed at step {result.failed_step} ({name}); fix what it "
                f"says and run `edgekit up {env}` again (exit {result.exit_code})")
    if result.dry_run:
        return f"edgekit: {env}: dry run: nothing was applied, imported, committed or pushed"
    return f"edgekit: {env} is up"
