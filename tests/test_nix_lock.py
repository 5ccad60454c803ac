"""One lock (issue 21): the vendored upstream files are the pinned bytes, flake.lock pins
every input of flake.nix to the revisions the vendored files come from, and a node runs
exactly the revision deployed (its deploy agent, never system.autoUpgrade; ADR 0033)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgekit.deploy import agent
from tests.conftest import ROOT
from tests.test_nix import _nix, _reports, evaluate_modules

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




def test_a_node_without_the_agent_upgrades_to_the_deployed_revision_only() -> None:
    """Where no deploy agent runs, nix/node.nix turns on system.autoUpgrade; the unit the
    vendored upstream auto-upgrade.nix makes from it must neither update an input nor write
    the lock (it adds --refresh itself: that re-reads the ref's newest commit, whose own
    flake.lock then pins every input)."""
    modules = (f"(let est = import {_nix(ROOT / 'nix' / 'estate.nix')} {{ }}; n = est.edge-1; "
               f"in import {_nix(ROOT / 'nix' / 'node.nix')} {{ name = \"edge-1\"; "
               "node = n.composed; modules = e.gluedModules; vector = n.vector; "
               "vectorPackage = e.pkgs.vector // { version = \"0.45.0\"; }; "
               "upgradeFlake = \"git+https://git.example/estate?ref=deploy/prod\"; })")
    unit = evaluate_modules(modules, "r.services.nixos-upgrade")
    (line,) = unit["script"].strip().splitlines()
    words = line.split()
    assert words[0].endswith("/bin/nixos-rebuild") and words[1] == "switch"
    assert words[words.index("--flake") + 1] == \
        "git+https://git.example/estate?ref=deploy/prod#edge-1"
    assert {"--no-write-lock-file", "--no-update-lock-file"} <= set(words)
    forbidden = {"--upgrade", "--upgrade-all", "--update-input", "--recreate-lock-file",
                 "--commit-lock-file", "--override-input"}
    assert forbidden.isdisjoint(words), line
