"""Whole-process time of a small stack, as a user runs it: ``python my_stack.py`` in a fresh
interpreter (start, imports, build, schema checks, preflight rules, the atomic write).

    .venv/bin/python bench/synth_small.py [--runs 15] [--compare OTHER_TREE]

Two stacks of 15 resources each, written from the public API:

``raw``: 15 plain `Resource`s of three providers (hcloud servers, their firewall, random
passwords, Cloudflare DNS records), with the providers and their token variables.
``constructs``: three `VpsNode`s on Hetzner behind one replicas `Tunnel` serving two
services (servers, firewalls, the tunnel, its config, secret and token, DNS records and the
Access application that guards the origins).

Prints best and median wall and the best process CPU (user + system of the child) over the
runs, after one warm-up run (it also writes the bytecode caches, as a user's first run
does). On a shared machine the best run is what the code costs; the median adds what the
rest of the machine was doing. ``--compare`` runs another edgekit source tree (e.g. ``git
archive main`` unpacked) the same way, interleaved run by run, so both see the same load.
A printout, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from synth_wall import timed_run

ROOT = Path(__file__).resolve().parent.parent

RAW = """
import sys
from edgekit import App, LocalState, Provider, Resource, Stack, Variable

app = App(outdir=sys.argv[1])
stack = Stack(app, "small", state=LocalState())
hcloud = Variable(stack, "hcloud_token", type="string", sensitive=True)
cloudflare = Variable(stack, "cloudflare_api_token", type="string", sensitive=True)
Provider(stack, "hcloud", type="hcloud", config={"token": hcloud.ref()})
Provider(stack, "cloudflare", type="cloudflare", config={"api_token": cloudflare.ref()})
firewall = Resource(stack, "closed", type="hcloud_firewall", config={
    "name": "closed", "rule": [{"direction": "out", "protocol": "tcp", "port": "any",
                                "destination_ips": ["0.0.0.0/0", "::/0"]}]})
for i in range(5):
    password = Resource(stack, f"pw-{i}", type="random_password",
                        config={"length": 32, "special": False})
    server = Resource(stack, f"edge-{i}", type="hcloud_server", config={
        "name": f"edge-{i}", "server_type": "cx23", "image": "debian-12", "location": "nbg1",
        "firewall_ids": [firewall.attr("id")], "labels": {"pw": password.attr("id")},
        "public_net": {"ipv4_enabled": False, "ipv6_enabled": True}})
    if i < 4:
        Resource(stack, f"dns-{i}", type="cloudflare_dns_record", config={
            "zone_id": "1" * 32, "name": f"edge-{i}.example.com", "type": "AAAA", "ttl": 1,
            "proxied": True, "content": server.attr("ipv6_address")})
app.synth()
"""

CONSTRUCTS = """
import sys
from edgekit import App, CloudflareZone, LocalState, Service, Stack, Tunnel, VpsNode

app = App(outdir=sys.argv[1])
stack = Stack(app, "small", state=LocalState())
zone = CloudflareZone(account_id="0" * 32, zone_id="1" * 32, zone="example.com",
                      environment="prod")
nodes = [VpsNode(stack, f"edge-{i}", provider="hetzner", region="nbg1", size="small")
         for i in range(3)]
Tunnel(stack, "tunnel", zone=zone, nodes=nodes, services={
    "api": Service(name="api", port=8080), "web": Service(name="web", port=8081)})
app.synth()
"""

STACKS = {"raw": RAW, "constructs": CONSTRUCTS}


def count_resources(out: Path) -> int:
    import json

    document = json.loads((out / "stacks" / "small" / "cdk.tf.json").read_bytes())
    return sum(len(named) for section in ("resource", "data")
               for named in document.get(section, {}).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--stacks", default=",".join(STACKS),
                        help="which stacks, comma-separated (default: all)")
    parser.add_argument("--compare", type=Path, help="another edgekit source tree")
    args = parser.parse_args()
    trees = {"this tree": ROOT}
    if args.compare:
        trees[str(args.compare)] = args.compare.resolve()
    print(f"whole process, best / median of {args.runs} runs after a warm-up; load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        for stack in args.stacks.split(","):
            script = Path(tmp) / f"{stack}.py"
            script.write_text(STACKS[stack])
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
            for run in range(args.runs + 1):
                for n, (name, tree) in enumerate(trees.items()):
                    measured = timed_run(tree, [str(script), str(Path(tmp) / f"out-{n}")],
                                         Path(tmp))
                    if run:  # the first run writes the bytecode caches
                        times[name].append(measured)
            resources = count_resources(Path(tmp) / "out-0")
            for name, runs in times.items():
                walls, cpus = [w for w, _ in runs], [c for _, c in runs]
                print(f"  {stack} ({resources} resources), {name}: wall {min(walls):.3f} / "
                      f"{statistics.median(walls):.3f} s, process CPU {min(cpus):.3f} s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
