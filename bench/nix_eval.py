"""Per-node evaluation time of the node evaluation (nix/eval/, ADR 0023): each node of every
environment evaluated against the vendored upstream NixOS modules by Debian's
``nix-instantiate``, a fresh process each time, its whole report forced (as
``edgekit.nix.evaluate.evaluate_node`` does), and all nodes in one process (as
``evaluate_nodes`` and the tests do).

    .venv/bin/python bench/nix_eval.py [--runs 7]

Prints, per node, min and median wall time and the child's peak RSS; then the same for all
nodes at once. Target: under 0.5 s per node. A printout, not a timed test; note the load
average beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from edgekit.nix.evaluate import NODE_EVAL, nix_instantiate

ROOT = Path(__file__).resolve().parent.parent


def run(binary: str, expression: str) -> tuple[float, int]:
    """Wall seconds and the child's peak RSS (KiB) of one strict evaluation."""
    with tempfile.NamedTemporaryFile("w", suffix=".nix") as wrapper:
        wrapper.write(f"let r = {expression}; in builtins.deepSeq r r\n")
        wrapper.flush()
        start = time.perf_counter()
        child = subprocess.Popen([binary, "--eval", "--strict", "--json", wrapper.name],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "NIX_CONFIG": "substituters ="})
        assert child.stdout is not None and child.stderr is not None
        out, err = child.stdout.read(), child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(err)
    json.loads(out)
    return wall, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    binary = nix_instantiate()
    entry = json.dumps(str(ROOT / NODE_EVAL))
    base = f"(import {entry} {{ repo = {json.dumps(str(ROOT))}; }}).reports"
    nodes = json.loads(subprocess.run(
        [binary, "--eval", "--json", "-E", f"builtins.attrNames {base}"],
        capture_output=True, text=True, check=True).stdout)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each after one warm-up")
    print(f"{'node':<12} {'min s':>7} {'median s':>9} {'max RSS MiB':>12}")
    for label, expression in [*((n, f"{base}.{json.dumps(n)}") for n in nodes),
                              ("all nodes", base)]:
        run(binary, expression)
        samples = [run(binary, expression) for _ in range(args.runs)]
        walls = [s[0] for s in samples]
        rss = max(s[1] for s in samples) / 1024
        print(f"{label:<12} {min(walls):>7.3f} {statistics.median(walls):>9.3f} {rss:>12.1f}")


if __name__ == "__main__":
    main()
