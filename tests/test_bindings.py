"""Typed resource bindings: generated from the committed schemas, checked by mypy, free at
runtime."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.providers.pins import PINS
from tests.conftest import ROOT
from tools.gen_bindings import OUT, render


@pytest.mark.parametrize("name", sorted(PINS))
def test_committed_bindings_equal_what_the_generator_writes(name: str) -> None:
    for filename, text in render(PINS[name]).items():
        assert (OUT / filename).read_text() == text, (
            f"edgekit/bindings/{filename} is stale: run python tools/gen_bindings.py")


@pytest.mark.parametrize("name", sorted(PINS))
def test_every_binding_is_a_plain_dict_at_runtime(name: str) -> None:
    module = importlib.import_module(f"edgekit.bindings.{name}")
    assert PINS[name].version == module.VERSION
    assert module.__all__ and all(getattr(module, n) is dict for n in module.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        module.Nope  # noqa: B018


def test_importing_a_binding_loads_nothing_but_itself() -> None:
    code = ("import sys, edgekit; before = set(sys.modules); "
            "import edgekit.bindings.cloudflare; print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "['edgekit.bindings', 'edgekit.bindings.cloudflare']"


USE = '''
from edgekit import App, LocalState, Resource, Stack
from edgekit.bindings.cloudflare import CloudflareDnsRecord
from edgekit.bindings.hcloud import HcloudServer, HcloudServer_PublicNet

app = App(outdir=OUTDIR)
stack = Stack(app, "s", state=LocalState(), encryption=None)
server = Resource(stack, "a", type="hcloud_server", config=HcloudServer(
    name="a", server_type="cx23", image="debian-12", labels={"x": "y"},
    public_net=HcloudServer_PublicNet(ipv4_enabled=True, ipv6_enabled=True)))
Resource(stack, "b", type="cloudflare_dns_record", config=CloudflareDnsRecord(
    zone_id="z", name="a.example.com", type="A", ttl=1, content=server.attr("ipv4_address")))
app.synth()
'''
BAD = '''
from edgekit.bindings.hcloud import HcloudServer
typo = HcloudServer(name="a", server_typ="cx23")
read_only = HcloudServer(name="a", server_type="cx23", ipv4_address="1.2.3.4")
wrong_type = HcloudServer(name="a", server_type=["cx23"])
'''


def test_mypy_checks_a_raw_resource_config_and_the_stack_synthesizes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(f"OUTDIR = {str(tmp_path / 'out')!r}\n" + USE)
    bad.write_text(BAD)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    mypy = [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
            "--cache-dir", os.devnull, "--no-error-summary"]
    ok = subprocess.run([*mypy, str(good)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout
    found = subprocess.run([*mypy, str(bad)], capture_output=True, text=True, env=env)
    lines = [line.split(": error: ", 1)[1] for line in found.stdout.splitlines()]
    assert lines == [
        'Missing key "server_type" for TypedDict "HcloudServer"  [typeddict-item]',
        'Extra key "server_typ" for TypedDict "HcloudServer"  [typeddict-unknown-key]',
        'Extra key "ipv4_address" for TypedDict "HcloudServer"  [typeddict-unknown-key]',
        'Incompatible types (expression has type "list[str]", TypedDict item "server_type" '
        'has type "str | Ref")  [typeddict-item]',
    ]
    subprocess.run([sys.executable, str(good)], check=True, cwd=ROOT)
    assert (tmp_path / "out/stacks/s/cdk.tf.json").is_file()
