"""The `edgekit` command: a thin layer over the library.

    edgekit bootstrap            once per account: the R2 state bucket (local encrypted state)
    edgekit synth [STACK ...]    refresh CUE exports and generated files, synthesize stacks
    edgekit stacks               list the app's stacks
    edgekit cue export           export CUE to JSON Schema (package data) and env values
    edgekit generate             write the files generated from cue/ (services/...)
    edgekit check [STACK ...]    preflight rules (--list, --format text|json|sarif)
    edgekit check --generated    exit 1 listing generated files that differ from cue/ now
    edgekit outputs import --stack S [FILE|-]
                                 bring `tofu output -json` back into cue/outputs/S.cue
    edgekit logs sync|query|tail read the logs the nodes shipped to R2, with DuckDB
    edgekit mesh import-keys --stack S
                                 the nodes' published WireGuard public keys -> cue/outputs/
    edgekit plan|apply|drift [STACK ...], import, graph
                                 operate the stacks in dependency order (edgekit/ops/)
    edgekit up ENV               the whole first apply of an environment, re-runnable
    edgekit pg backups|restore   list the Postgres backups in R2; print a point-in-time restore
    edgekit pg import-ca --stack S
                                 the primary's published TLS authority -> cue/outputs/ (pg_tls_ca)
    edgekit status|deploy|rollback
                                 what each node runs; health-gated rollouts (edgekit/deploy/)

The app is named by ``--app`` (before or after the command) or by ``cdktf.json``'s
``"app"`` (``python -m <module>`` or ``python <file>.py``): a module with ``make_app()``,
``module:function``, a file ``path/app.py`` (a program ending in ``app.synth()``, or one
defining ``make_app()``) or ``path/app.py:function``. Every command that needs synthesized
stacks gets them from `edgekit.project.synth_project` (ADR 0027).

Adding a command: write its module (``cmd_x(args) -> int`` and ``add_x_parser(sub)``
registering a subparser with ``set_defaults(func=cmd_x)``), and call ``add_x_parser`` in
`build_parser` below the core commands (list it in ``APP_COMMANDS`` if it builds the app).
A command that needs the synthesized stacks takes ``synthesize`` as a parameter of its
``add_x_parser`` and calls ``args.synthesize(args)`` (`edgekit.ops.cli.Synthesize`;
`add_ops_parsers` shows how); one that only reads the estate uses ``Estate.load`` (it
refuses stale exports and writes nothing). The command modules never import this one: the
command line is the root of a tree.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.core.errors import EdgekitError
from edgekit.project import UsageError, load_app

if TYPE_CHECKING:
    from edgekit.ops.cli import Synthesized
    from edgekit.project import ProjectReport

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _synth(args: argparse.Namespace, only: Sequence[str] = (),
           schema_check: bool = True) -> ProjectReport:
    """The project's one synth for these arguments, its report printed on stderr."""
    from edgekit.project import synth_project

    started = time.perf_counter()
    root = Path.cwd()
    done = synth_project(root, lambda: load_app(root, args.app, outdir=args.out,
                                                schema_check=schema_check), only)
    report = done.synth
    for path in done.reexported:
        print(f"edgekit: re-exported {_rel(path, root)}", file=sys.stderr)
    for warning in report.warnings:
        print(f"edgekit: warning: {warning}", file=sys.stderr)
    for line in report.suppressed:
        print(f"edgekit: {line}", file=sys.stderr)
    for path in done.regenerated:
        print(f"edgekit: regenerated {_rel(path, root)}", file=sys.stderr)
    if report.foreign:
        print(f"edgekit: kept {', '.join(report.foreign)}: stacks this app does not define "
              f"(another app's output; delete their folders in {report.outdir}/stacks to "
              "drop them)", file=sys.stderr)
    took = time.perf_counter() - started
    print(
        f"edgekit: synthesized {', '.join(report.stacks)} ({report.resources} resources, "
        f"{report.files} files) into {report.outdir} in {took:.2f}s",
        file=sys.stderr,
    )
    return done


def synthesize(args: argparse.Namespace) -> Synthesized:
    """`_synth` for the operations (plan, apply, import, graph): every stack."""
    from edgekit.ops.cli import Synthesized

    report = _synth(args).synth
    return Synthesized(report.outdir, report.stacks)


