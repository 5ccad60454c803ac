"""Processes of a running unit, as /proc shows them."""

from __future__ import annotations

import contextlib
from pathlib import Path


def main_process(pid: int) -> int | None:
    """The unit's program under `ip netns exec` and bwrap: the first descendant of `pid`
    that is neither (setpriv exec()s into the program)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat_file.read_text()
            name = text[text.index("(") + 1:text.rindex(")")]
            ppid = int(text[text.rindex(")") + 2:].split()[1])
            child = int(stat_file.parent.name)
            names[child] = name
            children.setdefault(ppid, []).append(child)
    queue = [pid]
    while queue:
        current = queue.pop(0)
        if current != pid and names.get(current) not in ("ip", "bwrap"):
            return current
        queue.extend(sorted(children.get(current, [])))
    return None
