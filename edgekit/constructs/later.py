"""Resources a construct adds only on a later synth, once something outside OpenTofu is known.

Hyperdrive's config and the authority it pins exist only after the primary's address and
its TLS authority are imported (ADR 0025, 0031): the first synth of an environment has
neither. What the Cloudflare token must be allowed is derived from the synthesized resources
(ADR 0032), so without a word from the construct, `edgekit check --permissions` and the
preflight of `edgekit up` would not ask for what `up`'s last step creates, and a token
lacking it would fail there, after the whole first apply. `add_later` records the types
beside the stack (``stacks/<stack>/edgekit.later.json``, which OpenTofu ignores);
`edgekit.check.permissions` counts them with the stack's own resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgekit.core.construct import Construct
from edgekit.core.elements import stack_of
from edgekit.core.stack import Stack

LATER_FILE = "edgekit.later.json"


def add_later(construct: Construct, types: Iterable[str], why: str) -> None:
    """Record that `construct` will add resources of `types` to its stack later, and why."""
    stack = stack_of(construct)
    if not isinstance(stack, Stack):  # elements live in stacks (stack_of)
        raise TypeError(f"[{construct.node.path}] is not inside a Stack")
    current: dict[str, Any] = dict(stack.files.get(LATER_FILE) or {})
    for type_name in types:
        entry = dict(current.get(type_name) or {"by": [], "why": why})
        entry["by"] = sorted({*entry["by"], construct.node.path})
        current[type_name] = entry
    stack.add_file(LATER_FILE, dict(sorted(current.items())))


def later_types(files: Mapping[str, Any]) -> dict[str, str]:
    """type -> why, from a stack's files (the synth result's, or read back from disk)."""
    recorded = files.get(LATER_FILE) or {}
    return {t: str(entry.get("why", "")) for t, entry in sorted(recorded.items())
            if isinstance(entry, Mapping)}
