"""`gc_paused`: run a function with the cyclic garbage collector paused.

Synth and the writer allocate only acyclic data (dicts, lists, strings, bytes) while a
large construct tree is alive; each collector pass would walk every construct again for
nothing (at 10,000 nodes a fifth of synth, and most of writing the test file).
"""

from __future__ import annotations

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
