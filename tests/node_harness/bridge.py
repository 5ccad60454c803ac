"""A TCP bridge from inside a node's network namespace to a server on the host's loopback:
how the node reaches "R2" (SeaweedFS on 127.0.0.1) at the address its /etc/hosts gives the
R2 hostname. The listening socket is made by a thread that entered the namespace (setns acts
on the calling thread only); the upstream sockets are made in the host's namespace. Closing
the bridge makes the endpoint unreachable (connection refused) until it is opened again.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000


def _listen_in(netns: str, address: str, port: int) -> socket.socket:
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def inside() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            finally:
                os.close(fd)
            sock = socket.create_server((address, port), reuse_port=False)
            made.append(sock)
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=inside)  # ends right away: its netns dies with it
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Bridge:
    """``netns:address:port`` -> ``127.0.0.1:upstream`` (host)."""

    def __init__(self, netns: str, address: str, port: int, upstream: int) -> None:
        self.netns, self.address, self.port, self.upstream = netns, address, port, upstream
        self.listener: socket.socket | None = None
        self.connections = 0

    def open(self) -> None:
        listener = _listen_in(self.netns, self.address, self.port)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()


@contextlib.contextmanager
def bridge(netns: str, address: str, port: int, upstream: int) -> Iterator[Bridge]:
    opened = Bridge(netns, address, port, upstream)
    opened.open()
    try:
        yield opened
    finally:
        opened.close()