def cmd_synth(args: argparse.Namespace) -> int:
    _synth(args, args.stacks, schema_check=not args.no_schema_check)
    return EXIT_OK


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from edgekit.bootstrap import run_bootstrap

    root = Path.cwd()
    state = run_bootstrap(lambda only: _synth(args, only).synth.outdir, root,
                          dry_run=args.dry_run, auto_approve=args.yes)
    if args.dry_run:
        print(f"edgekit: bootstrap checked (tofu init + validate); state would be {state}",
              file=sys.stderr)
    else:
        print(f"edgekit: state bucket ready; its state is {_rel(state, root)} (encrypted, "
              "git-ignored: back it up). Next: edgekit synth, then tofu init && tofu apply "
              "in cdktf.out/stacks/zone, then in each environment's folder", file=sys.stderr)
    return EXIT_OK


def cmd_stacks(args: argparse.Namespace) -> int:
    app = load_app(Path.cwd(), args.app, schema_check=False)
    for stack in app.stacks:
        print(stack.name)
    return EXIT_OK


def cmd_cue_export(args: argparse.Namespace) -> int:
    from edgekit.cue.export import render_exports, write_exports

    root = Path.cwd()
    changed = write_exports(root, render_exports(root))
    for path in changed:
        print(f"edgekit: wrote {_rel(path, root)}", file=sys.stderr)
    print(f"edgekit: CUE export {'updated' if changed else 'already up to date'}",
          file=sys.stderr)
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from edgekit.project import regenerate

    root = Path.cwd()
    changed = regenerate(root)
    for path in changed:
        print(f"edgekit: wrote {_rel(path, root)}", file=sys.stderr)
    print(f"edgekit: {len(changed)} generated file(s) updated", file=sys.stderr)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from edgekit.cue.export import render_exports, stale_exports
    from edgekit.cue.generate import differing
    from edgekit.cue.model import Estate
    from edgekit.cue.runner import find_cue
    from edgekit.generated import all_generated

    if args.permissions:
        if args.generated or args.list:
            raise UsageError("--permissions lists what the Cloudflare token needs; run it "
                             "without --generated and --list")
        from edgekit.check.command import permissions

        return permissions(Path.cwd(), args.stacks, args.format,
                           lambda: load_app(Path.cwd(), args.app))
    if not args.generated:
        return cmd_check_rules(args)
    if args.stacks or args.list:
        raise UsageError("--generated checks files, not stacks or rules; run it alone")
    root = Path.cwd()
    stale = [Path(p) for p in stale_exports(root)]
    if not stale and find_cue() is not None:
        stale = differing(render_exports(root))
    estates = [Estate.load(root, name, check_fresh=False) for name in Estate.env_names(root)]
    drift = [*stale, *differing(all_generated(root, estates))]
    if drift:
        print("edgekit: generated files differ from what cue/ and stacks/ produce now "
              "(a hand edit, or a forgotten `edgekit generate`):", file=sys.stderr)
        for path in drift:
            print(f"  {_rel(path, root)}", file=sys.stderr)
        return EXIT_PROBLEMS
    print("edgekit: generated files are up to date", file=sys.stderr)
    return EXIT_OK


def cmd_check_rules(args: argparse.Namespace) -> int:
    from edgekit.check.command import check, list_rules

    if args.list:
        sys.stdout.write(list_rules(args.format))
        return EXIT_OK
    root = Path.cwd()
    return check(root, args.stacks, args.format, lambda: load_app(root, args.app))


