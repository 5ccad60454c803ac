"""The edge Worker's own tests (node:test + Miniflare, real workerd) pass, offline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

WORKER = ROOT / "services" / "edge-worker"
OFFLINE = {
    "WRANGLER_SEND_METRICS": "false",
    "WRANGLER_SEND_ERROR_REPORTS": "false",
    "WRANGLER_HIDE_BANNER": "true",
    "CLOUDFLARE_CF_FETCH_ENABLED": "false",
    "NO_COLOR": "1",
}
MIN_PASSING = 8


def summary(output: str) -> dict[str, int]:
    """node --test's closing counters (`# pass 10`, `# fail 0`, ...)."""
    return {key: int(value) for key, value in
            re.findall(r"^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$", output, re.M)}


@pytest.mark.tools
def test_edge_worker_passes_its_node_tests_in_workerd() -> None:
    if not (WORKER / "node_modules").is_dir():
        pytest.fail("run `npm ci` in services/edge-worker (make test does)")
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm not found: the edge Worker's tests need Node.js >= 20.3 and npm")
    try:
        proc = subprocess.run([npm, "test"], cwd=WORKER, env={**os.environ, **OFFLINE},
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`npm test` in {WORKER} did not finish within {exc.timeout} s")
    output = proc.stdout + proc.stderr
    counts = summary(proc.stdout)
    assert proc.returncode == 0, f"`npm test` exited {proc.returncode}:\n{output[-6000:]}"
    assert counts.get("fail") == 0, f"failing tests: {counts}\n{output[-6000:]}"
    assert counts.get("cancelled", 0) == 0, f"cancelled tests: {counts}\n{output[-6000:]}"
    assert counts.get("pass", 0) >= MIN_PASSING, f"too few passing tests: {counts}"
