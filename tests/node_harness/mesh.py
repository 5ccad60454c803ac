"""Nodes joined as the evaluated mesh configuration says: a veth link between their
namespaces carries the "public" addresses (the peers' endpoints), and userspace WireGuard
(wireguard-go, `wg`) in each namespace is configured from the node's entry of
``nix/mesh/<env>.json`` (what ``networking.wireguard.interfaces.wg-edgekit`` is set from):
its address, port, private key file (made at first boot, as generatePrivateKeyFile does) and
peers. wireguard-go keeps its control socket in a private /run/wireguard per node (a mount
namespace), so the interface keeps its evaluated name without clashing with other nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.node_harness.node import NodeRun
from tools.toolpaths import tools_dir

TIMEOUT = 60


def keypair() -> tuple[str, str]:
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True,
                             timeout=TIMEOUT).stdout.strip()
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True,
                            check=True, timeout=TIMEOUT).stdout.strip()
    return private, public


@contextlib.contextmanager
def linked(namespaces: Mapping[str, str], public: Mapping[str, str]) -> Iterator[None]:
    """One veth link between two node namespaces, with each node's public address."""
    (a, ns_a), (b, ns_b) = sorted(namespaces.items())
    tag = f"{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", f"vn0-{tag}", "netns", ns_a, "type", "veth", "peer",
                    "name", f"vn1-{tag}", "netns", ns_b], check=True, timeout=TIMEOUT)
    for node, ns, veth in ((a, ns_a, f"vn0-{tag}"), (b, ns_b, f"vn1-{tag}")):
        for argv in (["ip", "addr", "add", f"{public[node]}/24", "dev", veth],
                     ["ip", "link", "set", veth, "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, timeout=TIMEOUT)
    yield  # the link goes with the namespaces


def wg_conf(entry: Mapping[str, Any], private_key: str) -> str:
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"ListenPort = {entry['listenPort']}"]
    for peer in entry["peers"]:
        lines += ["", "[Peer]", f"PublicKey = {peer['publicKey']}",
                  f"AllowedIPs = {', '.join(peer['allowedIPs'])}",
                  f"Endpoint = {peer['endpoint']}",
                  f"PersistentKeepalive = {peer['persistentKeepalive']}"]
    return "\n".join(lines) + "\n"


def join(node: NodeRun, entry: Mapping[str, Any], private_key: str,
         processes: list[subprocess.Popen[bytes]]) -> None:
    """What wireguard-wg-edgekit.service does on `node`, from its mesh entry."""
    key_file = node.path(entry["privateKeyFile"])
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(private_key + "\n")
    key_file.chmod(0o600)
    conf = node.base / "wg.conf"
    conf.write_text(wg_conf(entry, private_key))
    conf.chmod(0o600)
    iface = entry["interface"]
    ready = node.base / "wg.ready"
    script = f"""
set -e
mkdir -p /run/wireguard
mount -t tmpfs tmpfs /run/wireguard
{tools_dir() / "bin" / "wireguard-go"} -f {iface} &
pid=$!
while [ ! -S /run/wireguard/{iface}.sock ]; do kill -0 $pid; sleep 0.05; done
wg setconf {iface} {conf}
ip addr add {entry["address"]} dev {iface}
ip link set {iface} up
touch {ready}
wait $pid
"""
    log = (node.base / "journal" / "wireguard.log").open("w")
    processes.append(subprocess.Popen(
        ["ip", "netns", "exec", node.netns, "unshare", "--mount", "--propagation", "private",
         "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True))
    deadline = time.monotonic() + TIMEOUT
    while not ready.exists():
        assert processes[-1].poll() is None and time.monotonic() < deadline, \
            (node.base / "journal" / "wireguard.log").read_text()
        time.sleep(0.05)


def mesh_entries(repo: Path, env: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / "nix" / "mesh" / f"{env}.json").read_text())
    return data


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
