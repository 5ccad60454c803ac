"""A real git server on 127.0.0.1 for the tests that push or pull a deploy ref.

`git daemon` serves bare repositories from a folder of its own on a free port, with
pushes allowed (``receive-pack``), so `git push`/`git fetch`/`git ls-remote` run exactly as
against any remote. Started and stopped by the `git_server` fixture; every wait is bounded.
Generic on purpose: any test that needs a remote (the deploy ref of `edgekit up`, a node
pulling its ref) makes a repository with `GitServer.create(name)`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`git` with a fixed identity and no user or system configuration."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "edgekit test", "GIT_AUTHOR_EMAIL": "test@edgekit.invalid",
           "GIT_COMMITTER_NAME": "edgekit test", "GIT_COMMITTER_EMAIL": "test@edgekit.invalid"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return done


@attrs.define
class GitServer:
    """A running ``git daemon`` serving the bare repositories under `base`."""

    base: Path
    port: int
    proc: subprocess.Popen[bytes]

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def create(self, name: str) -> str:
        """A new empty bare repository `name` (pushes allowed); returns its URL."""
        path = self.base / name
        git(self.base, "init", "--bare", "--quiet", "--initial-branch=main", str(path))
        git(path, "config", "daemon.receivepack", "true")
        return self.url(name)

    def ref(self, name: str, ref: str) -> str | None:
        """The commit `ref` (e.g. ``deploy/prod``) points at in repository `name`, or None."""
        done = git(self.base / name, "rev-parse", "--verify", "--quiet",
                   f"refs/heads/{ref}", check=False)
        return done.stdout.strip() or None

    def show(self, name: str, rev: str, path: str) -> str:
        """A file of repository `name` at `rev`."""
        return git(self.base / name, "show", f"{rev}:{path}").stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=TIMEOUT)


def start_git_server(base: Path) -> GitServer:
    base.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (base.parent / f"git-daemon-{port}.log").open("wb")
    proc = subprocess.Popen(
        ["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--reuseaddr",
         "--export-all", "--enable=receive-pack", f"--base-path={base}", "--informative-errors",
         str(base)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)  # its own process group: stop() ends its children too
    server = GitServer(base, port, proc)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"git daemon exited ({proc.returncode}); see {log.name}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"git daemon did not listen on 127.0.0.1:{port} within {TIMEOUT}s")


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    server = start_git_server(tmp_path / "git-server")
    try:
        yield server
    finally:
        server.stop()
