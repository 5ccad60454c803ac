"""The real tools are the pinned ones, built from the Go module proxy by tools/build.sh."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from edgekit.providers.pins import PINS
from tests.conftest import ROOT, Tofu
from tools.toolpaths import cue_bin, plugin_dir


def pins() -> dict[str, str]:
    text = (ROOT / "tools/versions.env").read_text()
    return dict(re.findall(r"^([A-Z0-9_]+)=(\S+)$", text, re.M))


@pytest.mark.tools
def test_tofu_is_the_pinned_opentofu(tofu: Tofu) -> None:
    out = subprocess.run([tofu.binary, "version", "-json"], capture_output=True, text=True,
                         check=True, env=tofu.env)
    version = json.loads(out.stdout)["terraform_version"]
    assert version == pins()["TOFU_VERSION"]
    major, minor = (int(x) for x in version.split(".")[:2])
    assert (major, minor) >= (1, 10)


@pytest.mark.tools
def test_cue_is_the_pinned_cue() -> None:
    if not Path(cue_bin()).is_file():
        pytest.fail(f"cue not found at {cue_bin()}: run `make tools`")
    out = subprocess.run([cue_bin(), "version"], capture_output=True, text=True, check=True)
    assert f"cue version v{pins()['CUE_VERSION']}" in out.stdout


@pytest.mark.tools
@pytest.mark.parametrize("name", sorted(PINS))
def test_every_pinned_provider_is_in_the_plugin_dir(name: str) -> None:
    pin = PINS[name]
    binary = (Path(plugin_dir()) / "registry.opentofu.org" / pin.source / pin.version /
              "linux_amd64" / f"terraform-provider-{name}_v{pin.version}")
    assert binary.is_file(), f"{binary} missing: run `make tools`"


def bundle_row(name: str) -> list[str]:
    """The shared bundle's manifest row for provider `name`, as build.sh's pin describes it."""
    pin = PINS[name]
    rel = (f"plugins/registry.opentofu.org/{pin.source}/{pin.version}/linux_amd64/"
           f"terraform-provider-{name}_v{pin.version}")
    stamp = Path(plugin_dir()) / rel.removeprefix("plugins/")
    built_from = Path(f"{stamp}.pin").read_text()
    return [rel, pin.version, built_from]


def run_build(tmp: Path, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """tools/build.sh with an empty cache and no Go on PATH: nothing can be built from
    source, so only the bundle can install a tool."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "EDGEKIT_TOOLS": str(tmp / "cache"),
           "EDGEKIT_TOOL_BUNDLE": str(bundle)}
    return subprocess.run([str(ROOT / "tools/build.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def fake_bundle(tmp: Path, payload: bytes, sha: str) -> tuple[Path, str]:
    import lzma

    bundle = tmp / "bundle"
    rel, version, built_from = bundle_row("random")
    (bundle / rel).parent.mkdir(parents=True)
    (bundle / f"{rel}.xz").write_bytes(lzma.compress(payload))
    (bundle / "MANIFEST.tsv").write_text(
        "path\tversion\tbuilt_from\tsha256\tbytes\tbuild_s\n"
        f"{rel}\t{version}\t{built_from}\t{sha}\t{len(payload)}\t\n")
    return bundle, rel


@pytest.mark.tools
def test_a_bundled_tool_is_installed_when_its_checksum_verifies(tmp_path: Path) -> None:
    import hashlib

    payload = b"#!/bin/sh\necho bundled\n"
    bundle, rel = fake_bundle(tmp_path, payload, hashlib.sha256(payload).hexdigest())
    result = run_build(tmp_path, bundle, "--only", "random")
    assert result.returncode == 0, result.stderr
    assert "from the bundle (sha256 verified)" in result.stderr
    installed = tmp_path / "cache" / rel
    assert installed.read_bytes() == payload
    assert Path(f"{installed}.pin").read_text() == bundle_row("random")[2]


@pytest.mark.tools
def test_a_bundled_tool_whose_checksum_differs_is_refused(tmp_path: Path) -> None:
    bundle, rel = fake_bundle(tmp_path, b"tampered", "0" * 64)
    result = run_build(tmp_path, bundle, "--only", "random")
    assert result.returncode != 0
    assert "REFUSED bundled" in result.stderr
    assert not (tmp_path / "cache" / rel).exists()


@pytest.mark.tools
def test_a_bundle_entry_built_from_another_pin_is_not_used(tmp_path: Path) -> None:
    import hashlib

    payload = b"other"
    bundle, rel = fake_bundle(tmp_path, payload, hashlib.sha256(payload).hexdigest())
    manifest = bundle / "MANIFEST.tsv"
    manifest.write_text(manifest.read_text().replace("@v1.3.2", "@v9.9.9"))
    result = run_build(tmp_path, bundle, "--only", "random")
    assert result.returncode != 0
    assert "does not match the pin" in result.stderr
    assert not (tmp_path / "cache" / rel).exists()


# -- Vector: from the bundle only ---------------------------------------------------------

def vector_pin() -> tuple[str, str, str]:
    """(version, built_from, sha256) of Vector, as tools/versions.env pins them."""
    text = (ROOT / "tools/versions.env").read_text()
    built_from = re.search(r'^VECTOR_BUILT_FROM="(.*)"$', text, re.M)
    assert built_from is not None
    version = pins()["VECTOR_VERSION"]
    return (version, built_from.group(1).replace("${VECTOR_VERSION}", version),
            pins()["VECTOR_SHA256"])


def vector_bundle(tmp: Path, payload: bytes, manifest_sha: str) -> Path:
    import lzma

    version, built_from, _ = vector_pin()
    bundle = tmp / "bundle"
    (bundle / "bin").mkdir(parents=True)
    (bundle / "bin/vector.xz").write_bytes(lzma.compress(payload))
    (bundle / "MANIFEST.tsv").write_text(
        "path\tversion\tbuilt_from\tsha256\tbytes\tbuild_s\n"
        f"bin/vector\t{version}\t{built_from}\t{manifest_sha}\t{len(payload)}\t\n")
    return bundle


@pytest.mark.tools
def test_vector_without_a_bundle_fails_naming_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_build(tmp_path, tmp_path / "empty", "--only", "vector")
    assert result.returncode != 0
    version, _, sha = vector_pin()
    assert f"MISSING vector {version}: it is installed only from a prebuilt bundle" \
        in result.stderr
    assert f"sha256 {sha}" in result.stderr and "VECTOR_BUILT_FROM" in result.stderr
    assert "GitHub mirrors" in result.stderr
    assert not (tmp_path / "cache/bin/vector").exists()


@pytest.mark.tools
def test_a_vector_bundle_entry_not_pinned_in_versions_env_is_refused(tmp_path: Path) -> None:
    """A bundle whose manifest agrees with its own (swapped) binary is still refused: the
    sha256 is pinned in tools/versions.env too."""
    import hashlib

    payload = b"#!/bin/sh\necho 'vector 0.45.0 (swapped)'\n"
    bundle = vector_bundle(tmp_path, payload, hashlib.sha256(payload).hexdigest())
    result = run_build(tmp_path, bundle, "--only", "vector")
    assert result.returncode != 0
    assert f"versions.env pins {vector_pin()[2]}" in result.stderr
    assert not (tmp_path / "cache/bin/vector").exists()


@pytest.mark.tools
def test_the_bundled_vector_installs_and_is_the_pinned_version(tmp_path: Path) -> None:
    import os

    bundle = os.environ.get("EDGEKIT_TOOL_BUNDLE")
    if not bundle:
        pytest.fail("EDGEKIT_TOOL_BUNDLE is unset: `make test` points it at ../shared/toolcache")
    result = run_build(tmp_path, Path(bundle), "--only", "vector")
    assert result.returncode == 0, result.stderr
    assert "installed vector from the bundle (sha256 verified)" in result.stderr
    installed = tmp_path / "cache/bin/vector"
    assert Path(f"{installed}.pin").read_text() == vector_pin()[1]
    out = subprocess.run([str(installed), "--version"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert out.split()[:2] == ["vector", vector_pin()[0]]
