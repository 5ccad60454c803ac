"""Progress per stack and step with elapsed time on a terminal; quiet elsewhere (CI).

Everything goes to stderr, so ``--json`` on stdout stays one clean document. Colour
follows Rich: only on a terminal, never with ``NO_COLOR`` set.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.text import Text


def console(stream: TextIO) -> Console:
    return Console(file=stream, highlight=False, no_color=bool(os.environ.get("NO_COLOR")),
                   soft_wrap=True)


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.console = console(stream or sys.stderr)
        self.live = self.console.is_terminal and not os.environ.get("CI")

    @contextmanager
    def step(self, stack: str, what: str) -> Iterator[None]:
        started = time.perf_counter()
        if not self.live:
            yield
            return
        with self.console.status(Text(f"{stack}: {what}…")):
            yield
        took = time.perf_counter() - started
        self.console.print(Text(f"  {stack}: {what} ({took:.1f}s)", style="dim"))

    def note(self, message: str) -> None:
        """A line that matters in CI too (e.g. which stacks were applied)."""
        self.console.print(Text(f"edgekit: {message}"))
