"""Snapshots of every stack's synthesized files; review a diff with `pytest --snapshot-update`."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from stacks import make_app

FILES = make_app().synth_files()


@pytest.mark.parametrize("path", sorted(FILES))
def test_synthesized_file_matches_snapshot(path: str, snapshot: SnapshotAssertion) -> None:
    assert FILES[path].decode() == snapshot