def cmd_outputs_import(args: argparse.Namespace) -> int:
    from edgekit.cue.model import Estate
    from edgekit.cue.outputs import MAX_INPUT_BYTES, import_outputs
    from edgekit.ops.progress import Progress
    from edgekit.project import regenerate

    root = Path.cwd()
    if args.file in (None, "-"):
        text = sys.stdin.read(MAX_INPUT_BYTES + 1)
    else:
        try:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read(MAX_INPUT_BYTES + 1)
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read {args.file}: "
                             f"{getattr(err, 'strerror', None) or err}") from err
    progress = Progress()  # per step with elapsed time on a terminal; quiet in CI
    with progress.step(args.stack, "check outputs (cue vet)"):
        result = import_outputs(root, args.stack, text, Estate.env_names(root),
                                skip_sensitive=args.skip_sensitive)
    for name in result.refused_sensitive:
        print(f"edgekit: {'skipped' if args.skip_sensitive else 'refused'} sensitive output "
              f"{name!r}: sensitive values never land in the repo (read it with `tofu output "
              "-raw` where it is needed)", file=sys.stderr)
    if result.refused_sensitive and not args.skip_sensitive:
        print(f"edgekit: nothing imported for stack {args.stack!r}; pass --skip-sensitive to "
              f"import the {len(result.imported)} plain output(s) without the sensitive ones",
              file=sys.stderr)
        return EXIT_PROBLEMS
    if not result.written:
        print(f"edgekit: nothing new to import for stack {args.stack!r}; "
              f"{_rel(result.path, root)} and every generated file left as they were",
              file=sys.stderr)
        return EXIT_OK
    print(f"edgekit: imported {len(result.imported)} output(s) into "
          f"{_rel(result.path, root)}", file=sys.stderr)
    with progress.step(args.stack, "cue export and regenerate files"):
        written = regenerate(root)
    for path in written:
        print(f"edgekit: regenerated {_rel(path, root)}", file=sys.stderr)
    return EXIT_OK


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


CORE_COMMANDS = frozenset({"synth", "bootstrap", "stacks", "cue", "generate", "check",
                           "outputs"})
"""Commands defined here: for these the commands of other modules (ops, logs, mesh, pg)
are neither imported nor registered."""


