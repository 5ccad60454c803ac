"""Findings and the catalogue as text, JSON, or SARIF 2.1.0 (for code-scanning UIs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from edgekit.check.engine import Finding, Rule, fix_text

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"


def catalogue_text(rules: Sequence[Rule]) -> str:
    lines = []
    for entry in rules:
        lines.append(f"{entry.id}  {entry.severity:<7}  [{entry.concern}] {entry.title}")
        lines.append(f"       source: {entry.source}")
        lines.append(f"       fix:    {fix_text(entry.fix)}")
    return "\n".join(lines) + "\n"


def catalogue_json(rules: Sequence[Rule]) -> str:
    return json.dumps([{"id": r.id, "title": r.title, "severity": r.severity,
                        "concern": r.concern, "source": r.source, "fix": fix_text(r.fix)}
                       for r in rules], indent=2) + "\n"


def findings_text(findings: Sequence[Finding]) -> str:
    lines = []
    for finding in findings:
        if finding.suppressed is not None:
            lines.append(f"suppressed: {finding} (reason: {finding.suppressed})")
        else:
            lines.append(f"{finding.severity}: {finding}\n  fix: {finding.fix}")
    errors = sum(1 for f in findings if f.severity == "error" and f.suppressed is None)
    warnings = sum(1 for f in findings if f.severity == "warning" and f.suppressed is None)
    suppressed = sum(1 for f in findings if f.suppressed is not None)
    lines.append(f"{errors} error(s), {warnings} warning(s), {suppressed} suppressed")
    return "\n".join(lines) + "\n"


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {"rule": finding.rule, "severity": finding.severity, "message": finding.message,
            "stack": finding.stack, "construct_path": finding.path,
            "address": finding.address, "pointer": finding.pointer, "fix": finding.fix,
            "suppressed": finding.suppressed}


def findings_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"findings": [_finding_json(f) for f in findings]}, indent=2) + "\n"


def _artifact(finding: Finding) -> str:
    if finding.address.startswith("cue/"):
        return finding.address
    return f"cdktf.out/stacks/{finding.stack}/cdk.tf.json" if finding.stack else "cdktf.json"


def sarif(findings: Sequence[Finding], rules: Sequence[Rule], version: str) -> dict[str, Any]:
    index = {r.id: i for i, r in enumerate(rules)}
    results = []
    for finding in findings:
        logical = [{"fullyQualifiedName": finding.path, "kind": "module"}]
        if finding.address and not finding.address.startswith("cue/"):
            logical.append({"fullyQualifiedName": finding.address, "kind": "resource"})
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": finding.severity,
            "message": {"text": f"{finding.message} (fix: {finding.fix})"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": _artifact(finding)}},
                "logicalLocations": logical,
            }],
            "properties": {"constructPath": finding.path, "address": finding.address,
                           "jsonPointer": finding.pointer, "stack": finding.stack},
        }
        if finding.suppressed is not None:
            result["suppressions"] = [{"kind": "inSource",
                                       "justification": finding.suppressed}]
        results.append(result)
    driver_rules = []
    for entry in rules:
        described: dict[str, Any] = {
            "id": entry.id,
            "name": entry.func.__name__,
            "shortDescription": {"text": entry.title},
            "fullDescription": {"text": f"{entry.title}. Source: {entry.source}"},
            "help": {"text": fix_text(entry.fix)},
            "defaultConfiguration": {"level": entry.severity},
            "properties": {"concern": entry.concern, "source": entry.source},
        }
        url = entry.source.split()[0]
        if url.startswith("https://"):
            described["helpUri"] = url
        driver_rules.append(described)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": "edgekit", "version": version,
                                "rules": driver_rules}},
            "results": results,
        }],
    }


def findings_sarif(findings: Sequence[Finding], rules: Sequence[Rule], version: str) -> str:
    return json.dumps(sarif(findings, rules, version), indent=2) + "\n"
