"""The nodes run the Vector edgekit pins (issue 11, ADR 0017): the flake's input
nixpkgs-vector gives it, nix/node.nix refuses another version at evaluation, and the unit's
version check checks the package it runs. Evaluated offline with the stubs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from edgekit.nix.evaluate import NixEvalError, evaluate
from edgekit.obs.vector import VECTOR_VERSION
from tests.conftest import ROOT
from tests.test_nix import STUBS, _nix, _node_modules

pytestmark = pytest.mark.tools


def test_one_pin_on_the_nix_side() -> None:
    """nix/node.nix's vectorVersion is the pin; the flake and the other Nix files reuse it."""
    assert f'vectorVersion ? "{VECTOR_VERSION}"' in (ROOT / "nix/node.nix").read_text()
    for path in [ROOT / "flake.nix", *sorted((ROOT / "nix").glob("*.nix"))]:
        if path.name != "node.nix":
            assert f'"{VECTOR_VERSION}"' not in path.read_text(), path


def _flake_nodes(vector_version: str) -> Any:
    """The top-level flake with the stubs, its input nixpkgs-vector giving a Vector of
    `vector_version` (the stub nixpkgs itself has a newer one, as nixos-25.11 does)."""
    expression = (
        f"let s = import {_nix(STUBS)}; "
        f"service = s.flake {_nix(ROOT / 'services' / 'lib' / 'flake.nix')} {{ }}; "
        f"glued = svc: s.flake ({_nix(ROOT / 'services')} + \"/${{svc}}/flake.nix\") "
        "{ edgekit-service = service; }; "
        f"top = s.flake {_nix(ROOT / 'flake.nix')} {{ api = glued \"api\"; "
        "web = glued \"web\"; "
        f"nixpkgs-vector = s.nixpkgsWithVector {json.dumps(vector_version)}; }}; "
        f"flake = import {_nix(ROOT / 'flake.nix')}; "
        "in { url = flake.inputs.nixpkgs-vector.url; "
        "stock = (s.pkgs \"x86_64-linux\").vector.outPath; "
        "nodes = builtins.mapAttrs (_: n: n.vectorPackage) top.nixosConfigurations; }")
    return evaluate(expression)


def test_every_node_runs_vector_from_the_pinned_nixpkgs_input() -> None:
    """nixos-25.11 has no Vector 0.45.0: the unit refused to start and logs never
    shipped. Every node's services.vector.package is the `vector` of nixpkgs-vector, a
    nixpkgs pinned to one commit (no branch, no follows)."""
    result = _flake_nodes(VECTOR_VERSION)
    assert re.fullmatch(r"github:NixOS/nixpkgs/[0-9a-f]{40}", result["url"]), result["url"]
    pinned = f"/nix/store/00000000000000000000000000000000-vector-{VECTOR_VERSION}"
    assert result["stock"] != pinned
    assert result["nodes"] and set(result["nodes"].values()) == {pinned}


def test_a_nixpkgs_vector_of_another_version_fails_evaluation() -> None:
    with pytest.raises(NixEvalError) as err:
        _flake_nodes("0.51.1")
    assert (f"vectorPackage is Vector 0.51.1, edgekit pins {VECTOR_VERSION}"
            in err.value.message)
    assert "point the flake input nixpkgs-vector at a nixpkgs revision" in err.value.message


def test_the_version_check_checks_the_package_the_unit_runs() -> None:
    config = _node_modules("prod", "edge-1")["config"]
    assert config["services"]["vector"]["package"] == "/nix/store/vector"
    check = config["environment"]["etc"]["edgekit-vector-version-check"]["text"]
    assert "/nix/store/vector/bin/vector --version" in check
    assert f"!= '{VECTOR_VERSION}'" in check
