"""A throwaway PostgreSQL cluster on 127.0.0.1 for the tests that need a real server, of the
major version the nodes run (`POSTGRES_MAJOR` in tools/versions.env: 17 for nixos-25.11).

Started as the `postgres` OS user when the tests run as root (initdb refuses root), on a
free port, with every wait bounded; stopped (and if need be killed) on exit, even when a
test fails. Missing binaries fail the test with the install hint: never a skip.

The binaries are tools/build.sh's (`tools.toolpaths.postgres_dir`, pgBackRest beside them).
The tool cache usually lives under root's home, which the `postgres` OS user cannot enter,
so `runtime_tools` copies them once to a world-readable folder under the temporary
directory, named after the pins (a cache like the tool cache: reused, never deleted).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest

from edgekit.constructs.pg_tls import certificate_script, postgres_ssl_settings
from tools.toolpaths import pgbackrest_bin, pin, postgres_dir

TIMEOUT = 60  # seconds, for every command and every wait
PG_MAJOR = int(pin("POSTGRES_MAJOR"))
"""The PostgreSQL major version the tests run: the nodes' (tests/test_pg_version.py)."""


def _traversable(path: Path) -> bool:
    """Whether every folder above `path` lets other users through (o+x)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents if p.exists())


@functools.cache
def runtime_tools() -> Path:
    """A folder holding ``postgresql/`` (bin, lib, share) and ``bin/pgbackrest`` that the
    `postgres` OS user can execute: the tool cache itself when it is reachable, else a copy
    made once under the temporary directory (atomically, so parallel runs share it)."""
    home, backrest = postgres_dir(), pgbackrest_bin()
    for needed, name in ((home / "bin" / "initdb", "postgresql"), (backrest, "pgbackrest")):
        if not needed.is_file():
            pytest.fail(f"{needed} not found: run `tools/build.sh --only {name}` "
                        "(make test does)")
    tag = hashlib.sha256(
        (Path(f"{home}.pin").read_text() + Path(f"{backrest}.pin").read_text()).encode()
    ).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"edgekit-pg{PG_MAJOR}-{tag}"
    if (target / ".complete").is_file():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    shutil.copytree(home, staging / "postgresql", symlinks=True)
    (staging / "bin").mkdir()
    shutil.copy2(backrest, staging / "bin" / "pgbackrest")
    (staging / ".complete").write_text(tag + "\n")
    for path in (staging, *staging.rglob("*")):
        if not path.is_symlink():  # readable by all, executable where the owner may
            mode = path.stat().st_mode
            path.chmod(mode | (0o755 if path.is_dir() or mode & 0o100 else 0o644))
    try:
        staging.rename(target)
    except OSError:  # another run made it first: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return target


def pg_bin() -> Path:
    """bin/ of the PostgreSQL the tests run (initdb, pg_ctl, postgres, psql, pgbench...)."""
    return runtime_tools() / "postgresql" / "bin"


def tool_path() -> str:
    """PATH with the tests' PostgreSQL and pgBackRest first: ``archive_command``, the
    pgBackRest wrapper and `edgekit pg` find these, never Debian's."""
    return f"{runtime_tools() / 'bin'}:{pg_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}"

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

    @property
    def tls(self) -> Path:
        """The node's TLS folder, as the primary's edgekit-pg-tls unit makes it."""
        return self.base / "tls"

    def tls_options(self) -> str:
        """Server options for TLS exactly as the node sets them (`postgres_ssl_settings`)."""
        settings = postgres_ssl_settings(str(self.tls))
        return " ".join(f"-c {k}={'on' if v is True else v}" for k, v in settings.items())

    def as_postgres(self, *argv: str) -> list[str]:
        """initdb and the server refuse root: run them as the `postgres` OS user."""
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def pg(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A server-side command (initdb, pg_ctl), bounded by TIMEOUT, with `tool_path`."""
        return subprocess.run(self.as_postgres(*argv), cwd=self.run, capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "PATH": tool_path()})

    def psql(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """psql as the superuser over loopback, stopping at the first error."""
        command = [str(pg_bin() / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
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
        server.pg(str(pg_bin() / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w",
                  "-t", "30", "stop")
    pid_file = server.data / "postmaster.pid"
    if not pid_file.exists():
        return
    # still there: kill the postmaster this cluster started, if that is what the pid is
    with contextlib.suppress(ValueError, IndexError, OSError):
        pid = int(pid_file.read_text().split()[0])
        if str(server.data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def make_certificates(server: PgServer, hostnames: tuple[str, ...] = ("localhost",),
                      addresses: tuple[str, ...] = ("127.0.0.1",)) -> None:
    """Run the primary's certificate script (`pg_tls.certificate_script`) for this server."""
    owner = "postgres" if os.geteuid() == 0 else str(os.getuid())
    script = certificate_script(hostnames=hostnames, addresses=addresses,
                                directory=str(server.tls), owner=owner)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def throwaway_postgres(prefix: str, hba: str = TEST_HBA,
                       authority: Path | None = None) -> Iterator[PgServer]:
    """A started cluster with TLS on (as the primary runs), `hba` as its pg_hba.conf; its
    server certificate issued by the node authority in `authority` (``ca.crt``, ``ca.key``,
    as the primary's edgekit-pg-tls unit left them) when given, else by a new one."""
    bin_dir = pg_bin()
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)  # traversable by the postgres OS user
    server = PgServer(base, base / "data", base / "run", free_port())
    started = False
    try:
        _owned_by_postgres(server.data, 0o700)
        _owned_by_postgres(server.run, 0o755)
        init = server.pg(str(bin_dir / "initdb"), "-D", str(server.data), "-U", "postgres",
                         "-A", "trust", "--no-sync")
        assert init.returncode == 0, init.stdout + init.stderr
        (server.data / "pg_hba.conf").write_text(hba)
        if authority is not None:  # the script keeps an authority it finds
            server.tls.mkdir(mode=0o755)
            for name in ("ca.crt", "ca.key"):
                shutil.copy(authority / name, server.tls / name)
        make_certificates(server)
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.run} "
                   f"-c fsync=off {server.tls_options()}")
        started = True
        log = server.run / "server.log"
        start = server.pg(str(bin_dir / "pg_ctl"), "-D", str(server.data), "-l", str(log),
                          "-w", "-t", "30", "-o", options, "start")
        assert start.returncode == 0, (start.stdout + start.stderr
                                       + (log.read_text() if log.exists() else ""))
        yield server
    finally:
        if started:
            _stop(server)
        shutil.rmtree(base, ignore_errors=True)
