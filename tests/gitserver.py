"""A real git server for tests: bare repositories served by git's own ``git http-backend``.

Smart HTTP, as a git host serves ``git+https://`` flakes: clone, fetch, ``ls-remote`` and
push (``http.receivepack`` on) with the real git client, and Nix's git fetcher. A small
threaded HTTP server on 127.0.0.1 at a free port runs the CGI program per request (bodies
in full, chunked request bodies decoded, as a web server in front of it would do).

    with GitServer.start(tmp_path) as server:
        server.create("estate.git")         # a bare repository, push enabled; its URL
        server.url("estate.git")            # http://127.0.0.1:<port>/estate.git
        server.ref("estate.git", "deploy/prod")   # the commit a branch names, or None

`git_server` is the fixture (one server per test: a thread, started in milliseconds); import
it into a test module to use it. `git(*argv, cwd=…)` runs the real git client with a fixed
identity and no user or system configuration, failing the test with git's output; `git_in`
is the same with the folder first, returning the finished process (``check=False`` for a
command expected to fail).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest

BACKEND = "/usr/lib/git-core/git-http-backend"
TIMEOUT = 60


def _run(argv: tuple[str, ...], cwd: Path | None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "edgekit tests", "GIT_AUTHOR_EMAIL": "tests@edgekit.invalid",
            "GIT_COMMITTER_NAME": "edgekit tests",
            "GIT_COMMITTER_EMAIL": "tests@edgekit.invalid", **(env or {})}
    return subprocess.run(["git", *argv], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def git(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run git, failing the test with its output when it fails; its standard output."""
    done = _run(argv, cwd, env)
    assert done.returncode == 0, f"git {' '.join(argv)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def git_in(cwd: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`git` in the folder `cwd`; the finished process (with ``check``, a failure fails the
    test with git's output)."""
    done = _run(argv, cwd)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(argv)} failed in {cwd}:\n{done.stderr}")
    return done


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _cgi(self) -> None:
            path, _, query = self.path.partition("?")
            body = _read_body(self) if self.command == "POST" else b""
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                   "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                   "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1"}
            for name in ("Content-Encoding", "Git-Protocol"):
                if self.headers.get(name):
                    env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
            done = subprocess.run([BACKEND], input=body, env=env, capture_output=True,
                                  timeout=TIMEOUT)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = done.stdout.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            if done.returncode != 0 and not head:
                status, payload = 500, done.stderr
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (a killed process)

        do_GET = _cgi
        do_POST = _cgi

    return Handler


@attrs.define
class GitServer:
    root: Path
    server: ThreadingHTTPServer
    thread: threading.Thread

    @classmethod
    def start(cls, root: Path) -> GitServer:
        if not os.access(BACKEND, os.X_OK):
            pytest.fail(f"{BACKEND} not found: apt-get install git (tools/system-deps.sh)")
        root.mkdir(parents=True, exist_ok=True)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  daemon=True)
        thread.start()
        return cls(root, server, thread)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def create(self, name: str) -> str:
        """A bare repository `name` that accepts pushes (default branch main); its URL."""
        bare = self.root / name
        git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
        git("config", "http.receivepack", "true", cwd=bare)
        return self.url(name)

    def ref(self, name: str, ref: str) -> str | None:
        """The commit branch `ref` (e.g. ``deploy/prod``) names in repository `name`."""
        done = git_in(self.root / name, "rev-parse", "--verify", "--quiet",
                      f"refs/heads/{ref}", check=False)
        return done.stdout.strip() or None

    def show(self, name: str, rev: str, path: str) -> str:
        """A file of repository `name` at `rev`."""
        return git("show", f"{rev}:{path}", cwd=self.root / name)

    def archive(self, name: str, rev: str, dest: Path) -> Path:
        """Every file of repository `name` at `rev`, written into `dest` (a checkout)."""
        dest.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["git", "archive", "--format=tar", rev], cwd=self.root / name,
                             capture_output=True, check=True, timeout=120).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True, timeout=120)
        return dest

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> GitServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer.start(tmp_path / "git-server") as server:
        yield server
