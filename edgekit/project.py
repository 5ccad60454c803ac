"""The synth of a whole project as one transaction.

    refresh CUE exports (in memory) → estate preflight rules → build the app (it reads the
    new exports through the overlay) → render, check and run the rules → generated files
    → stage everything → swap it all in

Nothing the user sees changes before the last step: a synth that fails anywhere leaves
the CUE exports, the generated files and ``cdktf.out`` exactly as they were. Both
``edgekit synth`` and ``python -m stacks`` (what ``cdktf synth`` runs) go through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from edgekit.core.errors import EdgekitError
from edgekit.core.files import Transaction, overlay

if TYPE_CHECKING:
    from edgekit.app import App, SynthReport
    from edgekit.check.engine import Finding


class PreflightError(EdgekitError):
    """The CUE estate breaks a rule the stacks cannot be built without; nothing written."""


@attrs.frozen
class ProjectReport:
    synth: SynthReport
    reexported: tuple[Path, ...]
    regenerated: tuple[Path, ...]


def has_cue(root: Path) -> bool:
    return (root / "cue" / "cue.mod").is_dir()


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


def synth_project(root: Path, load_app: Callable[[], App],
                  only: Sequence[str] = ()) -> ProjectReport:
    exports: dict[Path, bytes] = {}
    dropped: list[Path] = []
    if has_cue(root):
        from edgekit.cue.export import fresh_exports

        exports, dropped = fresh_exports(root)
    with overlay(exports):
        if has_cue(root):
            preflight(root)
        app = load_app()
        report, files, keep = app.prepare(only or None)
        generated = _generated(root) if has_cue(root) else {}
    with Transaction() as transaction:
        for path, data in sorted({**exports, **generated}.items()):
            transaction.stage_file(path, data)
        for path in dropped:
            transaction.stage_delete(path)
        transaction.stage_tree(app.outdir, files, keep)
        transaction.commit()
    return ProjectReport(report, tuple([*exports, *dropped]), tuple(generated))


def _generated(root: Path) -> dict[Path, bytes]:
    """Generated project files that differ from what is on disk."""
    from edgekit.cue.generate import differing
    from edgekit.cue.model import Estate
    from edgekit.generated import all_generated

    estates = [Estate.load(root, name, refresh=False) for name in Estate.env_names(root)]
    files = all_generated(root, estates)
    return {path: files[path] for path in differing(files)}
