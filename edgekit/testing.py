"""Helpers for testing stacks: synth in memory, assertions that fail with a readable diff.

    from edgekit.testing import synth, assert_resource

    doc = synth(my_stack)
    assert_resource(doc, "hcloud_server", "edge_1", {"server_type": "cx23"})
"""

from __future__ import annotations

import difflib
import json
from typing import Any

import orjson

from edgekit.app import App
from edgekit.core.stack import Stack


def synth(stack: Stack) -> dict[str, Any]:
    """The stack's document as plain data, checked like a real synth; nothing is written.

    Raises `SynthError` with every problem, exactly as ``edgekit synth`` would. The
    result is the stack's own copy: changing it changes nothing in the stack.
    """
    root = stack.node.root
    if not isinstance(root, App):
        raise TypeError(f"stack {stack.name!r} is not inside an App")
    document = root.synth_results([stack.name])[0].document
    copied: dict[str, Any] = orjson.loads(orjson.dumps(document))
    return copied


def assert_resource(
    document: dict[str, Any], type: str, name: str, expected: dict[str, Any]
) -> None:
    """Assert that resource `type.name` exists and contains every key of `expected`."""
    resources = document.get("resource", {}).get(type, {})
    if name not in resources:
        known = ", ".join(f"{type}.{n}" for n in sorted(resources)) or "none"
        raise AssertionError(f"no resource {type}.{name} (found: {known})")
    actual = resources[name]
    subset = {k: actual.get(k, "<missing>") for k in expected}
    if subset != expected:
        raise AssertionError(
            f"{type}.{name} differs from what was expected:\n" + _diff(expected, subset)
        )


def _diff(expected: Any, actual: Any) -> str:
    left = json.dumps(expected, indent=2, sort_keys=True).splitlines()
    right = json.dumps(actual, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(left, right, "expected", "actual", lineterm=""))
