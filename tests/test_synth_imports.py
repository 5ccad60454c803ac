"""What a small Python stack's synth does not load (ADR 0039): each of these modules costs
milliseconds of a run that takes about a hundred, and nothing in such a synth needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

STACK = """
import sys
from edgekit import App, CloudflareZone, LocalState, Service, Stack, Tunnel, VpsNode

app = App(outdir=sys.argv[1])
stack = Stack(app, "small", state=LocalState())
zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                      environment="prod")
nodes = [VpsNode(stack, f"edge-{i}", provider="hetzner", region="nbg1", size="small")
         for i in range(3)]
Tunnel(stack, "tunnel", zone=zone, nodes=nodes, services={"api": Service(name="api", port=8080)})
app.synth()  # with the schema checks and the preflight rules
print(sorted(m for m in ("subprocess", "hashlib", "jsonschema", "difflib", "cattrs")
             if m in sys.modules))
"""


def test_a_small_stack_synth_loads_no_subprocess_hashlib_or_jsonschema(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", STACK, str(tmp_path / "out")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "out" / "stacks" / "small" / "cdk.tf.json").is_file()
