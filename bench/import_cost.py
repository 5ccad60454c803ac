"""Import cost: a fresh interpreter, ``import edgekit``, and a small stack written with the
cloudflare bindings, synthesized with schema checks; best of N runs each (wall seconds).

    .venv/bin/python bench/import_cost.py [--runs 7]

A printout, not a timed test. The best of several runs is what the code costs; the
others add what the rest of the machine was doing.
"""

from __future__ import annotations

import argparse
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


def best(args: list[str], runs: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, *args, f"{tmp}/out"], check=True, cwd=ROOT)
            times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for name, argv in CASES.items():
        print(f"{name:<50} {best(argv, args.runs):.3f} s")


if __name__ == "__main__":
    main()
