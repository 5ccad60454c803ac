"""A project's front door: where its app comes from, and the one synth every command that
needs synthesized stacks goes through (ADR 0013, ADR 0027).

    load_app(root, "--app" or None)   the App: from ``--app`` or ``cdktf.json``; a module
                                      with ``make_app()``, ``module:function``, a file
                                      ``path/app.py`` (ending in ``app.synth()`` or defining
                                      ``make_app``) or ``path/app.py:function``
    synth_project(root, load, only)   refresh CUE exports (in memory) → estate preflight
                                      rules → build the app (it reads the new exports
                                      through the overlay) → render, check and run the rules
                                      → generated files → stage everything → swap it all in
    regenerate(root)                  the same for the CUE side alone (after an import)

Nothing the user sees changes before the last step: a synth that fails anywhere leaves
the CUE exports, the generated files and the output folder exactly as they were, and an
output folder edgekit does not own is refused before anything is built. ``edgekit synth``,
``plan``, ``apply``, ``import``, ``graph``, ``bootstrap`` and ``python -m stacks`` (what
``cdktf synth`` runs) all go through `synth_project`.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from edgekit.core.errors import EdgekitError
from edgekit.core.files import Transaction, check_owned_output, overlay
from edgekit.cue import has_cue

if TYPE_CHECKING:
    from edgekit.app import App, SynthReport
    from edgekit.check.engine import Finding


class UsageError(EdgekitError):
    """The command line or the project's settings are wrong (exit 2)."""


class PreflightError(EdgekitError):
    """The CUE estate breaks a rule the stacks cannot be built without; nothing written."""


@attrs.frozen
class ProjectReport:
    synth: SynthReport
    reexported: tuple[Path, ...]
    regenerated: tuple[Path, ...]


# -- where the app comes from ---------------------------------------------------------------

@attrs.frozen
class AppSpec:
    """One way to name the app: a module or a file, and the function that builds it."""

    text: str
    module: str | None = None
    path: Path | None = None
    function: str | None = None


def parse_app(text: str, root: Path) -> AppSpec:
    """``module``, ``module:function``, ``path/app.py`` or ``path/app.py:function``."""
    target, _, function = text.rpartition(":") if ":" in text else (text, "", "")
    if function and not function.isidentifier():
        raise UsageError(f"--app {text!r}: {function!r} is not a function name "
                         "(expected module:function or path/app.py:function)")
    if target.endswith(".py") or "/" in target:
        path = Path(target) if Path(target).is_absolute() else root / target
        if not path.is_file():
            raise UsageError(f"--app {text!r}: no file {path}")
        return AppSpec(text, path=path, function=function or None)
    if not all(part.isidentifier() for part in target.split(".")):
        raise UsageError(f"--app {text!r}: expected a module name (stacks), module:function, "
                         "or a file (path/app.py)")
    return AppSpec(text, module=target, function=function or None)


def app_spec(root: Path, given: str | None) -> AppSpec:
    """The app named by ``--app``, else by ``cdktf.json``'s ``app`` (``python -m module``
    or ``python path/app.py``, as the cdktf CLI runs it)."""
    if given:
        return parse_app(given, root)
    config = root / "cdktf.json"
    if not config.is_file():
        raise UsageError(f"no cdktf.json in {root} and no --app: pass --app path/app.py "
                         "(or module, module:function), or write a cdktf.json with "
                         '"app": "python path/app.py"')
    try:
        command = json.loads(config.read_text()).get("app", "")
    except (OSError, ValueError, AttributeError) as err:
        raise UsageError(f"{config}: not a JSON object with \"app\" ({err})") from err
    parts = str(command).split()
    if len(parts) == 3 and parts[0].startswith("python") and parts[1] == "-m":
        return parse_app(parts[2], root)
    if len(parts) == 2 and parts[0].startswith("python") and parts[1].endswith(".py"):
        return parse_app(parts[1], root)
    raise UsageError(f"cdktf.json app {command!r} is neither 'python -m <module>' nor "
                     "'python <file>.py'; pass --app")


def load_app(root: Path, given: str | None, *, outdir: str | None = None,
             schema_check: bool = True) -> App:
    """Build the app (never writes a file). `outdir` (``--out``) overrides the app's own."""
    from edgekit.app import App

    spec = app_spec(root, given)
    app = _module_app(spec, root) if spec.module else _file_app(spec)
    if not isinstance(app, App):
        raise UsageError(f"--app {spec.text!r} gave {type(app).__name__}, not an edgekit App")
    if outdir:
        app.outdir = Path(outdir)
    if not schema_check:
        app.disable_schema_check()
    return app


