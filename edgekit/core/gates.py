"""Apply gates: resources a stack may only create once something outside OpenTofu is ready.

Cloudflare tests a Hyperdrive config's database connection when it creates it, so the config
must not be created before the Postgres primary answers (ADR 0007). A construct says so with
`add_gate(PRIMARY_UP, resource, why)`; synth writes the gates beside the stack
(``stacks/<stack>/edgekit.gates.json``, which OpenTofu ignores) and `edgekit up` leaves the
gated resources (and what depends on them) out of its plans, with ``tofu plan -exclude``,
until the gate opens (ADR 0031). Plain `tofu apply` does not read the file: there the
ordering is the operator's, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgekit.core.elements import Element

GATES_FILE = "edgekit.gates.json"
PRIMARY_UP = "primary-up"
"""The environment's Postgres primary reports it is up (or answers through its tunnel)."""


def add_gate(gate: str, element: Element, why: str) -> None:
    """Record, in `element`'s stack, that it may only be created once `gate` is open."""
    from edgekit.core.stack import Stack

    stack = element.stack
    if not isinstance(stack, Stack):  # elements live in stacks (stack_of)
        raise TypeError(f"[{element.node.path}] is not inside a Stack")
    current: dict[str, Any] = stack.files.get(GATES_FILE) or {}
    entry = current.setdefault(gate, {"addresses": [], "why": why})
    if element.address not in entry["addresses"]:
        entry["addresses"] = sorted([*entry["addresses"], element.address])
    stack.add_file(GATES_FILE, current)
