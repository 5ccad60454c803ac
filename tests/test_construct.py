"""The construct tree: ids, paths, lookups, validation hooks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgekit import App, Construct, ConstructError, LocalState, Resource, Stack


def test_paths_join_ids_below_the_app(stack: Stack) -> None:
    group = Construct(stack, "edge")
    node = Construct(group, "node-1")
    assert node.node.path == "test/edge/node-1"
    assert [c.node.id for c in node.node.scopes] == ["", "test", "edge", "node-1"]
    assert stack.node.children == [group]


def test_find_child_raises_naming_the_missing_id_and_the_children(stack: Stack) -> None:
    Construct(stack, "a")
    Construct(stack, "b")
    assert stack.node.try_find_child("zz") is None
    with pytest.raises(ConstructError, match=r"\[test\] no child 'zz' \(children: a, b\)"):
        stack.node.find_child("zz")


def test_duplicate_id_names_both_paths(stack: Stack) -> None:
    Construct(stack, "edge")
    with pytest.raises(ConstructError) as err:
        Construct(stack, "edge")
    assert "duplicate construct id 'edge'" in str(err.value)
    assert "test/edge already exists" in str(err.value)


@pytest.mark.parametrize("bad", ["", "1node", "with space", "dots.no", "a/b", "x" * 64, "é"])
def test_invalid_ids_are_rejected_not_sanitised(stack: Stack, bad: str) -> None:
    with pytest.raises(ConstructError, match="invalid construct id"):
        Construct(stack, bad)
    assert stack.node.children == []


def test_a_reference_cannot_be_an_id(stack: Stack) -> None:
    server = Resource(stack, "s", type="hcloud_server")
    with pytest.raises(ConstructError, match="a reference cannot be used as a construct id"):
        Construct(stack, str(server.attr("name")))


def test_validation_hooks_return_messages(stack: Stack) -> None:
    thing = Construct(stack, "thing")
    thing.node.add_validation(lambda: ["first", "second"])
    assert thing.node.validate() == ["first", "second"]


def test_walk_is_depth_first_in_insertion_order(app: App) -> None:
    s = Stack(app, "s", state=LocalState(), encryption=None)
    a = Construct(s, "a")
    Construct(a, "a1")
    Construct(s, "b")
    assert [c.node.path for c in s.node.find_all()] == ["s", "s/a", "s/a/a1", "s/b"]


def test_renamed_from_rejects_its_own_id(stack: Stack) -> None:
    thing = Construct(stack, "thing")
    with pytest.raises(ConstructError, match="names its current id"):
        thing.node.renamed_from("thing")


def test_elements_outside_a_stack_are_an_error(app: App) -> None:
    with pytest.raises(ConstructError, match="must be created inside a Stack"):
        Resource(app, "loose", type="random_id")


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,62}", fullmatch=True))
def test_every_valid_id_is_kept_verbatim_in_the_path(id: str) -> None:
    app = App(check_schemas=False)
    stack = Stack(app, "s", state=LocalState(), encryption=None)
    child = Construct(stack, id)
    assert child.node.path == f"s/{id}"
    assert stack.node.find_child(id) is child


@given(st.text(max_size=20).filter(lambda s: not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,62}", s)))
def test_every_invalid_id_is_rejected(id: str) -> None:
    app = App(check_schemas=False)
    stack = Stack(app, "s", state=LocalState(), encryption=None)
    with pytest.raises(ConstructError):
        Construct(stack, id)


def test_a_failed_constructor_leaves_the_tree_as_it_was(stack: Stack) -> None:
    class Broken(Construct):
        def __init__(self, scope: Construct, id: str) -> None:
            super().__init__(scope, id)
            Resource(self, "child", type="random_id", config={"byte_length": 4})
            raise ValueError("bad props")

    with pytest.raises(ValueError, match="bad props"):
        Broken(stack, "thing")
    assert stack.node.children == []
    # the id is free again
    assert Construct(stack, "thing").node.path == "test/thing"
