"""Output is written atomically: a failed synth leaves the previous output untouched."""

from __future__ import annotations

import os
import threading
import unittest.mock
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit import App, LocalState, OutputError, Resource, Stack, SynthError
from edgekit.core import files, writer
from edgekit.core.writer import LazyList, dump_json, json_chunks, write_tree


def snapshot_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def make(outdir: Path) -> tuple[App, Stack]:
    app = App(outdir=outdir, check_schemas=False)
    stack = Stack(app, "s", state=LocalState(), encryption=None)
    Resource(stack, "r", type="random_id", config={"byte_length": 4})
    return app, stack


def test_failed_synth_leaves_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "cdktf.out"
    app, _ = make(out)
    app.synth()
    before = snapshot_tree(out)
    broken, stack = make(out)
    Resource(stack, "bad", type="random_id", config={"keepers": {"x": "${random_id.nope.hex}"}})
    with pytest.raises(SynthError, match=r"reference to random_id\.nope"):
        broken.synth()
    assert snapshot_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]  # no staging left


def test_unwritable_output_folder_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits; a parent that is a file fails for everyone
        parent = tmp_path / "a-file"
        parent.write_text("not a folder")
    else:
        parent = tmp_path / "locked"
        parent.mkdir(mode=0o500)
    app, _ = make(parent / "cdktf.out")
    with pytest.raises(OutputError, match=r"cannot write output folder .*cdktf\.out"):
        app.synth()
    if parent.is_dir():
        assert list(parent.iterdir()) == []
    else:
        assert parent.read_text() == "not a folder"


def test_swap_failure_restores_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """Where the exchange rename is not supported, the two-rename fallback still restores."""
    out = tmp_path / "out"
    write_tree(out, {"a.json": b"old\n"})
    monkeypatch.setattr(files, "exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def flaky_rename(src: str | Path, dst: str | Path) -> None:
        calls.append((str(src), str(dst)))
        if len(calls) == 2:  # staging -> out
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", flaky_rename)
    with pytest.raises(OutputError, match="No space left"):
        write_tree(out, {"a.json": b"new\n"})
    monkeypatch.undo()
    assert (out / "a.json").read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_synthesizing_one_stack_keeps_the_others(tmp_path: Path) -> None:
    out = tmp_path / "cdktf.out"

    def build(byte_length: int) -> App:
        app = App(outdir=out, check_schemas=False)
        for name in ("a", "b"):
            s = Stack(app, name, state=LocalState(), encryption=None)
            Resource(s, "r", type="random_id", config={"byte_length": byte_length})
        return app

    build(4).synth()
    b_before = (out / "stacks/b/cdk.tf.json").read_bytes()
    build(8).synth(["a"])
    assert b'"byte_length": 8' in (out / "stacks/a/cdk.tf.json").read_bytes()
    assert (out / "stacks/b/cdk.tf.json").read_bytes() == b_before
    assert set(__import__("json").loads((out / "manifest.json").read_text())["stacks"]) == \
        {"a", "b"}


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    make(first)[0].synth()
    make(second)[0].synth()
    assert snapshot_tree(first) == snapshot_tree(second)


def test_the_output_folder_never_goes_missing_during_a_swap(tmp_path: Path) -> None:
    """The swap is one exchange rename: a reader polling cdktf.out never finds it absent."""
    out = tmp_path / "cdktf.out"
    write_tree(out, {"manifest.json": b"0\n"})
    missing: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if not (out / "manifest.json").is_file():
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for n in range(200):
            write_tree(out, {"manifest.json": f"{n}\n".encode()})
    finally:
        stop.set()
        watcher.join()
    assert missing == []
    assert (out / "manifest.json").read_text() == "199\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_output_path_that_is_a_file_or_a_symlink_is_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "cdktf.out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    if kind == "file":
        out.write_text("not a folder")
        expected = "exists and is not a folder"
    else:
        out.symlink_to(elsewhere)
        expected = r"is a symlink \(to .*elsewhere\); edgekit replaces the output folder"
    app, _ = make(out)
    with pytest.raises(OutputError, match=expected):
        app.synth()
    assert (elsewhere / "keep.txt").read_text() == "mine"
    if kind == "file":
        assert out.read_text() == "not a folder"
    else:
        assert out.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out", "elsewhere"]


def test_transaction_commit_puts_back_what_it_replaced(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename that fails half way through the commit restores the files already replaced,
    removes what was staged, and leaves the output folder as it was."""
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "cdktf.out"
    a.write_text("old a")
    b.write_text("old b")
    write_tree(out, {"m.json": b"old\n"})
    real_replace = os.replace
    calls: list[str] = []

    def flaky_replace(src: str | Path, dst: str | Path) -> None:
        calls.append(str(dst))
        if Path(dst) == b:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    transaction = files.Transaction()
    transaction.stage_file(a, b"new a")
    transaction.stage_file(b, b"new b")
    transaction.stage_tree(out, {"m.json": b"new\n"})
    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OutputError, match=r"nothing was changed: cannot write .*b\.json: No "
                       "space left on device; the disk is full"):
        transaction.commit()
    monkeypatch.undo()
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert (out / "m.json").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "cdktf.out"]


def test_write_atomic_names_the_path_and_the_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*file/sub/x.json: .*a parent of it "
                       "is a file|cannot write .*file/sub/x.json"):
        files.write_atomic(blocker / "sub" / "x.json", b"{}")
    assert blocker.read_text() == "x"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=5),
    max_leaves=40)


@settings(max_examples=300)
@given(_JSON, st.integers(min_value=0, max_value=5))
def test_json_in_pieces_is_byte_identical_to_one_dump(value: Any, depth: int) -> None:
    """The streamed writer opens objects and arrays itself down to `depth` and dumps the
    rest value by value: the bytes are exactly the one-call canonical dump (key order,
    indentation below the opened levels, empty objects and arrays, non-ASCII keys), also
    when what is below them is written a batch of items at a time."""
    pieces = list(json_chunks(value, depth))
    assert b"".join(pieces) == dump_json(value)
    if depth and isinstance(value, dict | list) and len(value) > 1:
        assert len(pieces) > 2  # really in pieces, not one dump
    with unittest.mock.patch.object(writer, "BATCH", 2):  # large values: batch by batch
        assert b"".join(json_chunks(value, depth)) == dump_json(value)


def test_lazy_files_are_made_only_when_written_and_lazy_lists_one_item_at_a_time(
        tmp_path: Path) -> None:
    made: list[str] = []

    def block(n: int) -> dict[str, int]:
        made.append(f"item {n}")
        return {"n": n}

    lazy = files.LazyFiles()
    lazy.add("a.json", lambda: json_chunks({"items": LazyList([1, 2], block)}, depth=2))
    lazy.add("b.json", b"{}\n")
    assert made == [] and len(lazy) == 2 and sorted(lazy) == ["a.json", "b.json"]
    write_tree(tmp_path / "out", lazy)
    assert made == ["item 1", "item 2"]
    expected = dump_json({"items": [{"n": 1}, {"n": 2}]})
    assert (tmp_path / "out" / "a.json").read_bytes() == expected == lazy["a.json"]
    assert (tmp_path / "out" / "b.json").read_bytes() == b"{}\n"
    made.clear()
    many = LazyList(list(range(600)), block)  # below the opened levels: batch by batch
    pieces = json_chunks({"run": {"assert": many, "x": 1}}, depth=2)
    first = next(pieces)
    assert made == []
    rest = b"".join(pieces)
    assert bytes(first) + rest == dump_json({"run": {"assert": [{"n": n} for n in range(600)],
                                              "x": 1}})
    assert len(made) == 600
