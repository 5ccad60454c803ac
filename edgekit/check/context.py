"""Build a rule `Context` from what a synth produced (the tree and the documents), or from
JSON documents alone; and the hook every synth runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from edgekit.check.engine import Context, Finding, StackView, run
from edgekit.check.rules import catalogue
from edgekit.core.construct import Construct
from edgekit.core.errors import Problem
from edgekit.cue.model import Estate

if TYPE_CHECKING:
    from edgekit.core.synth import StackResult


SYNTH_DOES = frozenset({"EK100"})
BETWEEN_STACKS = frozenset({"EK131", "EK132", "EK142"})
"""Rules that compare stacks: a synth of some stacks also sees the others' last output."""
"""Rules a synth already enforces itself (schemas, references), skipped by its hook."""


def suppressions_of(root: Construct) -> dict[str, dict[str, str]]:
    return {c.node.path: c.node.suppressions for c in root.node.walk()
            if c.node.suppressions}


def estates_of(root: Construct) -> list[Estate]:
    """Every CUE estate a stack of the tree was built from (``stack.estate``)."""
    found: dict[str, Estate] = {}
    for child in root.node.children:
        estate = getattr(child, "estate", None)
        if isinstance(estate, Estate):
            found.setdefault(estate.env.name, estate)
    return [found[k] for k in sorted(found)]


def context_for(root: Construct, results: Sequence[StackResult],
                extra_estates: Iterable[Estate] = ()) -> Context:
    views = []
    for result in results:
        paths = {item.element.address: item.element.node.path for item in result.rendered}
        views.append(StackView(result.stack.name, result.document, paths))
    estates = {e.env.name: e for e in extra_estates}
    for estate in estates_of(root):
        estates.setdefault(estate.env.name, estate)
    return Context(stacks=tuple(views), estates=tuple(estates[k] for k in sorted(estates)),
                   suppressions=suppressions_of(root))


def context_from_documents(documents: Mapping[str, Mapping[str, Any]],
                           estates: Iterable[Estate] = ()) -> Context:
    """A context from synthesized JSON only (no tree: paths are ``<stack>/<address>``)."""
    return Context(stacks=tuple(StackView(name, doc) for name, doc in sorted(documents.items())),
                   estates=tuple(estates))


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
