"""`edgekit check`: run every rule over the app's stacks and the CUE estates.

Estate rules run first on the CUE exports alone, so an export that names an unknown node
or service is reported as findings instead of failing while the stacks are built.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.check.context import context_for
from edgekit.check.engine import Context, Finding, Rule, errors, run
from edgekit.check.report import (
    catalogue_json,
    catalogue_text,
    findings_json,
    findings_sarif,
    findings_text,
)
from edgekit.check.rules import catalogue
from edgekit.core.errors import ConstructError, SynthError
from edgekit.core.files import overlay
from edgekit.cue import has_cue

if TYPE_CHECKING:
    from edgekit.app import App


def render(findings: Sequence[Finding], rules: Sequence[Rule], fmt: str) -> str:
    from edgekit import __version__

    if fmt == "json":
        return findings_json(findings)
    if fmt == "sarif":
        return findings_sarif(findings, rules, __version__)
    return findings_text(findings)


def list_rules(fmt: str) -> str:
    rules = catalogue()
    return catalogue_json(rules) if fmt in ("json", "sarif") else catalogue_text(rules)




def _as_findings(err: SynthError) -> list[Finding]:
    """Problems a synth itself finds (ids, references, overrides), as EK100 findings."""
    return [Finding(rule="EK100", severity="error", message=p.message, path=p.path,
                    address=p.address, pointer=p.pointer, stack=p.path.split("/", 1)[0],
                    fix="see the message") for p in err.problems]


def _construct_finding(err: ConstructError) -> Finding:
    text = str(err)
    found = re.match(r"^\[([^\]]*)\] ", text)
    path = found.group(1) if found else ""
    message = text[found.end():] if found else text
    return Finding(rule="EK100", severity="error", message=message, path=path,
                   stack=path.split("/", 1)[0], fix="see the message")


def check(root: Path, stacks: Sequence[str], fmt: str,
          load_app: Callable[[], App]) -> int:
    """Run every rule; CUE exports that are stale against cue/ are re-rendered in memory
    (never written: `edgekit check` changes no file)."""
    exports: dict[Path, bytes] = {}
    if has_cue(root):
        from edgekit.cue.export import fresh_exports

        exports, _ = fresh_exports(root)
    with overlay(exports):
        return _check(root, stacks, fmt, load_app)


def _check(root: Path, stacks: Sequence[str], fmt: str,
           load_app: Callable[[], App]) -> int:
    from edgekit.cue.layout import estate_layouts

    rules = catalogue()
    layouts = estate_layouts(root)
    early = run(Context(layouts=tuple(layouts)), rules)
    if errors(early):  # the stacks cannot be built from this estate
        sys.stdout.write(render(early, rules, fmt))
        return 1
    try:
        app = load_app()
    except ConstructError as err:  # the tree itself could not be built: one EK100 finding
        sys.stdout.write(render([_construct_finding(err)], rules, fmt))
        return 1
    app.disable_schema_check()  # EK100 checks the documents
    app.disable_rules()
    try:
        results = app.synth_results(stacks or None)
    except SynthError as err:
        sys.stdout.write(render(_as_findings(err), rules, fmt))
        return 1
    findings = run(context_for(app, results, layouts), rules)
    sys.stdout.write(render(findings, rules, fmt))
    return 1 if errors(findings) else 0


def permissions(root: Path, stacks: Sequence[str], fmt: str,
                load_app: Callable[[], App]) -> int:
    """Print the Cloudflare permission groups the stacks need (ADR 0032), with the stacks
    they build on: what `edgekit up STACK` checks the token for, since it applies those
    too. Exit 1 when a Cloudflare type has no known permission (the table must learn it
    first)."""
    import json

    from edgekit.check.permissions import as_json, needed, render_text
    from edgekit.constructs.later import later_types
    from edgekit.core.crossref import with_dependencies

    exports: dict[Path, bytes] = {}
    if (root / "cue" / "cue.mod").is_dir():
        from edgekit.cue.export import fresh_exports

        exports, _ = fresh_exports(root)
    with overlay(exports):
        app = load_app()
        app.disable_schema_check()
        app.disable_rules()
        try:
            results = app.synth_results(stacks or None)
            wanted = with_dependencies(stacks, app.dependencies) if stacks else []
            if len(wanted) > len(stacks):  # up applies what they build on: its token too
                results = app.synth_results(wanted)
        except SynthError as err:
            sys.stdout.write(render(_as_findings(err), catalogue(), fmt))
            return 1
    added = [name for name in wanted if name not in stacks]
    if added:
        print(f"edgekit: with what {', '.join(stacks)} build on ({', '.join(added)}): "
              "`edgekit up` applies those stacks too, and checks the token for all of them",
              file=sys.stderr)
    documents = {r.stack.name: r.document for r in results}
    later = {r.stack.name: later_types(r.stack.files) for r in results}
    if fmt == "text":
        sys.stdout.write(render_text(documents, later))
    else:
        sys.stdout.write(json.dumps(as_json(documents, later), indent=2, sort_keys=True)
                         + "\n")
    return 1 if any(unknown for _, unknown in needed(documents, later).values()) else 0
