"""One lock (issue 21): the vendored upstream files are the pinned bytes, flake.lock pins
every input of flake.nix to the revisions the vendored files come from, and a node runs
exactly the revision deployed (system.autoUpgrade, evaluated with upstream's module)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.test_nix import _reports

pytestmark = pytest.mark.tools


@pytest.mark.parametrize("node", ["edge-1", "edge-2", "edge-tokyo", "pg-tokyo", "staging-1"])
def test_auto_upgrade_never_updates_inputs_or_the_lock(node: str) -> None:
    """Upstream's auto-upgrade.nix adds --upgrade unless told not to, and nothing stopped
    nix from resolving inputs afresh (a missing or stale lock entry would move nixpkgs to
    whatever nixos-25.11 is today): the unit must run the locked revision or fail."""
    report: dict[str, Any] = _reports()[node]
    unit = report["services"]["nixos-upgrade"]
    words = shlex.split(unit["script"].strip())
    assert words[1] == "switch"
    assert "--no-write-lock-file" in words and "--no-update-lock-file" in words
    forbidden = {"--upgrade", "--upgrade-all", "--update-input", "--recreate-lock-file",
                 "--commit-lock-file", "--override-input"}
    assert forbidden.isdisjoint(words)
    assert f"--flake git+https://git.edgekit.example/edgekit?ref=deploy/{report['env']}#{node}" \
        in unit["script"]
    assert report["timers"]["nixos-upgrade"]["timerConfig"]["OnCalendar"] == ["*:0/15"]