def command_of(argv: Sequence[str]) -> str | None:
    """The command word of a command line (the first argument that is not an option or
    the value of ``--app``), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--app":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; for a `command` defined in this module only what it needs
    (importing and registering the ops, logs, mesh and pg commands costs a synth ~10 ms)."""
    from edgekit import __version__

    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Synthesize OpenTofu JSON from Python stacks (cdktf.out/ layout).",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("--app", help=APP_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser(
        "synth",
        help="synthesize stacks into cdktf.out/",
        description="Render, check and write stacks. Nothing is written if any stack has a "
        "problem; stacks not named keep their previous output.",
    )
    synth.add_argument("stacks", nargs="*", metavar="STACK", help="stacks to synthesize "
                       "(default: all)")
    synth.add_argument("--out", help="output folder (default: $CDKTF_OUTDIR or cdktf.out)")
    synth.add_argument("--no-schema-check", action="store_true",
                       help="skip the provider schema check (faster; not for CI)")
    synth.set_defaults(func=cmd_synth)

    boot = sub.add_parser(
        "bootstrap", help="once per account: create the R2 state bucket",
        description="Synthesize the bootstrap stack and run tofu init/apply in its folder, "
        "with local encrypted state in .edgekit/bootstrap/ (git-ignored). Needs "
        "TF_VAR_cloudflare_api_token and TF_VAR_state_passphrase; EDGEKIT_TOFU names the "
        "tofu binary (default: tofu on PATH).")
    boot.add_argument("--out", help="output folder (default: $CDKTF_OUTDIR or cdktf.out)")
    boot.add_argument("--dry-run", action="store_true",
                      help="tofu init + validate only; create nothing")
    boot.add_argument("--yes", action="store_true", help="apply without asking")
    boot.set_defaults(func=cmd_bootstrap)

    stacks = sub.add_parser("stacks", help="list the app's stacks")
    stacks.set_defaults(func=cmd_stacks)

    cue = sub.add_parser("cue", help="work with the CUE source of truth")
    cue_sub = cue.add_subparsers(dest="cue_command", required=True, metavar="COMMAND")
    export = cue_sub.add_parser(
        "export", help="export JSON Schemas and environment values from cue/",
        description="Run cue vet, then write a JSON Schema per definition into "
        "edgekit/schema/cue/ and each environment's values into cue/export/. Every file "
        "carries the hash of the CUE sources; commit them.")
    export.set_defaults(func=cmd_cue_export)

    generate = sub.add_parser("generate", help="write the files generated from cue/",
                              description="Refresh the CUE export if cue/ changed, then "
                              "write services/<svc>/edgekit.json and the Worker's "
                              "wrangler.jsonc.")
    generate.set_defaults(func=cmd_generate)

    check = sub.add_parser(
        "check", help="preflight rules over the stacks (or --generated files)",
        description="Run every rule (what would fail at apply or open a hole) over the "
        "synthesized stacks and the CUE estate. Exit 0: no error; 1: errors; 2: usage. "
        "Silence a rule for a construct with node.suppress('EK1xx', reason=...).")
    check.add_argument("stacks", nargs="*", metavar="STACK",
                       help="stacks to check (default: all)")
    check.add_argument("--list", action="store_true",
                       help="print the rule catalogue with sources and fixes")
    check.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                       help="output format (sarif: SARIF 2.1.0 for code-scanning UIs)")
    check.add_argument("--permissions", action="store_true",
                       help="print the Cloudflare API permission groups each stack needs, "
                       "derived from its resources, with the stacks it builds on (what "
                       "`edgekit up STACK` applies and checks the token for)")
    check.add_argument("--generated", action="store_true",
                       help="exit 1 listing every generated file that differs from what "
                       "cue/ and stacks/ produce now")
    check.set_defaults(func=cmd_check)

    outputs = sub.add_parser("outputs", help="bring `tofu output -json` back into cue/")
    outputs_sub = outputs.add_subparsers(dest="outputs_command", required=True,
                                         metavar="COMMAND")
    imp = outputs_sub.add_parser(
        "import", help="import `tofu output -json` of a stack into cue/outputs/<stack>.cue",
        description="Validate the outputs against #Outputs, write cue/outputs/<stack>.cue "
        "(checked with cue vet first), then re-export and regenerate. Sensitive outputs "
        "never land in the repo: one in the input refuses the import (exit 1, nothing "
        "written) unless --skip-sensitive. Example: tofu output -json | edgekit outputs "
        "import --stack prod --skip-sensitive")
    imp.add_argument("--stack", required=True, help="the environment's stack, e.g. prod")
    imp.add_argument("--skip-sensitive", action="store_true",
                     help="import the plain outputs and leave the sensitive ones out "
                     "(default: a sensitive output refuses the import)")
    imp.add_argument("file", nargs="?", help="a file with `tofu output -json`, or - "
                     "(default) for standard input")
    imp.set_defaults(func=cmd_outputs_import)

    if command in CORE_COMMANDS:
        return _with_app_option(parser, sub)
    from edgekit.obs.cli import add_logs_parser  # boto3/duckdb load only when logs run
    from edgekit.ops.cli import add_ops_parsers  # plan, apply, drift, import, graph
    from edgekit.ops.up.cli import add_up_parser  # edgekit up ENV (ADR 0031)
    from edgekit.project import regenerate

    add_ops_parsers(sub, synthesize)
    add_up_parser(sub, synthesize, regenerate)
    add_logs_parser(sub)
    from edgekit.cue.mesh_cli import add_mesh_parser

    add_mesh_parser(sub, regenerate=regenerate)
    from edgekit.pg.cli import add_pg_parser

    add_pg_parser(sub, regenerate=regenerate)
    from edgekit.deploy.cli import add_deploy_parsers

    add_deploy_parsers(sub)
    return _with_app_option(parser, sub)


APP_HELP = ("the app: a module with make_app(), module:function, path/app.py (ending in "
            "app.synth() or defining make_app) or path/app.py:function (default: cdktf.json)")


APP_COMMANDS = ("synth", "bootstrap", "stacks", "check", "plan", "apply", "drift", "import",
                "graph", "up")
"""The commands that build the app: they take ``--app`` after the command name too."""


def _with_app_option(parser: argparse.ArgumentParser, sub: Any) -> argparse.ArgumentParser:
    """``--app`` after the command too (``edgekit synth --app my_app.py``), for every
    command that builds the app."""
    for name in APP_COMMANDS:
        command = sub.choices.get(name)
        if command is not None:
            command.add_argument("--app", default=argparse.SUPPRESS, help=APP_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    command = command_of(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # argparse refused the command line
        from edgekit.ops.cli import usage_exit_code

        return usage_exit_code(command, done.code)
    try:
        code: int = args.func(args)
        return code
    except UsageError as err:
        print(f"edgekit: {err}", file=sys.stderr)
        return EXIT_USAGE
    except EdgekitError as err:
        print(f"edgekit: {err}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print("edgekit: interrupted; previous output left as it was", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
