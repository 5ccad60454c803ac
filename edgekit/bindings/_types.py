"""The value types the generated bindings use: a literal, or an expression in its place.

OpenTofu takes an expression wherever it takes a value, so every attribute accepts a
`Ref` (``server.attr("id")``) or a ``${...}`` string besides its literal type. Numbers and
bools accept strings too, as OpenTofu converts them.
"""

from __future__ import annotations

from typing import TypeAlias

from edgekit.core.refs import Ref

Expr: TypeAlias = "str | Ref"
"""An expression standing for the whole value: a `Ref` or a ``${...}`` string."""
Str: TypeAlias = "str | Ref"
Num: TypeAlias = "int | float | str | Ref"
Bool: TypeAlias = "bool | str | Ref"
