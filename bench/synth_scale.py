"""Synth at scale: wall time and peak RSS for 10 … 10,000 resources, schema check on.

    .venv/bin/python bench/synth_scale.py [--sizes 10,100,1000,10000]

Each size runs in a fresh interpreter, so the time includes importing edgekit,
building the tree, rendering, checking references and provider schemas, and
writing cdktf.out/ atomically; peak RSS is that process's own. A printout, not a
timed test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_one(size: int, outdir: str) -> dict[str, float]:
    started = time.perf_counter()
    from edgekit import App, LocalState, Output, Resource, Stack

    app = App(outdir=outdir)
    stack = Stack(app, "scale", state=LocalState())
    # Half servers with nested blocks and labels, half passwords they reference.
    for i in range(size // 2):
        password = Resource(stack, f"pw-{i}", type="random_password",
                            config={"length": 32, "special": False})
        Resource(stack, f"server-{i}", type="hcloud_server", config={
            "name": f"node-{i}", "server_type": "cx23", "image": "debian-12",
            "location": "nbg1", "labels": {"index": str(i), "pw": password.attr("id")},
            "public_net": {"ipv4_enabled": False, "ipv6_enabled": True},
            "user_data": f"#cloud-config\nhostname: node-{i}\n",
        })
    Output(stack, "count", value=size)
    built = time.perf_counter()
    report = app.synth()
    done = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"size": report.resources, "build_s": built - started, "synth_s": done - built,
            "total_s": done - started, "peak_mib": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(args.one, f"{tmp}/cdktf.out")))
        return
    print(f"{'resources':>9} {'build s':>8} {'synth+write s':>14} {'total s':>8} "
          f"{'peak RSS MiB':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        wall_start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - wall_start
        r = json.loads(out.stdout)
        print(f"{r['size']:>9} {r['build_s']:>8.3f} {r['synth_s']:>14.3f} {r['total_s']:>8.3f} "
              f"{r['peak_mib']:>13.1f}   (process wall {wall:.2f}s)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
