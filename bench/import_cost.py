"""Import cost: a fresh interpreter, ``import edgekit``, and a small stack written with the
cloudflare bindings, synthesized with schema checks; best and median of N runs each (wall
seconds), and the best process CPU (user + system of the child).

    .venv/bin/python bench/import_cost.py [--runs 7]

A printout, not a timed test. The best of several runs is what the code costs; the
others add what the rest of the machine was doing. One warm-up run first writes the
bytecode caches (as a user's first run does), also when PYTHONDONTWRITEBYTECODE is set.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CLOUDFLARE_STACK = """
import sys
from edgekit import App, LocalState, Resource, Stack
from edgekit.bindings.cloudflare import CloudflareDnsRecord, CloudflareZeroTrustTunnelCloudflared

app = App(outdir=sys.argv[1])
stack = Stack(app, "edge", state=LocalState())
tunnel = Resource(stack, "tunnel", type="cloudflare_zero_trust_tunnel_cloudflared",
                  config=CloudflareZeroTrustTunnelCloudflared(
                      account_id="0" * 32, name="edge", config_src="cloudflare"))
for i in range(20):
    Resource(stack, f"dns-{i}", type="cloudflare_dns_record", config=CloudflareDnsRecord(
        zone_id="1" * 32, name=f"svc{i}.example.com", type="CNAME", proxied=True, ttl=1,
        content=f"{tunnel.attr('id')}.cfargotunnel.com"))
app.synth()
"""

CASES = {
    "python -c pass": ["-c", "pass"],
    "import edgekit": ["-c", "import edgekit"],
    "cloudflare bindings stack (21 resources, synth)": ["-c", CLOUDFLARE_STACK],
}


def measure(args: list[str], runs: int) -> tuple[float, float, float]:
    """Best wall, median wall and best process CPU of `runs` fresh interpreters."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs + 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, *args, f"{tmp}/out"], check=True, cwd=ROOT,
                           env=env)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if run:  # the first run writes the bytecode caches
                walls.append(wall)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime
                            - before.ru_stime)
    return min(walls), statistics.median(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{'':<50} {'best':>7} {'median':>7} {'CPU':>7}  (load average "
          f"{os.getloadavg()[0]:.1f})")
    for name, argv in CASES.items():
        best, median, cpu = measure(argv, args.runs)
        print(f"{name:<50} {best:6.3f}s {median:6.3f}s {cpu:6.3f}s")


if __name__ == "__main__":
    main()