def _module_app(spec: AppSpec, root: Path) -> object:
    assert spec.module is not None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as err:
        raise UsageError(f"cannot import app module {spec.module!r}: {err}") from err
    function = spec.function or "make_app"
    factory = getattr(module, function, None)
    if not callable(factory):
        raise UsageError(f"module {spec.module!r} has no {function}() function returning "
                         "the App")
    return factory()  # make_app(outdir=None) too: load_app sets --out


def _file_app(spec: AppSpec) -> object:
    """Run the file: with a function named, as a module, then call it; else as the main
    program, whose ``app.synth()`` hands the app over instead of writing (or, without one,
    its ``make_app()``)."""
    import runpy

    from edgekit.app import capture_synth

    assert spec.path is not None
    names: dict[str, Any] = {}
    folder = str(spec.path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # as `python path/app.py` does: its neighbours import
    if spec.function:
        names = runpy.run_path(str(spec.path), run_name="edgekit_app")
        factory = names.get(spec.function)
        if not callable(factory):
            raise UsageError(f"{spec.path} has no {spec.function}() function returning the App")
        return factory()  # make_app(outdir=None) too: load_app sets --out
    with capture_synth() as captured:
        names = runpy.run_path(str(spec.path), run_name="__main__")
    if captured:
        return captured[-1]
    if callable(names.get("make_app")):
        return names["make_app"]()
    raise UsageError(f"{spec.path} neither calls app.synth() nor defines make_app(); end it "
                     "with app.synth(), or pass --app path/app.py:function")


# -- the one synth --------------------------------------------------------------------------

def preflight_findings(root: Path) -> list[Finding]:
    """Every rule over the CUE estate alone (no stack is built): what would stop a synth."""
    from edgekit.check.engine import Context, run
    from edgekit.check.rules import catalogue
    from edgekit.cue.layout import estate_layouts

    return run(Context(layouts=tuple(estate_layouts(root))), catalogue())


def preflight(root: Path) -> None:
    """Run the rules on the CUE exports alone; raise `PreflightError` on errors."""
    from edgekit.check.engine import errors

    found = errors(preflight_findings(root))
    if found:
        lines = "\n".join(f"  {f}\n    fix: {f.fix}" for f in found)
        raise PreflightError(f"the CUE estate has {len(found)} problem(s); nothing was "
                             f"written:\n{lines}")


def synth_project(root: Path | None, load_app: Callable[[], App],
                  only: Sequence[str] = ()) -> ProjectReport:
    """Synthesize the app of the project at `root` (None: an app alone, no CUE side) and
    write everything in one transaction; raises with every problem and writes nothing."""
    cue = root is not None and has_cue(root)
    exports: dict[Path, bytes] = {}
    dropped: list[Path] = []
    if cue:
        assert root is not None
        from edgekit.cue.export import fresh_exports

        exports, dropped = fresh_exports(root)
    with overlay(exports):
        if cue:
            assert root is not None
            preflight(root)
        app = load_app()
        check_owned_output(app.outdir.absolute())  # refused before anything is built
        report, files, keep = app.prepare(only or None)
        generated = _generated(root) if cue and root is not None else {}
    with Transaction() as transaction:
        for path, data in sorted({**exports, **generated}.items()):
            transaction.stage_file(path, data)
        for path in dropped:
            transaction.stage_delete(path)
        transaction.stage_tree(app.outdir, files, keep)
        transaction.commit()
    return ProjectReport(report, tuple([*exports, *dropped]), tuple(generated))


def regenerate(root: Path) -> list[Path]:
    """Re-export CUE if it changed and rewrite the generated files that differ, in one
    transaction (after a command wrote into cue/); returns the files written."""
    from edgekit.cue.export import fresh_exports

    exports, dropped = fresh_exports(root)
    with overlay(exports):
        generated = _generated(root)
    with Transaction() as transaction:
        for path, data in sorted({**exports, **generated}.items()):
            transaction.stage_file(path, data)
        for path in dropped:
            transaction.stage_delete(path)
        transaction.commit()
    return [*exports, *dropped, *generated]


def _generated(root: Path) -> dict[Path, bytes]:
    """Generated project files that differ from what is on disk."""
    from edgekit.cue.generate import differing
    from edgekit.cue.model import Estate
    from edgekit.generated import all_generated

    estates = [Estate.load(root, name, check_fresh=False) for name in Estate.env_names(root)]
    files = all_generated(root, estates)
    return {path: files[path] for path in differing(files)}
