"""A real pgBackRest repository for tests and benches: PostgreSQL of the nodes' major version
and the pgBackRest they run (tests/pg_server.py, tools/build.sh) archiving through the
generated wrapper and ``pgbackrest.conf`` into SeaweedFS over TLS.

The configuration is `edgekit.pg.backup.pgbackrest_conf` of real `BackupSettings`; only the
endpoint (127.0.0.1 and a free port, a throwaway CA) and the node paths (a temp folder) are
the test's. Secrets reach pgBackRest as on a node: key files read by the generated wrapper.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import attrs

from edgekit.obs.testing import SeaweedS3
from edgekit.pg.backup import BackupSettings, archive_settings, pgbackrest_conf, wrapper_script
from tests.pg_server import TIMEOUT, PgServer, pg_bin, throwaway_postgres, tool_path

BUCKET = "edgekit-pg-drill"


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "s3.crt", folder / "s3.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=TIMEOUT)
    return cert, key


def _postgres_owned(path: Path, mode: int = 0o750) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    path.chmod(mode)
    return path


@attrs.define
class Rig:
    pg: PgServer
    s3: SeaweedS3
    settings: BackupSettings
    wrapper: Path
    options: str
    """The server's command-line options (port, socket, archive settings)."""
    cipher_pass: str
    repo_env: dict[str, str]
    """What an operator's machine sets to reach this repository instead of R2."""

    def backrest(self, *argv: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """The generated wrapper as the postgres OS user, as the node's timers run it."""
        return subprocess.run(
            self.pg.as_postgres(str(self.wrapper), f"--stanza={self.settings.stanza}", *argv),
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            cwd=self.pg.run)

    def ok(self, *argv: str, timeout: float = TIMEOUT) -> str:
        done = self.backrest(*argv, timeout=timeout)
        assert done.returncode == 0, f"pgbackrest {' '.join(argv)}:\n{done.stdout}{done.stderr}"
        return done.stdout

    def start(self) -> None:
        log = self.pg.run / "server.log"
        done = self.pg.pg(str(pg_bin() / "pg_ctl"), "-D", str(self.pg.data), "-l", str(log),
                          "-w", "-t", "60", "-o", self.options, "start")
        assert done.returncode == 0, done.stdout + done.stderr + log.read_text()

    def stop(self, mode: str = "fast") -> None:
        done = self.pg.pg(str(pg_bin() / "pg_ctl"), "-D", str(self.pg.data), "-m", mode, "-w",
                          "-t", "60", "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    def wait_archived(self) -> str:
        """Switch WAL and wait until the segment holding everything so far is archived."""
        with self.pg.connect("postgres", autocommit=True) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            segment = str(row[0])
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                done = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                if done and done[0] and str(done[0]) >= segment:
                    return segment
                time.sleep(0.1)
        raise AssertionError(f"WAL segment {segment} not archived within {TIMEOUT}s")

    def destroy_data(self) -> None:
        """What losing the node's disk leaves: an empty data directory."""
        for child in self.pg.data.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def wait_promoted(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception), self.pg.connect("postgres") as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and row[0] is False:
                    return
            time.sleep(0.1)
        raise AssertionError("restored server still in recovery after "
                             f"{TIMEOUT}s:\n{(self.pg.run / 'server.log').read_text()[-3000:]}")

    def server_time(self) -> datetime:
        with self.pg.connect("postgres") as conn:
            row = conn.execute("SELECT clock_timestamp()").fetchone()
            assert row is not None
            value: datetime = row[0]
            return value


@contextlib.contextmanager
def backed_up_postgres(tmp: Path, *, stanza: str = "drill", bucket: str = BUCKET,
                       archive_timeout_seconds: int = 60) -> Iterator[Rig]:
    """PostgreSQL with WAL archiving on, a stanza created in SeaweedFS over TLS."""
    cert, key = self_signed(tmp)
    s3 = SeaweedS3.start(tmp / "s3", tls=(cert, key))
    try:
        s3.client().create_bucket(Bucket=bucket)
        assert s3.https_endpoint is not None
        # The certificate's DNS name "localhost" resolves to 127.0.0.1 here (the weed gateway
        # listens on that alone), as R2's endpoint is a DNS name.
        port = s3.https_endpoint.rsplit(":", 1)[1]
        host = "localhost"
        with throwaway_postgres("edgekit-pgbackrest-") as pg:
            keys = _postgres_owned(pg.base / "keys", 0o700)
            cipher = secrets.token_urlsafe(48)
            for name, value in {"pgbackrest_cipher_pass": cipher,
                                "pgbackrest_s3_key": s3.access_key,
                                "pgbackrest_s3_key_secret": s3.secret_key}.items():
                (keys / name).write_text(value)
                if os.geteuid() == 0:
                    shutil.chown(keys / name, "postgres", "postgres")
            node = _postgres_owned(pg.base / "pgbackrest")
            ca_file = pg.base / "s3-ca.crt"  # readable by the postgres OS user
            shutil.copyfile(cert, ca_file)
            ca_file.chmod(0o644)
            settings = BackupSettings(stanza=stanza, bucket=bucket, endpoint=host,
                                      archive_timeout_seconds=archive_timeout_seconds,
                                      pg_path=str(pg.data), pg_port=pg.port)
            conf = pg.base / "pgbackrest.conf"
            wrapper = pg.base / "edgekit-pgbackrest"
            conf.write_text(pgbackrest_conf(
                settings,
                extra_global={"repo1-storage-port": port, "cmd": str(wrapper),
                              "repo1-storage-ca-file": str(ca_file),
                              "spool-path": str(_postgres_owned(node / "spool")),
                              "log-path": str(_postgres_owned(node / "log")),
                              "lock-path": str(_postgres_owned(node / "lock")),
                              "log-level-console": "warn"},
                stanza={"pg1-path": str(pg.data), "pg1-port": str(pg.port),
                        "pg1-socket-path": str(pg.run)}))
            # The node's wrapper, with the tests' pgBackRest first on PATH (the node has one).
            wrapper.write_text(f"#!/bin/sh\nexport PATH={tool_path()}\n"
                               + wrapper_script(key_dir=str(keys), conf=str(conf)))
            wrapper.chmod(0o755)
            archive = archive_settings(settings, command=str(wrapper))
            options = " ".join([f"-p {pg.port}", f"-k {pg.run}",
                                "-c listen_addresses=127.0.0.1", "-c fsync=off",
                                *(f"-c {k}={_quote(v)}" for k, v in archive.items())])
            repo_env = {"PGBACKREST_REPO1_S3_ENDPOINT": host,
                        "PGBACKREST_REPO1_STORAGE_PORT": port,
                        "PGBACKREST_REPO1_STORAGE_CA_FILE": str(ca_file)}
            rig = Rig(pg, s3, settings, wrapper, options, cipher, repo_env)
            rig.stop()
            rig.start()
            rig.ok("stanza-create")
            yield rig
    finally:
        s3.stop()


def _quote(value: object) -> str:
    text = str(value)
    return f"'{text}'" if " " in text else text
