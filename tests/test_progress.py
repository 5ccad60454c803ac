"""`edgekit logs sync` and `edgekit outputs import` show the same Rich progress as
plan/apply/drift: per step with elapsed time on a terminal, nothing in CI or a pipe."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.ops.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counting_shows_items_bytes_and_elapsed_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = Tty()
    with Progress(tty).counting("prod", "logs sync") as update:
        update(0, 2, 0)
        update(1, 2, 1_500_000)
        update(2, 2, 3_000_000)
    assert re.search(r"prod: logs sync \(\d+\.\ds\)", tty.getvalue())
    for stream, ci in ((io.StringIO(), False), (Tty(), True)):
        if ci:
            monkeypatch.setenv("CI", "true")
        with Progress(stream).counting("prod", "logs sync") as update:
            update(1, 2, 1_500_000)
        assert stream.getvalue() == ""


OUTPUTS = {"pg_primary_private_ip": {"sensitive": False, "type": "string", "value": "10.0.1.5"}}
STEPS = ("check outputs (cue vet)", "cue export and regenerate files")


def _import(monkeypatch: pytest.MonkeyPatch, value: str) -> str:
    outputs = {"pg_primary_private_ip": {**OUTPUTS["pg_primary_private_ip"], "value": value}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(outputs)))
    stderr = Tty()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["outputs", "import", "--stack", "staging"]) == 0
    return stderr.getvalue()


@pytest.mark.tools
def test_outputs_import_shows_its_steps_on_a_terminal_and_is_quiet_in_ci(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_copy)
    monkeypatch.setenv("EDGEKIT_SCHEMA_DIR", str(project_copy / "schema"))
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("CI", raising=False)
    text = _import(monkeypatch, "10.0.1.5")
    for step in STEPS:
        assert re.search(rf"staging: {re.escape(step)} \(\d+\.\ds\)", text), text
    assert "imported 1 output(s) into cue/outputs/staging.cue" in text
    monkeypatch.setenv("CI", "true")
    text = _import(monkeypatch, "10.0.1.6")
    assert not any(step in text for step in STEPS), text
    assert "imported 1 output(s) into cue/outputs/staging.cue" in text
    assert "10.0.1.6" in (project_copy / "cue/outputs/staging.cue").read_text()
