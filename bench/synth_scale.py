"""Synth at scale: wall time and peak RSS for 10 … 10,000 resources or nodes, schema check on.

    .venv/bin/python bench/synth_scale.py [--mode raw|constructs|both] [--sizes 10,100,1000,10000]

``raw``: N plain `Resource`s (half ``hcloud_server``, half ``random_password``).
``constructs``: N nodes through the L2 constructs, as a user writes them: one `VpsNode`
per node (server + its closed firewall) and one `Tunnel(strategy="per_node")` over all of
them (per node: tunnel secret, tunnel, tunnel config, token, two proxied DNS records; per
service: a load balancer with a pool of N origins).

Each size runs in a fresh interpreter, so the time includes importing edgekit,
building the tree, rendering, checking references and provider schemas, and
writing cdktf.out/ atomically; process CPU (user + system, including interpreter
start) is less sensitive than wall time to other work on a shared machine; peak RSS
is that process's own. A printout, not a timed test.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def build_raw(stack: Any, size: int) -> None:
    from edgekit import Output, Resource

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


def build_constructs(stack: Any, size: int) -> None:
    from edgekit import CloudflareZone, Service, Tunnel, VpsNode

    services = {"api": Service(name="api", port=8080), "web": Service(name="web", port=8081)}
    zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                          environment="bench")
    nodes = [VpsNode(stack, f"node-{i}", provider="hetzner", region="nbg1", size="small")
             for i in range(size)]
    Tunnel(stack, "tunnel", zone=zone, services=services, nodes=nodes, strategy="per_node")


def run_one(mode: str, size: int, outdir: str) -> dict[str, float]:
    started = time.perf_counter()
    from edgekit import App, LocalState, Stack

    # The preflight rules refuse the construct stack's per_node origin hostnames (two labels
    # below the zone, EK161) until the tunnels use one-label origins: measured without them.
    app = App(outdir=outdir, rules=mode == "raw")
    stack = Stack(app, "scale", state=LocalState())
    (build_raw if mode == "raw" else build_constructs)(stack, size)
    built = time.perf_counter()
    report = app.synth()
    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"size": size, "resources": report.resources, "build_s": built - started,
            "synth_s": done - built, "total_s": done - started,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}


def table(mode: str, sizes: list[int]) -> None:
    what = "resources" if mode == "raw" else "nodes"
    print(f"{mode}:")
    print(f"{what:>9} {'resources':>9} {'build s':>8} {'synth+write s':>14} {'total s':>8} "
          f"{'process CPU s':>13} {'peak RSS MiB':>13}")
    for size in sizes:
        wall_start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--mode", mode],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - wall_start
        r = json.loads(out.stdout)
        print(f"{r['size']:>9} {r['resources']:>9} {r['build_s']:>8.3f} {r['synth_s']:>14.3f} "
              f"{r['total_s']:>8.3f} {r['cpu_s']:>13.2f} {r['peak_mib']:>13.1f}   "
              f"(process wall {wall:.2f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--mode", choices=("raw", "constructs", "both"), default="both")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(args.mode, args.one, f"{tmp}/cdktf.out")))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    for mode in ("raw", "constructs") if args.mode == "both" else (args.mode,):
        table(mode, sizes)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
