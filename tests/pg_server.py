"""A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the tests that need a real server.

Started as the `postgres` OS user when the tests run as root (initdb refuses root), on a
free port, with every wait bounded; stopped (and if need be killed) on exit, even when a
test fails. Missing binaries fail the test with the install hint: never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
TIMEOUT = 60  # seconds, for every command and every wait

# Superuser over the local socket and loopback; everyone else by password (scram), any
# database: cross-database logins then reach the CONNECT privilege check.
TEST_HBA = """\
local all postgres               trust
host  all postgres 127.0.0.1/32  trust
host  all all      127.0.0.1/32  scram-sha-256
"""


@attrs.frozen
class PgServer:
    base: Path
    data: Path
    run: Path
    port: int
    password_files: dict[str, Path] = attrs.field(factory=dict)

    def as_postgres(self, *argv: str) -> list[str]:
        """initdb and the server refuse root: run them as the `postgres` OS user."""
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def pg(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A server-side command (initdb, pg_ctl), bounded by TIMEOUT."""
        return subprocess.run(self.as_postgres(*argv), cwd=self.run, capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)

    def psql(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """psql as the superuser over loopback, stopping at the first error."""
        command = [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                   "-p", str(self.port), "-U", "postgres", *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL,
                              env={**os.environ, "PGCONNECT_TIMEOUT": "10"})

    def connect(self, dbname: str, user: str = "postgres", password: str | None = None,
                **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=user,
                               password=password, connect_timeout=10, **kwargs)

    def hba(self, text: str) -> None:
        """Replace pg_hba.conf, reload, and fail on any line the server could not parse."""
        (self.data / "pg_hba.conf").write_text(text)
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            bad = conn.execute("SELECT line_number, error FROM pg_hba_file_rules "
                               "WHERE error IS NOT NULL").fetchall()
        assert bad == [], bad


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _owned_by_postgres(path: Path, mode: int) -> None:
    path.mkdir(mode=mode)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    path.chmod(mode)


def _stop(server: PgServer) -> None:
    """Stop the cluster even if pg_ctl misbehaves; every wait is bounded."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.pg(str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w",
                  "-t", "30", "stop")
    pid_file = server.data / "postmaster.pid"
    if not pid_file.exists():
        return
    # still there: kill the postmaster this cluster started, if that is what the pid is
    with contextlib.suppress(ValueError, IndexError, OSError):
        pid = int(pid_file.read_text().split()[0])
        if str(server.data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def throwaway_postgres(prefix: str, hba: str = TEST_HBA) -> Iterator[PgServer]:
    if not (PG_BIN / "initdb").is_file():
        pytest.fail(f"{PG_BIN / 'initdb'} not found: install postgresql-15 "
                    "(apt-get install -y postgresql-15; make test does)")
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)  # traversable by the postgres OS user
    server = PgServer(base, base / "data", base / "run", free_port())
    started = False
    try:
        _owned_by_postgres(server.data, 0o700)
        _owned_by_postgres(server.run, 0o755)
        init = server.pg(str(PG_BIN / "initdb"), "-D", str(server.data), "-U", "postgres",
                         "-A", "trust", "--no-sync")
        assert init.returncode == 0, init.stdout + init.stderr
        (server.data / "pg_hba.conf").write_text(hba)
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.run} "
                   "-c fsync=off")
        started = True
        log = server.run / "server.log"
        start = server.pg(str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-l", str(log),
                          "-w", "-t", "30", "-o", options, "start")
        assert start.returncode == 0, (start.stdout + start.stderr
                                       + (log.read_text() if log.exists() else ""))
        yield server
    finally:
        if started:
            _stop(server)
        shutil.rmtree(base, ignore_errors=True)
