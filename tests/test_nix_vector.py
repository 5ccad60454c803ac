"""The nodes run the Vector edgekit pins (issue 11, ADR 0017): the flake's input
nixpkgs-vector gives it, nix/node.nix refuses another version at evaluation, and the unit's
version check checks the package it runs. Evaluated offline: the flake through nix/eval/
(its nixpkgs inputs are the pkgs stand-in of nix/stubs.nix)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from edgekit.nix.evaluate import NixEvalError, evaluate
from edgekit.obs.vector import VECTOR_VERSION
from tests.conftest import ROOT
from tests.test_nix import NODE_EVAL, _nix, _node_modules

pytestmark = pytest.mark.tools


def test_one_pin_on_the_nix_side() -> None:
    """nix/node.nix's vectorVersion is the pin; the flake and the other Nix files reuse it."""
    assert f'vectorVersion ? "{VECTOR_VERSION}"' in (ROOT / "nix/node.nix").read_text()
    for path in [ROOT / "flake.nix", *sorted((ROOT / "nix").glob("*.nix"))]:
        if path.name != "node.nix":
            assert f'"{VECTOR_VERSION}"' not in path.read_text(), path


def _flake_nodes(vector_version: str) -> Any:
    """The top-level flake, its input nixpkgs-vector giving a Vector of `vector_version`
    (the nixpkgs input itself has a newer one, as nixos-25.11 does)."""
    expression = (
        f"let e = import {_nix(NODE_EVAL)} {{ nixpkgsVectorVersion = "
        f"{json.dumps(vector_version)}; }}; flake = import {_nix(ROOT / 'flake.nix')}; "
        "in { url = flake.inputs.nixpkgs-vector.url; stock = e.pkgs.vector.outPath; "
        "nodes = builtins.mapAttrs (_: n: n.config.services.vector.package.outPath) e.nodes; }")
    return evaluate(expression)


def test_every_node_runs_vector_from_the_pinned_nixpkgs_input() -> None:
    """nixos-25.11 has no Vector 0.45.0: the unit refused to start and logs never
    shipped. Every node's services.vector.package is the `vector` of nixpkgs-vector, a
    nixpkgs pinned to one commit (no branch, no follows)."""
    result = _flake_nodes(VECTOR_VERSION)
    assert re.fullmatch(r"github:NixOS/nixpkgs/[0-9a-f]{40}", result["url"]), result["url"]
    (pinned,) = set(result["nodes"].values())
    assert pinned.endswith(f"-vector-{VECTOR_VERSION}")
    assert result["stock"] != pinned and len(result["nodes"]) == 5


def test_a_nixpkgs_vector_of_another_version_fails_evaluation() -> None:
    with pytest.raises(NixEvalError) as err:
        _flake_nodes("0.51.1")
    assert (f"vectorPackage is Vector 0.51.1, edgekit pins {VECTOR_VERSION}"
            in err.value.message)
    assert "point the flake input nixpkgs-vector at a nixpkgs revision" in err.value.message


def test_the_version_check_checks_the_package_the_unit_runs() -> None:
    config = _node_modules("prod", "edge-1")["config"]
    package = config["services"]["vector"]["package"]
    assert config["services"]["vector"]["version"] == VECTOR_VERSION
    check = config["environment"]["etc"]["edgekit-vector-version-check"]["text"]
    assert f"{package}/bin/vector --version" in check
    assert f"!= '{VECTOR_VERSION}'" in check
