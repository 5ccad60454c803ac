"""The vendored upstream NixOS files are the pinned bytes, and flake.nix, flake.lock, the pin
and nixpkgs-vector agree (issue 21, ADR 0023)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from edgekit.nix.evaluate import evaluate
from edgekit.obs.vector import VECTOR_VERSION
from tests.conftest import ROOT

UPSTREAM = ROOT / "nix" / "upstream"


@pytest.fixture(scope="module")
def pin() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((UPSTREAM / "pin.json").read_text())
    return data


def test_every_vendored_file_has_its_pinned_sha256(pin: dict[str, Any]) -> None:
    on_disk = {str(p.relative_to(UPSTREAM)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted((UPSTREAM / "nixpkgs").rglob("*")) if p.is_file()}
    pinned = {rel: entry["sha256"] for rel, entry in pin["files"].items()}
    assert on_disk == pinned
    assert len(on_disk) > 50
    for rel, entry in pin["files"].items():  # every file says where it came from
        source = pin["sources"][entry["source"]]
        assert rel in source.get("paths", []) or rel.startswith(source["prefix"]), rel
        assert source["repository"] and source["how"]


def test_the_pin_names_its_licence_and_release(pin: dict[str, Any]) -> None:
    assert pin["licence"].startswith("MIT")
    assert "Permission is hereby granted, free of charge" in \
        (UPSTREAM / "nixpkgs" / "COPYING").read_text()
    assert (UPSTREAM / "nixpkgs" / "lib" / ".version").read_text() == pin["release"]["tag"]
    assert pin["sources"]["nixpkgs-lib"]["commit"] == "d7885204d4be98b3718bad1a47b80c2058d696aa"
    assert re.fullmatch(r"[0-9a-f]{40}", pin["release"]["rev"])
    assert pin["release"]["branch"] == f"nixos-{pin['release']['tag']}"


def _flake_inputs() -> dict[str, Any]:
    inputs: dict[str, Any] = evaluate(f"(import {json.dumps(str(ROOT / 'flake.nix'))}).inputs")
    return inputs


def _github(url: str) -> dict[str, str]:
    owner, repo, ref = re.fullmatch(r"github:([^/]+)/([^/]+)/(.+)", url).groups()  # type: ignore[union-attr]
    key = "rev" if re.fullmatch(r"[0-9a-f]{40}", ref) else "ref"
    return {"owner": owner, "repo": repo, key: ref, "type": "github"}


def test_flake_lock_locks_every_input_of_flake_nix(pin: dict[str, Any]) -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    nodes = lock["nodes"]
    inputs = _flake_inputs()
    assert set(nodes["root"]["inputs"]) == set(inputs)
    for name, spec in inputs.items():
        node = nodes[nodes["root"]["inputs"][name]]
        if spec["url"].startswith("path:"):
            path = spec["url"].removeprefix("path:")
            assert node["original"] == node["locked"] == {"path": path, "type": "path"}
            assert node["parent"] == []  # relative to this flake's own source
            assert (ROOT / path / "flake.nix").is_file()
        else:
            assert node["original"] == _github(spec["url"]), name
            assert re.fullmatch(r"[0-9a-f]{40}", node["locked"]["rev"])
            assert node["locked"]["narHash"].startswith("sha256-")
        follows = {k: [v["follows"]] for k, v in spec.get("inputs", {}).items()}
        assert node.get("inputs", {}) == follows, name


def test_the_lock_pin_and_nixpkgs_vector_agree(pin: dict[str, Any]) -> None:
    lock = json.loads((ROOT / "flake.lock").read_text())["nodes"]
    inputs = _flake_inputs()
    release = pin["release"]
    assert inputs["nixpkgs"]["url"] == f"github:NixOS/nixpkgs/{release['branch']}"
    assert lock["nixpkgs"]["locked"]["rev"] == release["rev"]
    assert lock["nixpkgs"]["locked"]["narHash"] == release["narHash"]
    vector = pin["nixpkgsVector"]
    assert inputs["nixpkgs-vector"]["url"] == f"github:NixOS/nixpkgs/{vector['rev']}"
    assert lock["nixpkgs-vector"]["locked"]["rev"] == vector["rev"]
    assert lock["nixpkgs-vector"]["locked"]["narHash"] == vector["narHash"]
    assert f"(narHash\n    # {vector['narHash']})" in (ROOT / "flake.nix").read_text()
    assert vector["vector"] == VECTOR_VERSION
    # the node evaluation's nixpkgs-vector stand-in reads that version from the pin
    assert "pin.json)).nixpkgsVector.vector" in (ROOT / "nix" / "eval" / "estate.nix").read_text()
    # every glued flake names the same nixpkgs as the top-level flake (and follows it)
    for flake in sorted(ROOT.glob("services/*/flake.nix")):
        urls = re.findall(r'nixpkgs\.url = "([^"]+)"', flake.read_text())
        assert urls == [inputs["nixpkgs"]["url"]], flake


def test_the_pin_tool_agrees(tmp_path: Path) -> None:
    from tools.upstream_pin import main
    assert main([]) == 0
