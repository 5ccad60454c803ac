"""Progress per stack and step with elapsed time on a terminal; quiet elsewhere (CI).

Everything goes to stderr, so ``--json`` on stdout stays one clean document. Colour
follows Rich: only on a terminal, never with ``NO_COLOR`` set.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.text import Text

Counter = Callable[[int, int, int], None]
"""``update(done, total, bytes)``."""


def _ignore(done: int, total: int, nbytes: int) -> None:
    return None


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

    @contextmanager
    def counting(self, stack: str, what: str) -> Iterator[Counter]:
        """A step that counts items and bytes (``logs sync``): yields ``update(done, total,
        bytes)``, shown as a bar with MB/s and elapsed time on a terminal, nothing in CI."""
        started = time.perf_counter()
        if not self.live:
            yield _ignore
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        with Bar(TextColumn(f"{stack}: {what}"), BarColumn(), MofNCompleteColumn(),
                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                 console=self.console, transient=True) as bar:
            task = bar.add_task(what, total=None, rate="")

            def update(done: int, total: int, nbytes: int) -> None:
                seconds = max(time.perf_counter() - started, 1e-6)
                bar.update(task, completed=done, total=total,
                           rate=f"{nbytes / 1e6:.1f} MB, {nbytes / 1e6 / seconds:.1f} MB/s")

            yield update
        took = time.perf_counter() - started
        self.console.print(Text(f"  {stack}: {what} ({took:.1f}s)", style="dim"))

    def note(self, message: str) -> None:
        """A line that matters in CI too (e.g. which stacks were applied)."""
        self.console.print(Text(f"edgekit: {message}"))
