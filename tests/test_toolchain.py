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
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.M))


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
