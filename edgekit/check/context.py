"""Build a rule `Context` from what a synth produced (the tree and the documents), or from
JSON documents alone; and the hook every synth runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from edgekit.check.engine import Context, Finding, StackView, run
from edgekit.check.rules import catalogue
from edgekit.core.construct import Construct
from edgekit.core.errors import Problem

if TYPE_CHECKING:
    from edgekit.constructs.facts import Layout
    from edgekit.core.synth import StackResult

FACTS = "edgekit.constructs.facts"
"""Where layouts are made: until something imported it, no construct recorded a layout and
no stack declares one, so a stack of plain resources never loads it (ADR 0042)."""


SYNTH_DOES = frozenset({"EK100"})
BETWEEN_STACKS = frozenset({"EK131", "EK132", "EK142"})
"""Rules that compare stacks: a synth of some stacks also sees the others' last output."""
"""Rules a synth already enforces itself (schemas, references), skipped by its hook."""


def suppressions_of(root: Construct) -> dict[str, dict[str, str]]:
    return {c.node.path: c.node.suppressions for c in root.node.walk()
            if c.node.suppressions}


def declared_layouts(root: Construct) -> list[Layout]:
    """The layouts the stacks of the tree were built from (``stack.declared_layout``: the
    reference estate's environment in CUE, set by its L3 stack)."""
    if FACTS not in sys.modules:
        return []
    from edgekit.constructs.facts import Layout

    found = [getattr(child, "declared_layout", None) for child in root.node.children]
    return [layout for layout in found if isinstance(layout, Layout)]


def recorded_layouts(root: Construct) -> list[Layout]:
    """The layouts the constructs below `root` recorded (`edgekit.constructs.facts`)."""
    if FACTS not in sys.modules:
        return []
    from edgekit.constructs.facts import layouts_in

    return layouts_in(root)


def context_for(root: Construct, results: Sequence[StackResult],
                extra_layouts: Iterable[Layout] = ()) -> Context:
    """The rules' view of a synth: the documents, the layouts made from CUE (first: a fault
    they show is located in CUE), then what the constructs recorded."""
    views = []
    for result in results:
        paths = {item.element.address: item.element.node.path for item in result.rendered}
        views.append(StackView(result.stack.name, result.document, paths))
    from_cue = {layout.stack: layout for layout in extra_layouts}
    for layout in declared_layouts(root):
        from_cue.setdefault(layout.stack, layout)
    layouts = [from_cue[k] for k in sorted(from_cue)] + recorded_layouts(root)
    return Context(stacks=tuple(views), layouts=tuple(layouts),
                   suppressions=suppressions_of(root))


def context_from_documents(documents: Mapping[str, Mapping[str, Any]],
                           layouts: Iterable[Layout] = ()) -> Context:
    """A context from synthesized JSON only (no tree: paths are ``<stack>/<address>``)."""
    return Context(stacks=tuple(StackView(name, doc) for name, doc in sorted(documents.items())),
                   layouts=tuple(layouts))


def _kept_views(root: Construct, synthesized: set[str]) -> list[StackView]:
    """The previous output of the app's other stacks (``cdktf.out/stacks/<s>/cdk.tf.json``)."""
    outdir = getattr(root, "outdir", None)
    views = []
    for child in root.node.children:
        name = child.node.id
        if not getattr(child, "is_stack", False) or name in synthesized or outdir is None:
            continue
        path = Path(outdir) / "stacks" / name / "cdk.tf.json"
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict):
            views.append(StackView(name, document))
    return views


def as_problem(finding: Finding) -> Problem:
    return Problem(path=finding.path or finding.stack or "<app>", address=finding.address,
                   pointer=finding.pointer,
                   message=f"{finding.rule} {finding.message} (fix: {finding.fix})")


def synth_rules(root: Construct, results: Sequence[StackResult]
                ) -> tuple[list[Problem], list[Finding]]:
    """Run every rule for a synth: error problems (they stop the write), and the findings
    that do not (warnings, suppressed), which the results and the report carry."""
    rules = [r for r in catalogue() if r.id not in SYNTH_DOES]
    ctx = context_for(root, results)
    findings = run(ctx, [r for r in rules if r.id not in BETWEEN_STACKS])
    kept = _kept_views(root, {r.stack.name for r in results})
    between = run(attrs.evolve(ctx, stacks=(*ctx.stacks, *kept)),
                  [r for r in rules if r.id in BETWEEN_STACKS])
    names = {r.stack.name for r in results}
    findings.extend(f for f in between if f.stack in names)  # not the kept stacks' own
    by_stack = {r.stack.name: r for r in results}
    errors: list[Problem] = []
    others: list[Finding] = []
    for finding in findings:
        if finding.suppressed is not None:
            others.append(finding)
        elif finding.severity == "error":
            errors.append(as_problem(finding))
        else:
            others.append(finding)
            target = by_stack.get(finding.stack)
            if target is not None:
                target.warnings.append(as_problem(finding))
    return errors, others
