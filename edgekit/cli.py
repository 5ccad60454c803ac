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

The app is found through ``cdktf.json`` (``"app": "python -m <module>"``) or
``--app <module>``; the module must define ``make_app(outdir=None) -> App``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.core.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.app import App
    from edgekit.cue.model import Estate

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UsageError(EdgekitError):
    pass


def app_module_from_cdktf_json(root: Path) -> str:
    config = root / "cdktf.json"
    if not config.is_file():
        raise UsageError(f"no cdktf.json in {root}; pass --app <module>")
    command = str(json.loads(config.read_text()).get("app", ""))
    parts = command.split()
    if len(parts) == 3 and parts[0].startswith("python") and parts[1] == "-m":
        return parts[2]
    raise UsageError(
        f"cdktf.json app {command!r} is not 'python -m <module>'; pass --app <module>"
    )


def load_app(module_name: str | None, outdir: str | None, schema_check: bool) -> App:
    root = Path.cwd()
    name = module_name or app_module_from_cdktf_json(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise UsageError(f"cannot import app module {name!r}: {err}") from err
    make_app = getattr(module, "make_app", None)
    if make_app is None:
        raise UsageError(f"module {name!r} has no make_app(outdir=None) function")
    app: App = make_app(outdir=outdir)
    if not schema_check:
        app.disable_schema_check()
    return app


def has_cue(root: Path) -> bool:
    return (root / "cue" / "cue.mod").is_dir()


def refresh_cue(root: Path) -> None:
    from edgekit.cue.export import ensure_fresh

    for path in ensure_fresh(root):
        print(f"edgekit: re-exported {path.relative_to(root)}", file=sys.stderr)


def estates(root: Path) -> list[Estate]:
    from edgekit.cue.model import Estate

    return [Estate.load(root, name, refresh=False) for name in Estate.env_names(root)]


def write_generated(root: Path) -> list[Path]:
    from edgekit.core.files import write_atomic
    from edgekit.cue.generate import differing
    from edgekit.generated import all_generated

    files = all_generated(root, estates(root))
    changed = differing(files)
    for path in changed:
        write_atomic(path, files[path])
    return changed


def regenerate(root: Path) -> list[Path]:
    """Re-export CUE if it changed, then rewrite the generated files that differ."""
    refresh_cue(root)
    return write_generated(root)


def cmd_synth(args: argparse.Namespace) -> int:
    from edgekit.project import synth_project

    started = time.perf_counter()
    root = Path.cwd()
    done = synth_project(root, lambda: load_app(args.app, args.out, not args.no_schema_check),
                         args.stacks)
    report = done.synth
    for path in done.reexported:
        print(f"edgekit: re-exported {_rel(path, root)}", file=sys.stderr)
    for warning in report.warnings:
        print(f"edgekit: warning: {warning}", file=sys.stderr)
    for line in report.suppressed:
        print(f"edgekit: {line}", file=sys.stderr)
    for path in done.regenerated:
        print(f"edgekit: regenerated {_rel(path, root)}", file=sys.stderr)
    took = time.perf_counter() - started
    print(
        f"edgekit: synthesized {', '.join(report.stacks)} ({report.resources} resources, "
        f"{report.files} files) into {report.outdir} in {took:.2f}s",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from edgekit.bootstrap import run_bootstrap

    root = Path.cwd()
    if has_cue(root):
        refresh_cue(root)
    app = load_app(args.app, args.out, True)
    state = run_bootstrap(app, root, dry_run=args.dry_run, auto_approve=args.yes)
    if args.dry_run:
        print(f"edgekit: bootstrap checked (tofu init + validate); state would be {state}",
              file=sys.stderr)
    else:
        print(f"edgekit: state bucket ready; its state is {_rel(state, root)} (encrypted, "
              "git-ignored: back it up). Next: edgekit synth, then tofu init && tofu apply "
              "in cdktf.out/stacks/zone, then in each environment's folder", file=sys.stderr)
    return EXIT_OK


def cmd_stacks(args: argparse.Namespace) -> int:
    app = load_app(args.app, None, False)
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
    root = Path.cwd()
    refresh_cue(root)
    changed = write_generated(root)
    for path in changed:
        print(f"edgekit: wrote {_rel(path, root)}", file=sys.stderr)
    print(f"edgekit: {len(changed)} generated file(s) updated", file=sys.stderr)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from edgekit.cue.export import render_exports, stale_exports
    from edgekit.cue.generate import differing
    from edgekit.cue.runner import find_cue
    from edgekit.generated import all_generated

    if args.permissions:
        if args.generated or args.list:
            raise UsageError("--permissions lists what the Cloudflare token needs; run it "
                             "without --generated and --list")
        from edgekit.check.command import permissions

        return permissions(Path.cwd(), args.stacks, args.format,
                           lambda: load_app(args.app, None, True))
    if not args.generated:
        return cmd_check_rules(args)
    if args.stacks or args.list:
        raise UsageError("--generated checks files, not stacks or rules; run it alone")
    root = Path.cwd()
    stale = [Path(p) for p in stale_exports(root)]
    if not stale and find_cue() is not None:
        stale = differing(render_exports(root))
    drift = [*stale, *differing(all_generated(root, estates(root)))]
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
    return check(Path.cwd(), args.stacks, args.format,
                 lambda: load_app(args.app, None, True))


def cmd_outputs_import(args: argparse.Namespace) -> int:
    from edgekit.cue.model import Estate
    from edgekit.cue.outputs import MAX_INPUT_BYTES, import_outputs
    from edgekit.ops.progress import Progress

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
        result = import_outputs(root, args.stack, text, Estate.env_names(root))
    if not result.written:
        print(f"edgekit: nothing new to import for stack {args.stack!r}; "
              f"{_rel(result.path, root)} and every generated file left as they were",
              file=sys.stderr)
        return EXIT_OK
    for name in result.refused_sensitive:
        print(f"edgekit: refused sensitive output {name!r}: sensitive values never land in "
              "the repo (read it with `tofu output -raw` where it is needed)", file=sys.stderr)
    print(f"edgekit: imported {len(result.imported)} output(s) into "
          f"{_rel(result.path, root)}", file=sys.stderr)
    with progress.step(args.stack, "cue export"):
        refresh_cue(root)
    with progress.step(args.stack, "regenerate files"):
        written = write_generated(root)
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
    parser.add_argument("--app", help="module defining make_app() (default: from cdktf.json)")
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
                       "derived from its resources (what `edgekit up` checks the token for)")
    check.add_argument("--generated", action="store_true",
                       help="exit 1 listing every generated file that differs from what "
                       "cue/ and stacks/ produce now")
    check.set_defaults(func=cmd_check)

    outputs = sub.add_parser("outputs", help="bring `tofu output -json` back into cue/")
    outputs_sub = outputs.add_subparsers(dest="outputs_command", required=True,
                                         metavar="COMMAND")
    imp = outputs_sub.add_parser(
        "import", help="import `tofu output -json` of a stack into cue/outputs/<stack>.cue",
        description="Validate the outputs against #Outputs, refuse sensitive ones, write "
        "cue/outputs/<stack>.cue (checked with cue vet first), then re-export and "
        "regenerate. Example: tofu output -json | edgekit outputs import --stack prod")
    imp.add_argument("--stack", required=True, help="the environment's stack, e.g. prod")
    imp.add_argument("file", nargs="?", help="a file with `tofu output -json`, or - "
                     "(default) for standard input")
    imp.set_defaults(func=cmd_outputs_import)

    if command in CORE_COMMANDS:
        return parser
    from edgekit.obs.cli import add_logs_parser  # boto3/duckdb load only when logs run
    from edgekit.ops.cli import add_ops_parsers  # plan, apply, drift, import, graph

    add_ops_parsers(sub)
    from edgekit.ops.up.cli import add_up_parser  # edgekit up ENV (ADR 0031)

    add_up_parser(sub)
    add_logs_parser(sub)
    from edgekit.cue.mesh_cli import add_mesh_parser

    add_mesh_parser(sub, regenerate=regenerate)
    from edgekit.pg.cli import add_pg_parser

    add_pg_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(command_of(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # argparse refused the command line
        from edgekit.ops.cli import usage_exit_code

        return usage_exit_code(argv, done.code)
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
