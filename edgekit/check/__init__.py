"""Preflight rules: what would fail at apply or open a hole, found before `tofu` runs.

    edgekit check [STACK ...] [--format text|json|sarif]   run every rule
    edgekit check --list                                   the catalogue, with sources

`engine` holds the registry and the runner, `rules/` one module per concern (a rule is
one function; `rules.catalogue()` is every rule), `report` the text/JSON/SARIF output,
`context` the hook every synth runs.
"""

from edgekit.check.engine import Context, Finding, Hit, Rule, StackView, run

__all__ = ["Context", "Finding", "Hit", "Rule", "StackView", "run"]
