"""Snapshots of every stack's synthesized files; review a diff with `pytest --snapshot-update`."""

from __future__ import annotations

from functools import cache

import pytest
from syrupy.assertion import SnapshotAssertion

from stacks import make_app


def _files(schema_check: bool) -> dict[str, bytes]:
    app = make_app()
    if not schema_check:
        app.disable_schema_check()
    return app.synth_files()


@cache
def checked_files() -> dict[str, bytes]:
    """The real synth, schema checks on; a failure fails the tests, not the collection."""
    return _files(schema_check=True)


@pytest.mark.parametrize("path", sorted(_files(schema_check=False)))
def test_synthesized_file_matches_snapshot(path: str, snapshot: SnapshotAssertion) -> None:
    assert checked_files()[path].decode(errors="replace") == snapshot
