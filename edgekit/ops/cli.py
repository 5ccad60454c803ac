"""`edgekit plan | apply | drift | import | graph`: operate the estate, stack by stack in
dependency order, with the real `tofu`.

Exit codes: plan and drift 0 = no changes, 2 = changes (drift), 1 = error (also for bad
input: 2 always means changes); apply and import 0 = done, 1 = error; graph 0 / 1.
``--json`` prints one document on stdout; progress and logs go to stderr.

The stacks come from the project's one synth (`edgekit.project.synth_project`), which the
command line hands in as `Synthesize` (this module never imports the command line): each
command synthesizes first unless ``--no-synth``, then works from the manifest that synth
just wrote, in the app's output folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from edgekit.core.errors import EdgekitError
from edgekit.core.files import write_atomic

if TYPE_CHECKING:
    from edgekit.ops.summary import StackSummary
    from edgekit.ops.tofu import Tofu, Workspace

EXIT_OK, EXIT_ERROR = 0, 1


class Synthesized(NamedTuple):
    """What the project's synth wrote: the app's output folder and its stacks."""

    outdir: Path
    stacks: tuple[str, ...]


Synthesize = Callable[[argparse.Namespace], Synthesized]
"""The project's synth for these arguments (``--app``, ``--out``), handed in by the CLI."""


EXIT_2_MEANS_CHANGES = frozenset({"plan", "drift"})


def usage_exit_code(command: str | None, code: object) -> int:
    """argparse exits 2 on a bad command line; for plan and drift 2 means "changes", so a
    bad command line is 1 there (``--help`` stays 0)."""
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if status == 2 and command in EXIT_2_MEANS_CHANGES:
        return EXIT_ERROR
    return status


def _workspace(args: argparse.Namespace) -> tuple[Workspace, tuple[str, ...]]:
    """The synthesized project (synthesized now unless ``--no-synth``) and the stacks to
    work on by default: the app's own, or with ``--no-synth`` every stack of the manifest."""
    from edgekit.ops.tofu import Workspace

    root = Path.cwd()
    if not getattr(args, "no_synth", False):
        done: Synthesized = args.synthesize(args)
        return Workspace(root, done.outdir.absolute()), done.stacks
    out = Path(args.out or os.environ.get("CDKTF_OUTDIR") or "cdktf.out")
    return Workspace(root, out if out.is_absolute() else root / out), ()


def _order(args: argparse.Namespace, workspace: Workspace, default: Sequence[str] = ()
           ) -> tuple[list[str], dict[str, list[str]]]:
    from edgekit.core.manifest import read_manifest
    from edgekit.ops.tofu import OpsError

    manifest = read_manifest(workspace.outdir)
    deps = manifest.dependencies
    unknown = [s for s in args.stacks if s not in deps]
    if unknown:
        raise OpsError(f"no stack named {', '.join(unknown)} (stacks: "
                       f"{', '.join(sorted(deps))})")
    return manifest.order(list(args.stacks) or sorted(default) or None), deps


def _tofu(args: argparse.Namespace, workspace: Workspace) -> Tofu:
    from edgekit.ops.secrets import operator_env
    from edgekit.ops.tofu import Tofu

    env, secrets = operator_env(Path(args.env_file) if args.env_file else None)
    plugin_dir = args.plugin_dir or env.get("EDGEKIT_PLUGIN_DIR")
    return Tofu(workspace, env, plugin_dir=plugin_dir, secrets=secrets)


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except EdgekitError as err:  # usage problems too: exit 2 means "changes" here
            print(f"edgekit: {err}", file=sys.stderr)
            return EXIT_ERROR
    return run


