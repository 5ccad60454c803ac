"""What a small Python stack's synth does not load (ADR 0039): each of these modules costs
milliseconds of a run that takes about a hundred, and nothing in such a synth needs them.
The stacks are the ones `bench/synth_small.py` times."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _bench_stacks() -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "bench"))  # the bench imports its sibling synth_wall
    try:
        stacks: dict[str, str] = runpy.run_path(str(ROOT / "bench" / "synth_small.py"))[
            "STACKS"]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return stacks


STACKS = _bench_stacks()
REPORT = """
print(sorted(m for m in ("subprocess", "hashlib", "jsonschema", "difflib", "cattrs")
             if m in sys.modules))
"""


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_a_small_stack_synth_loads_no_subprocess_hashlib_or_jsonschema(
        tmp_path: Path, stack: str) -> None:
    code = STACKS[stack] + REPORT  # with the schema checks and the preflight rules
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "out" / "stacks" / "small" / "cdk.tf.json").is_file()


LAZY = """
print(sorted(m for m in ("edgekit.clouds.linode", "edgekit.clouds.vultr",
                         "edgekit.clouds.digitalocean", "edgekit.cue.model",
                         "edgekit.constructs.facts", "edgekit.deploy.waves",
                         "edgekit.obs.contract", "edgekit.obs.logpush")
             if m in sys.modules))
"""


@pytest.mark.parametrize(("stack", "loaded"), [("raw", []), ("constructs", [
    "edgekit.constructs.facts"])])
def test_a_hetzner_stack_loads_no_other_cloud_and_plain_resources_no_layouts(
        tmp_path: Path, stack: str, loaded: list[str]) -> None:
    """Cloud adapters load on first use, and the rules load the layout code only where a
    construct recorded a layout (ADR 0042): the raw stack is plain `Resource`s."""
    code = STACKS[stack] + LAZY
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == str(loaded)
