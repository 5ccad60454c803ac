"""One lock (issue 21): the vendored upstream files are the pinned bytes, flake.lock pins
every input of flake.nix to the revisions the vendored files come from, and a node runs
exactly the revision deployed (its deploy agent, never system.autoUpgrade; ADR 0033)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgekit.deploy import agent
from tests.test_nix import _reports

pytestmark = pytest.mark.tools


@pytest.mark.parametrize("node", ["edge-1", "edge-2", "edge-tokyo", "pg-tokyo", "staging-1"])
def test_the_node_runs_exactly_the_deployed_revision(node: str) -> None:
    """Upstream's auto-upgrade.nix adds --upgrade unless told not to, and nothing stopped nix
    from resolving inputs afresh (a missing or stale lock entry would move nixpkgs to
    whatever nixos-25.11 is today). The node follows its ref with the deploy agent instead
    (ADR 0033, 0034), which builds each revision with that revision's own lock or fails."""
    report: dict[str, Any] = _reports()[node]
    assert report["autoUpgrade"]["enable"] is False
    assert "nixos-upgrade" not in report["services"]
    unit = report["services"]["edgekit-deploy"]
    assert unit["serviceConfig"]["ExecStart"].endswith(
        "-agent.py run --config /etc/edgekit/deploy.json")
    settings = json.loads(report["etc"]["edgekit/deploy.json"]["text"])
    assert settings["refs"][-1] == f"refs/heads/deploy/{report['env']}"
    words = {**agent.DEFAULTS, **settings}["build"]  # the command the agent will run
    assert words[:4] == ["nix", "--extra-experimental-features", "nix-command flakes", "build"]
    assert "--no-update-lock-file" in words
    forbidden = {"--upgrade", "--upgrade-all", "--update-input", "--recreate-lock-file",
                 "--commit-lock-file", "--override-input", "--refresh"}
    assert forbidden.isdisjoint(words)


