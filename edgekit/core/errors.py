"""Every error edgekit raises on purpose.

    EdgekitError
    ├── ConstructError        the tree itself is wrong (bad id, duplicate id, lookup miss)
    ├── SynthError            one synth found problems; carries every Problem at once
    └── OutputError           the output folder could not be written; nothing was changed

A `Problem` is one line of a synth report:
``[prod/edge-1] hcloud_server.edge_1: unknown attribute "sise" @ $.sise (expected one of: ...)``
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs


class EdgekitError(Exception):
    """Base of everything edgekit raises on purpose."""


class ConstructError(EdgekitError):
    """The construct tree is wrong: an invalid or duplicate id, a missing child."""


class OutputError(EdgekitError):
    """The output folder could not be written. The previous output is untouched."""


@attrs.frozen(kw_only=True)
class Problem:
    """One thing wrong with a stack, located as precisely as we can."""

    path: str
    """Construct path, e.g. ``prod/edge-1/Resource``."""
    message: str
    address: str = ""
    """OpenTofu address, e.g. ``hcloud_server.edge_1``; empty when not an element."""
    pointer: str = ""
    """JSON pointer into the element body, in ``$.a.b[2]`` form; empty for the whole element."""

    def __str__(self) -> str:
        where = f"[{self.path}]"
        if self.address:
            where += f" {self.address}:"
        tail = f" @ {self.pointer}" if self.pointer else ""
        return f"{where} {self.message}{tail}"


class SynthError(EdgekitError):
    """A synth found one or more problems; all of them are reported together."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"synth found {count} {noun}; nothing was written:\n{lines}")
