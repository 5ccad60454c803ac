"""``edgekit status``, ``edgekit deploy`` and ``edgekit rollback`` (ADR 0033).

    edgekit status [--stack ENV] [--json]     what each node runs, its health, its report's age
    edgekit deploy ENV REV [--json]           move the nodes to REV in waves, health-gated
    edgekit rollback ENV [--json]             every node back to the last revision healthy
                                              on every node

The refs are read from and pushed to the git remote (``--remote``, default ``origin`` of
the project's repository); the nodes' reports are read from the environment's logs bucket
with an R2 token that can read it (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, or
``--profile``), as `edgekit logs sync` does. Exit codes: 0 every node runs its revision,
healthy (status) / the rollout is done (deploy, rollback); 1 not so, each node named; 2 a
bad command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.core.stack import r2_endpoint
from edgekit.ops.up.cli import seconds

if TYPE_CHECKING:
    from edgekit.cue.model import Estate
    from edgekit.deploy.rollout import Live, Plan

EXIT_OK, EXIT_PROBLEMS = 0, 1
CREDENTIALS = ("Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (an R2 token that\n"
               "can read the environment's logs bucket), or --profile. Endpoint: --endpoint,\n"
               f"$EDGEKIT_R2_ENDPOINT, or {r2_endpoint('<cloudflare.account_id>')}\n"
               "(from CUE). Refs: --remote (default: origin).")


def _estate(env: str) -> Estate:
    from edgekit.cue.model import Estate
    from edgekit.deploy.reports import DeployError

    root = Path.cwd()
    names = Estate.env_names(root)
    if env not in names:
        raise DeployError(f"no environment {env!r} in cue/ (environments: "
                          f"{', '.join(names) or 'none'})")
    return Estate.load(root, env)  # stale exports refused: no rollout from old values


def _live(args: argparse.Namespace, estate: Estate) -> Live:
    from edgekit.deploy.reports import read_reports
    from edgekit.deploy.rollout import Live
    from edgekit.obs.sync import ENDPOINT_ENV, make_client

    env = estate.env
    endpoint = (args.endpoint or os.environ.get(ENDPOINT_ENV)
                or r2_endpoint(env.cloudflare.account_id))
    bucket = args.bucket or env.cloudflare.logs_bucket
    client = make_client(endpoint_url=endpoint, profile=args.profile)
    return Live(remote=args.remote, cwd=Path.cwd(), prefix=env.deploy.ref,
                read=lambda: read_reports(client, bucket, env.name, env.nodes))


def _plan(args: argparse.Namespace, estate: Estate) -> Plan:
    from edgekit.deploy.plan import waves
    from edgekit.deploy.rollout import Plan

    spec = estate.env.deploy
    return Plan(env=estate.env.name, env_ref=spec.ref,
                waves=tuple(tuple(w) for w in waves(estate)),
                timeout=float(getattr(args, "wave_timeout", None)
                              or spec.wave_timeout_seconds),
                stale_after=float(spec.stale_after_seconds), poll=args.poll)


def _say(line: str) -> None:
    print(f"edgekit: {line}", file=sys.stderr, flush=True)


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True))


def cmd_status(args: argparse.Namespace) -> int:
    from edgekit.cue.model import Estate
    from edgekit.deploy.view import as_json, evaluate, render

    names = [args.stack] if args.stack else Estate.env_names(Path.cwd())
    views = []
    for name in names:
        estate = _estate(name)
        live = _live(args, estate)
        env = estate.env
        views.append(evaluate(env=env.name, env_ref=env.deploy.ref, nodes=list(env.nodes),
                              branches=live.branches(), reports=live.reports(),
                              now=live.now(), stale_after=args.stale_after
                              or env.deploy.stale_after_seconds))
    if args.json:
        _print_json({"ok": all(v.ok for v in views), "envs": [as_json(v) for v in views]})
    else:
        print("\n\n".join(render(v) for v in views))
    return EXIT_OK if all(v.ok for v in views) else EXIT_PROBLEMS


def cmd_deploy(args: argparse.Namespace) -> int:
    from edgekit.deploy.git import revision
    from edgekit.deploy.rollout import deploy

    estate = _estate(args.env)
    rev = revision(args.rev, Path.cwd())
    outcome = deploy(_live(args, estate), _plan(args, estate), rev, _say)
    if args.json:
        _print_json(outcome.as_json())
    return outcome.exit_code


def cmd_rollback(args: argparse.Namespace) -> int:
    from edgekit.deploy.rollout import rollback

    estate = _estate(args.env)
    outcome = rollback(_live(args, estate), _plan(args, estate), _say)
    if args.json:
        _print_json(outcome.as_json())
    return outcome.exit_code


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", default="origin",
                        help="git remote (name or URL) the deploy refs live on; the nodes "
                        "pull the same refs from envs.<env>.deploy.repository (default: "
                        "origin)")
    parser.add_argument("--bucket", help="the logs bucket the nodes report to (default: "
                        "the environment's cloudflare.logs_bucket in CUE)")
    parser.add_argument("--endpoint", metavar="URL", help="S3 endpoint of that bucket")
    parser.add_argument("--profile", metavar="P", help="AWS profile holding the R2 keys")
    parser.add_argument("--json", action="store_true",
                        help="one JSON document on stdout (progress stays on stderr)")


def _waiting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wave-timeout", type=seconds, metavar="SECONDS",
                        help="how long a wave may take to report healthy (default: "
                        "envs.<env>.deploy.wave_timeout_seconds, 1200)")
    parser.add_argument("--poll", type=seconds, default=5.0, metavar="SECONDS",
                        help="how often the reports are read while waiting (default: 5)")


def add_deploy_parsers(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``status``, ``deploy`` and ``rollback`` on the main parser's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    status = subparsers.add_parser(
        "status", help="what each node runs and whether it is healthy",
        formatter_class=raw,
        description="Per node of each environment: the revision its ref names (WANTED) and\n"
        "the one it runs, its NixOS generation, its last switch (result, attempt, time),\n"
        "each health check, and how old its report is. A node is ok only when a fresh\n"
        "report says it runs its revision with every check passing; a missing, stale\n"
        "(older than deploy.stale_after_seconds) or unreadable report is never ok.\n"
        "When the nodes follow different revisions (a rollout under way or stopped), the\n"
        "commands that resume or undo it are printed.\n\n"
        "Exit 0 when every node is ok; 1 when any is not (or the refs or reports cannot\n"
        "be read); 2 a bad command line.\n\n" + CREDENTIALS)
    status.add_argument("--stack", metavar="ENV", help="one environment (default: all)")
    status.add_argument("--stale-after", type=seconds, metavar="SECONDS",
                        help="a report older than this is stale (default: "
                        "envs.<env>.deploy.stale_after_seconds, 900)")
    _common(status)
    status.set_defaults(func=cmd_status)

    deploy = subparsers.add_parser(
        "deploy", help="move an environment to a revision in health-gated waves",
        formatter_class=raw,
        description="Move ENV's nodes to REV a wave at a time: each node's own ref\n"
        "<env ref>.nodes/<node> is pushed, its deploy agent builds REV (with the lock\n"
        "file REV carries), switches, and keeps it only if every health check passes\n"
        "within deploy.health_timeout_seconds; otherwise the node switches back to the\n"
        "generation it ran and reports rolled-back. The waves are envs.<env>.deploy.waves,\n"
        "else one canary node per service, then the rest. After each wave the command\n"
        "waits (deploy.wave_timeout_seconds, --wave-timeout) for every node of the wave\n"
        "to report REV healthy; a failure or silence stops it with the nodes named and\n"
        "exit code 1, and no further node moves. When every wave is done, <env ref>\n"
        "(deploy/<env>) moves to REV: the last revision healthy on every node.\n\n"
        "Safe to run again: after a crash or Ctrl-C the same command goes on from the\n"
        "first wave not done (the state is in the refs and the reports, not here).\n"
        "`edgekit rollback ENV` undoes a rollout that stopped.\n\n"
        "Exit 0 when every wave is done and deploy/<env> names REV; 1 when the rollout\n"
        "stopped (the nodes named, `edgekit status --stack ENV` shows where each is) or\n"
        "could not start (an unknown ENV or REV, refused credentials); 2 a bad command line.\n\n"
        + CREDENTIALS)
    deploy.add_argument("env", metavar="ENV", help="the environment, e.g. staging")
    deploy.add_argument("rev", metavar="REV", help="a commit of this repository (branch, "
                        "tag or revision); it is pushed with the refs")
    _waiting(deploy)
    _common(deploy)
    deploy.set_defaults(func=cmd_deploy)

    rollback = subparsers.add_parser(
        "rollback", help="every node back to the last revision healthy on every node",
        formatter_class=raw,
        description="Move every node's ref of ENV back to <env ref> (deploy/<env>), the\n"
        "last revision a rollout brought to every node healthy, at once, then wait until\n"
        "every node reports it running and healthy. A node that had rolled back by itself\n"
        "from a bad revision will try that revision again only when a deploy names it\n"
        "after this. To go back further, `edgekit deploy ENV <older revision>`.\n\n"
        "Exit 0 when every node reports that revision running and healthy; 1 when one\n"
        "does not within the wave timeout (named) or nothing could be moved; 2 a bad\n"
        "command line.\n\n" + CREDENTIALS)
    rollback.add_argument("env", metavar="ENV", help="the environment, e.g. prod")
    _waiting(rollback)
    _common(rollback)
    rollback.set_defaults(func=cmd_rollback)
