"""The command modules form a tree (ADR 0027): `edgekit/cli.py` registers the others and
hands them the synth; none of them imports it, nor the front door `edgekit/project.py`
(the operations are a floor below it)."""

from __future__ import annotations

from tests.test_layers import violations

COMMAND_MODULE_FOLDERS = ("edgekit/ops", "edgekit/obs", "edgekit/pg", "edgekit/cue",
                          "edgekit/check", "edgekit/core")


def test_no_command_module_imports_the_command_line() -> None:
    assert violations(COMMAND_MODULE_FOLDERS, ("edgekit.cli",)) == []


def test_the_operations_get_the_synth_handed_in() -> None:
    assert violations(("edgekit/ops", "edgekit/obs", "edgekit/pg", "edgekit/core"),
                      ("edgekit.project", "edgekit.app")) == []
