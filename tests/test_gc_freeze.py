"""A large tree is kept out of the collector's way while it is built, and given back when
synth starts (ADR 0039); a small one is never frozen."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit import App, Construct, LocalState, Resource, Stack
from edgekit.core import gcpause


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gcpause.thaw()
    gc.unfreeze()
    yield
    gcpause.thaw()
    gc.unfreeze()


def _tree(tmp_path: Path, constructs: int) -> App:
    app = App(outdir=tmp_path / "out")
    stack = Stack(app, "s", state=LocalState(), encryption=None)
    for i in range(constructs // 2):
        scope = Construct(stack, f"c{i}")
        Resource(scope, "Resource", type="random_id", config={"byte_length": 4})
    return app


def test_building_a_large_tree_freezes_it_and_synth_gives_it_back(tmp_path: Path) -> None:
    app = _tree(tmp_path, 2 * gcpause.FREEZE_EVERY + 10)
    frozen = gc.get_freeze_count()
    assert frozen > 2 * gcpause.FREEZE_EVERY  # at least every construct made before
    app.synth()
    assert gc.get_freeze_count() == 0  # the collector sees the tree again


def test_a_small_tree_is_never_frozen(tmp_path: Path) -> None:
    app = _tree(tmp_path, gcpause.FREEZE_EVERY // 2)
    assert gc.get_freeze_count() == 0
    app.synth()
    assert gc.get_freeze_count() == 0


def test_a_cycle_dropped_while_the_tree_grows_is_freed_after_synth(tmp_path: Path) -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # no young collection frees it before the tree is frozen
    try:
        dropped = Cycle()
        alive = weakref.ref(dropped)
        del dropped
        app = _tree(tmp_path, 2 * gcpause.FREEZE_EVERY)
    finally:
        gc.enable()
    gc.collect()
    assert alive() is not None  # frozen with the tree: the price of not walking it
    app.synth()
    gc.collect()
    assert alive() is None


def test_after_a_large_tree_the_process_leaves_it_to_exit(tmp_path: Path) -> None:
    code = f"""
import atexit, gc
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs last
from edgekit import App, Construct, LocalState, Resource, Stack
from edgekit.core import gcpause
app = App(outdir={str(tmp_path / "out")!r})
stack = Stack(app, "s", state=LocalState(), encryption=None)
for i in range(gcpause.FREEZE_EVERY):
    Resource(Construct(stack, f"c{{i}}"), "Resource", type="random_id",
             config={{"byte_length": 4}})
app.synth()
print("frozen after synth:", gc.get_freeze_count() > 0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.split("\n")[:2] == ["frozen after synth: False", "frozen at exit: True"]


@pytest.mark.parametrize(("synth", "frozen"), [(True, True), (False, False)])
def test_a_process_that_synthesized_leaves_its_objects_to_exit(
        tmp_path: Path, synth: bool, frozen: bool) -> None:
    """Even a small synth freezes at exit (ADR 0042): the interpreter's last collections
    would walk every module, class and object of the process, a tenth of the run; a process
    that only imports edgekit is left as Python leaves it."""
    code = f"""
import atexit, gc
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0))  # runs last
from edgekit import App, LocalState, Resource, Stack
app = App(outdir={str(tmp_path / "out")!r})
stack = Stack(app, "s", state=LocalState(), encryption=None)
Resource(stack, "id", type="random_id", config={{"byte_length": 4}})
if {synth}:
    app.synth()
print("frozen after synth:", gc.get_freeze_count() > 0)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.split("\n")[:2] == ["frozen after synth: False",
                                           f"frozen at exit: {frozen}"]
