"""`gc_paused`: run a function with the cyclic garbage collector paused.

Synth and the writer allocate only acyclic data (dicts, lists, strings, bytes) while a
large construct tree is alive; each collector pass would walk every construct again for
nothing (at 10,000 nodes a fifth of synth, and most of writing the test file).
"""

from __future__ import annotations

import atexit
import functools
import gc
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def gc_paused(function: F) -> F:
    """`function` with the collector paused while it runs (and restored after)."""

    @functools.wraps(function)
    def paused(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return cast(F, paused)


FREEZE_EVERY = 10_000
"""Constructs created between two moves of everything alive into the collector's
permanent generation while a tree is built (`construct_created`)."""

_created = 0
_frozen = False
_exit_frozen = False
"""Whether the process freezes everything at exit (`freeze_at_exit`)."""


def freeze_at_exit() -> None:
    """Freeze everything at exit, once a tree was synthesized or a large one was built.

    The interpreter's last collections walk every object of the process and free it cycle
    by cycle: 0.7 s of a 10,000-node synth's 3 s, and a tenth (10 ms) of a small stack's
    whole run, most of it the modules, classes and functions any import leaves. Frozen,
    they are left to the end of the process (ADR 0039, ADR 0042). Only finalizers of
    objects in reference cycles are skipped, which Python does not promise to run at exit;
    ``atexit`` functions and ``weakref.finalize`` (temporary directories) still run."""
    global _exit_frozen
    if not _exit_frozen:
        _exit_frozen = True
        atexit.register(gc.freeze)


def construct_created() -> None:
    """Count a construct; every `FREEZE_EVERY` of them, freeze what exists (`gc.freeze`).

    A tree is built in the user's own code, where the collector cannot be paused, and it
    is one cycle (constructs and their nodes point at each other): each full collection
    walked every construct built so far, a third of building 10,000 nodes. Frozen objects
    are never walked again until `thaw`, which synth calls before it renders; the price is
    that a garbage cycle made while a large tree is built is freed only after that. A
    small tree (fewer than `FREEZE_EVERY` constructs) is never frozen.
    """
    global _created, _frozen
    _created += 1
    if _created >= FREEZE_EVERY:
        _created = 0
        _frozen = True
        gc.freeze()
        freeze_at_exit()


def thaw() -> None:
    """Give what `construct_created` froze back to the collector (all of the permanent
    generation: a program's own `gc.freeze` too, if it made one while a tree grew)."""
    global _created, _frozen
    _created = 0
    if _frozen:
        _frozen = False
        gc.unfreeze()