def _report(args: argparse.Namespace, kind: str, summaries: list[StackSummary]) -> int:
    from rich.text import Text

    from edgekit.ops.progress import console
    from edgekit.ops.summary import exit_code, markdown, text_lines

    code = exit_code(summaries)
    if args.markdown:
        write_atomic(Path(args.markdown), markdown(summaries, kind).encode())
    if args.json:
        sys.stdout.write(orjson.dumps({"command": kind, "exit_code": code, "stacks": [
            s.as_json() for s in summaries]}, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        out = console(sys.stdout)
        for summary in summaries:
            for style, line in text_lines(summary, kind):
                out.print(Text(line, style=style or ""))
    return code


def _prepare(
    args: argparse.Namespace,
) -> tuple[Workspace, Tofu, list[str], dict[str, list[str]]]:
    from edgekit.ops.secrets import check_variables

    workspace, default = _workspace(args)
    order, deps = _order(args, workspace, default)
    tofu = _tofu(args, workspace)
    check_variables(workspace, order, tofu.env)
    return workspace, tofu, order, deps


@_guarded
def cmd_plan(args: argparse.Namespace) -> int:
    from edgekit.ops.commands import plan
    from edgekit.ops.progress import Progress

    _, tofu, order, _ = _prepare(args)
    return _report(args, "plan", plan(tofu, order, Progress()))


@_guarded
def cmd_drift(args: argparse.Namespace) -> int:
    from edgekit.ops.commands import drift
    from edgekit.ops.progress import Progress

    _, tofu, order, _ = _prepare(args)
    return _report(args, "drift", drift(tofu, order, Progress()))


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"edgekit: {question}\nType 'yes' to apply: ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip() == "yes"


@_guarded
def cmd_apply(args: argparse.Namespace) -> int:
    from edgekit.ops.commands import apply
    from edgekit.ops.progress import Progress

    _, tofu, order, deps = _prepare(args)
    progress = Progress()
    result = apply(tofu, order, deps, progress, (lambda q: True) if args.yes else _ask)
    applied = ", ".join(result.applied) or "none"
    if result.failed:
        print(f"edgekit: stopped at stack {result.failed!r}: {result.error}\n"
              f"edgekit: applied: {applied}", file=sys.stderr)
        return EXIT_ERROR
    print(f"edgekit: applied: {applied}; unchanged: {', '.join(result.unchanged) or 'none'}",
          file=sys.stderr)
    if result.waiting:
        print(f"edgekit: {result.waiting} (and the stacks after it) waited for these: run "
              "`edgekit plan` and `edgekit apply` again", file=sys.stderr)
    return EXIT_OK


@_guarded
def cmd_import(args: argparse.Namespace) -> int:
    from edgekit.ops.importer import import_call

    args.stacks = [args.stack]
    _, tofu, _, _ = _prepare(args)
    print(import_call(tofu, args.stack, args.type, args.id, args.name))
    return EXIT_OK


@_guarded
def cmd_graph(args: argparse.Namespace) -> int:
    from edgekit.ops import graph
    from edgekit.ops.tofu import OpsError

    workspace, default = _workspace(args)
    order, _ = _order(args, workspace, default)
    documents = {name: workspace.document(name) for name in order}
    placements = graph.placements_of({name: workspace.stack_dir(name) for name in order})
    text = (graph.mermaid(documents, placements) if args.format == "mermaid"
            else graph.dot(documents, placements))
    data = text.encode() if args.format in ("dot", "mermaid") else \
        graph.render_image(text, args.format)
    if args.embed:
        if args.format != "mermaid":
            raise OpsError("--embed writes a mermaid block; pass --format mermaid")
        graph.embed(Path(args.embed), text)
        print(f"edgekit: updated the picture in {args.embed}", file=sys.stderr)
    elif args.output:
        write_atomic(Path(args.output), data)
    else:
        sys.stdout.buffer.write(data)
    return EXIT_OK


def _common(parser: argparse.ArgumentParser, stacks: bool = True) -> None:
    if stacks:
        parser.add_argument("stacks", nargs="*", metavar="STACK",
                            help="stacks (default: all), run in dependency order")
    parser.add_argument("--out", help="synth output folder (default: $CDKTF_OUTDIR or "
                        "cdktf.out)")
    parser.add_argument("--env-file", help="KEY=value file with the secrets (TF_VAR_*, "
                        "AWS_ACCESS_KEY_ID, ...); read, never echoed or written")
    parser.add_argument("--plugin-dir", help="offline provider plugin dir for `tofu init` "
                        "(default: $EDGEKIT_PLUGIN_DIR, else the registry)")


def _reports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout (logs stay on stderr)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write a Markdown summary (for a pull-request comment)")
    parser.add_argument("--no-synth", action="store_true",
                        help="use cdktf.out as it is (default: synthesize first)")


def add_ops_parsers(sub: Any, synthesize: Synthesize) -> None:
    """Register plan, apply, drift, import and graph; `synthesize` is the project's synth."""
    plan = sub.add_parser(
        "plan", help="synth, then `tofu plan` every stack in dependency order",
        description="Synthesize, then per stack in dependency order: `tofu init` (once, "
        "cached in .edgekit/), `tofu plan -out` (saved for `edgekit apply`), and a summary: "
        "to add / change / replace / destroy, every replace and destroy by address. "
        "Exit 0 no changes, 2 changes, 1 error.")
    _common(plan)
    _reports(plan)
    plan.set_defaults(func=cmd_plan)

    apply = sub.add_parser(
        "apply", help="apply the plans `edgekit plan` saved, in dependency order",
        description="Apply saved plans in order; refuse a stale plan; ask before any "
        "replace or destroy unless --yes; stop at the first failure and say which stacks "
        "were applied. Exit 0 done, 1 error.")
    _common(apply)
    apply.add_argument("--yes", action="store_true",
                       help="apply replaces and destroys without asking")
    apply.add_argument("--no-synth", action="store_true",
                       help="use cdktf.out as it is (default: synthesize first; a plan made "
                       "from other files is refused)")
    apply.set_defaults(func=cmd_apply)

    drift = sub.add_parser(
        "drift", help="what changed outside OpenTofu (`tofu plan -refresh-only`)",
        description="Per stack, `tofu plan -refresh-only`: resources changed or deleted "
        "outside OpenTofu. Exit 0 no drift, 2 drift, 1 error.")
    _common(drift)
    _reports(drift)
    drift.set_defaults(func=cmd_drift)

    imp = sub.add_parser(
        "import", help="adopt an existing object: print the construct call for it",
        description="Run `tofu plan -generate-config-out` with an import block in a scratch "
        "copy of the stack and print the Python call (Resource(..., import_id=...)) that "
        "reproduces the object. Exit 0 done, 1 error.")
    _common(imp, stacks=False)
    imp.add_argument("--stack", required=True, help="the stack to import into")
    imp.add_argument("--type", required=True, help="resource type, e.g. cloudflare_dns_record")
    imp.add_argument("--id", required=True, help="the provider's import id of the object")
    imp.add_argument("--name", default="imported", help="construct id (default: imported)")
    imp.add_argument("--no-synth", action="store_true", help="use cdktf.out as it is")
    imp.set_defaults(func=cmd_import)

    graph = sub.add_parser(
        "graph", help="the estate as a picture (dot, mermaid, svg, png)",
        description="Per stack, the Worker, tunnels, nodes, volumes, R2, Hyperdrive and what "
        "reads what, from the synthesized documents; deterministic. svg/png need Graphviz.")
    graph.add_argument("stacks", nargs="*", metavar="STACK", help="stacks (default: all)")
    graph.add_argument("--format", choices=("dot", "mermaid", "svg", "png"), default="dot")
    graph.add_argument("--output", "-o", help="write here instead of stdout")
    graph.add_argument("--embed", metavar="FILE", help="replace the block after "
                       "'<!-- edgekit graph -->' in FILE (e.g. docs/structure/index.md)")
    graph.add_argument("--out", help="synth output folder (default: cdktf.out)")
    graph.add_argument("--no-synth", action="store_true", help="use cdktf.out as it is")
    graph.set_defaults(func=cmd_graph)
    for command in (plan, apply, drift, imp, graph):
        command.set_defaults(synthesize=synthesize)
