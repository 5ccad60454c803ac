"""The `edgekit` command: a thin layer over the library.

    edgekit synth [STACK ...]    synthesize stacks into cdktf.out/ (all by default)
    edgekit stacks               list the app's stacks

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


def cmd_synth(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    app = load_app(args.app, args.out, not args.no_schema_check)
    report = app.synth(args.stacks or None)
    took = time.perf_counter() - started
    print(
        f"edgekit: synthesized {', '.join(report.stacks)} ({report.resources} resources, "
        f"{report.files} files) into {report.outdir} in {took:.2f}s",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_stacks(args: argparse.Namespace) -> int:
    app = load_app(args.app, None, False)
    for stack in app.stacks:
        print(stack.name)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
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

    stacks = sub.add_parser("stacks", help="list the app's stacks")
    stacks.set_defaults(func=cmd_stacks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
