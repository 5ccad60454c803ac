"""A converted node has network on every cloud (issue 24): nixos-infect writes the network it
saw into /etc/nixos/networking.nix, which the node's flake configuration does not import, so
the first switch must bring its own. Each cloud's evaluated networking (nix/cloud.nix from the
adapter's facts, as the flake passes them) gives addresses, routes and DNS: by DHCP where the
cloud serves it, else from the metadata service, whose script runs here for real in network
namespaces with a stand-in metadata server."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from edgekit.clouds import CLOUDS, PROVIDERS
from edgekit.nix.evaluate import evaluate
from tests.conftest import ROOT

NODE_EVAL = ROOT / "nix" / "eval" / "estate.nix"


def facts(provider: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "nix" / "clouds.json").read_text())[provider]
    return data


def networking(provider: str) -> dict[str, Any]:
    """nix/cloud.nix for the provider's facts, evaluated as the nodes are (ADR 0023: the
    vendored upstream modules, the listed stand-ins, the `pkgs` stand-in): its networking
    options and the units, as the node evaluation reports them."""
    config: dict[str, Any] = evaluate(
        f"facts: let e = import {NODE_EVAL} {{ }}; ev = e.evalModules [ "
        f"(import {ROOT / 'nix' / 'cloud.nix'} {{ inherit facts; }}) "
        "{ networking.hostName = \"test\"; system.stateVersion = \"25.11\"; } ]; "
        "c = ev.config; in { networking = { inherit (c.networking) useDHCP "
        "usePredictableInterfaceNames interfaces nameservers; }; "
        "systemd.services = (e.reportOf ev).services; }", facts(provider))
    return config


def test_the_generated_facts_are_the_adapters() -> None:
    for name, cloud in CLOUDS.items():
        assert facts(name) == json.loads(json.dumps(cloud.node_facts.as_json())), name
        assert cloud.node_facts.sources.keys() >= {"metadata", "boot", "second_disk",
                                                   "network"}, name


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_cloud_gives_the_node_addresses_routes_and_dns(provider: str) -> None:
    config = networking(provider)
    net = config["networking"]
    assert net["usePredictableInterfaceNames"] is False  # eth0 public, eth1 private
    assert net["useDHCP"] is False  # no DHCP on interfaces it should not run on
    method = facts(provider)["network"]["method"]
    if method == "dhcp":
        # the cloud's DHCP gives the address, the default route and the resolvers
        assert net["interfaces"] == {"eth0": {"useDHCP": True}, "eth1": {"useDHCP": True}}
        assert "edgekit-netconf" not in config["systemd"]["services"]
    else:
        assert net["interfaces"] == {}
        assert net["nameservers"], provider  # DNS without DHCP
        unit = config["systemd"]["services"]["edgekit-netconf"]
        assert "network-online.target" in unit["before"]
        assert "network-online.target" in unit["wantedBy"]
        assert unit["serviceConfig"]["Type"] == "oneshot"
        assert unit["serviceConfig"]["RemainAfterExit"] is True
        assert facts(provider)["network"]["metadataUrl"] in unit["script"]


def test_digitalocean_is_the_cloud_without_dhcp() -> None:
    assert {p for p in PROVIDERS if facts(p)["network"]["method"] == "metadata"} == {
        "digitalocean"}


METADATA = {
    "droplet_id": 2756294,
    "interfaces": {
        "public": [{"ipv4": {"ip_address": "203.0.113.10", "netmask": "255.255.255.0",
                             "gateway": "203.0.113.1"},
                    "ipv6": {"ip_address": "2001:db8::10", "cidr": 64,
                             "gateway": "2001:db8::1"},
                    "anchor_ipv4": {"ip_address": "10.20.0.5", "netmask": "255.255.0.0",
                                    "gateway": "10.20.0.1"},
                    "mac": "02:00:00:00:00:01", "type": "public"}],
        "private": [{"ipv4": {"ip_address": "10.110.0.2", "netmask": "255.255.240.0",
                              "gateway": "0.0.0.0"}, "mac": "02:00:00:00:00:02",
                     "type": "private"}]},
    "dns": {"nameservers": ["67.207.67.2", "67.207.67.3"]},
}
"""Shaped as DigitalOcean's metadata API reference shows /metadata/v1.json."""


def test_the_droplet_configures_itself_from_the_metadata_service(tmp_path: Path) -> None:
    """The generated edgekit-netconf script, run with the real iproute2, curl and jq in a
    namespace whose eth0 has no address yet: it reaches the stand-in metadata server on
    169.254.169.254 (in a second namespace, over a veth pair) from a temporary link-local
    address, then sets the public IPv4 + anchor, default route, IPv6 + route and eth1."""
    script = networking("digitalocean")["systemd"]["services"]["edgekit-netconf"]["script"]
    served = tmp_path / "served" / "metadata"
    served.mkdir(parents=True)
    (served / "v1.json").write_text(json.dumps(METADATA))
    node, md = f"edgekit-do-{os.getpid()}", f"edgekit-md-{os.getpid()}"
    setup = [
        ["ip", "netns", "add", node], ["ip", "netns", "add", md],
        ["ip", "link", "add", f"do{os.getpid()}", "type", "veth", "peer", "name",
         f"md{os.getpid()}"],
        ["ip", "link", "set", f"do{os.getpid()}", "netns", node],
        ["ip", "link", "set", f"md{os.getpid()}", "netns", md],
        ["ip", "-n", node, "link", "set", f"do{os.getpid()}", "name", "eth0"],
        ["ip", "-n", node, "link", "add", "eth1", "type", "bridge"],  # no dummy module here
        ["ip", "-n", node, "link", "set", "lo", "up"],
        ["ip", "-n", md, "addr", "add", "169.254.169.254/16", "dev", f"md{os.getpid()}"],
        ["ip", "-n", md, "link", "set", f"md{os.getpid()}", "up"],
        ["ip", "-n", md, "link", "set", "lo", "up"],
    ]
    server = None
    try:
        for argv in setup:
            subprocess.run(argv, check=True, capture_output=True)
        server = subprocess.Popen(
            ["ip", "netns", "exec", md, sys.executable, "-m", "http.server", "--bind",
             "169.254.169.254", "--directory", str(tmp_path / "served"), "80"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = textwrap.dedent(f"""\
            set -e
            mount -t tmpfs edgekit-run /run
            bash -c {shlex.quote(script)}
            echo "== v4"; ip -4 -o addr show dev eth0
            echo "== route"; ip -4 route show default
            echo "== v6"; ip -6 -o addr show dev eth0 scope global
            echo "== route6"; ip -6 route show default
            echo "== eth1"; ip -4 -o addr show dev eth1
            echo "== kept"; cat /run/edgekit/metadata-network.json | jq -c .droplet_id
            """)
        done = subprocess.run(["ip", "netns", "exec", node, "unshare", "--mount", "sh", "-c",
                               run], capture_output=True, text=True, timeout=180)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        for name in (node, md):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    v4 = out.split("== v4")[1].split("== route")[0]
    assert "inet 203.0.113.10/24" in v4 and "inet 10.20.0.5/16" in v4
    assert "169.254." not in v4  # the temporary link-local address is gone again
    assert "default via 203.0.113.1 dev eth0" in out.split("== route")[1]
    assert "inet6 2001:db8::10/64" in out.split("== v6")[1]
    assert "default via 2001:db8::1 dev eth0" in out.split("== route6")[1]
    assert "inet 10.110.0.2/20" in out.split("== eth1")[1]
    assert out.strip().endswith("2756294")
