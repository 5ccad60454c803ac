"""L1: the providers edgekit emits blocks for, and the exact versions it pins."""

from edgekit.providers.pins import PINS, pin_for

__all__ = ["PINS", "pin_for"]
