"""Nodes in network namespaces, running the real deploy agent against a real git server and
SeaweedFS (the deploy tests; ADR 0033, 0034).

Each node is a network namespace this process creates (``ekd<i>-<pid>``) with its own
loopback, so every node's services listen on their CUE ports (8080, 8081) as on a real node.
A node reaches nothing but the git server and the S3 server: `Forwarder` listens on their
ports on the node's loopback and carries each connection to the servers on this process's
127.0.0.1 (a socket made inside the namespace with setns, then used from here). The agent
runs as its unit would: ``agent.py run --config <the node's generated settings>`` again and
again (the timer), with `tests/deploy/standin.py` as the build and the activation.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from edgekit.deploy.refs import AGENT_SOURCE
from tests.conftest import ROOT

STANDIN = ROOT / "tests" / "deploy" / "standin.py"
CLONE_NEWNET = 0x40000000
TIMEOUT = 60


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}{done.stderr}"
    return done


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def listen_in(namespace: str, port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port` inside `namespace` (setns in a thread of its
    own, so no other thread of this process changes namespace)."""
    made: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            with open(f"/var/run/netns/{namespace}") as target:
                _setns(target.fileno())
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            made.append(sock)
        except BaseException as err:  # handed to the caller
            made.append(err)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


class Forwarder:
    """Connections to 127.0.0.1:port in a namespace, carried to 127.0.0.1:port here."""

    def __init__(self, namespace: str, port: int) -> None:
        self.port = port
        self.server = listen_in(namespace, port)
        self.open: set[socket.socket] = set()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        except OSError:
            client.close()
            return
        self.open |= {client, upstream}
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select(timeout=TIMEOUT):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (client, upstream):
                sock.close()
                self.open.discard(sock)

    def close(self) -> None:
        self.server.close()
        for sock in list(self.open):
            with contextlib.suppress(OSError):
                sock.close()


@attrs.define
class Node:
    name: str
    namespace: str
    home: Path
    forwarders: list[Forwarder] = attrs.field(factory=list)
    loop: subprocess.Popen[bytes] | None = None

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def profile(self) -> Path:
        return self.home / "profiles" / "system"

    @property
    def config(self) -> Path:
        return self.home / "deploy.json"

    def env(self) -> dict[str, str]:
        return {**os.environ, "EDGEKIT_STANDIN_RUN": str(self.run_dir),
                "EDGEKIT_STANDIN_UNITS": str(self.home / "units.json")}

    def exec(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def agent(self, *argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """One run of the agent in the node's namespace (what the unit's timer starts)."""
        return subprocess.run(self.exec(sys.executable, str(AGENT_SOURCE), *argv),
                              env=self.env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, pause: float = 0.3) -> None:
        """The agent's timer: one run after another, until `stop`."""
        log = (self.home / "agent.log").open("ab")
        loop = (f"while :; do {sys.executable} {AGENT_SOURCE} run --config {self.config}; "
                f"sleep {pause}; done")
        self.loop = subprocess.Popen(self.exec("sh", "-c", loop), env=self.env(),
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.loop is not None and self.loop.poll() is None:
            os.killpg(self.loop.pid, signal.SIGKILL)
            self.loop.wait(timeout=TIMEOUT)
        self.loop = None

    def services_down(self) -> None:
        """Every service process of the node stopped (a power cut, or before a reboot)."""
        for pidfile in self.run_dir.glob("*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)
            pidfile.unlink()

    def reboot(self) -> None:
        """Boot the profile's current generation: its services start (systemd's part)."""
        self.services_down()
        done = subprocess.run(self.exec(str(self.profile / "bin" / "switch-to-configuration"),
                                        "switch"), env=self.env(), capture_output=True,
                              text=True, timeout=TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr

    def generations(self) -> list[tuple[int, str]]:
        """(number, store path) of every system-N-link, as NixOS keeps them."""
        links = self.profile.parent.glob("system-*-link")
        found = [(int(p.name.split("-")[1]), os.readlink(p)) for p in links]
        return sorted(found)


@attrs.define
class Rig:
    """Nodes in namespaces; each reaches the git server and S3 on its own loopback."""

    root: Path
    ports: tuple[int, ...]
    nodes: dict[str, Node] = attrs.field(factory=dict)

    def add(self, name: str, settings: dict[str, Any], units: dict[str, Any]) -> Node:
        namespace = f"ekd{len(self.nodes)}-{os.getpid() % 100000}"
        home = self.root / name
        (home / "profiles").mkdir(parents=True)
        sh("ip", "netns", "add", namespace)
        node = Node(name, namespace, home)
        self.nodes[name] = node
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        node.forwarders = [Forwarder(namespace, port) for port in self.ports]
        settings = {**settings, "profile": str(node.profile),
                    "state": str(home / "state" / "state.json")}
        node.config.write_text(json.dumps(settings, indent=1))
        (home / "units.json").write_text(json.dumps(units))
        return node

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
            node.services_down()
            for forwarder in node.forwarders:
                forwarder.close()
            sh("ip", "netns", "del", node.namespace, check=False)


@contextlib.contextmanager
def rig(root: Path, ports: tuple[int, ...]) -> Iterator[Rig]:
    made = Rig(root, ports)
    try:
        yield made
    finally:
        made.close()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 90,
             every: float = 0.25) -> Any:
    """`probe()`'s first truthy result, or fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")
