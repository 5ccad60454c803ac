"""The Postgres primary of prod, run from its evaluated units (issue 22).

The keys unit writes the secrets of the boot document; the volume unit formats a loop device;
PostgreSQL 17 starts on it with the generated settings and TLS; postgresql-setup and the
bootstrap unit create roles, passwords, schemas and grants. Each unit runs as its user, in the
sandbox of its options, in the node's network namespace (the mesh address on loopback here;
the two-node mesh is tests/test_node_mesh.py).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from edgekit.nix.evaluate import evaluate_node
from tests.conftest import ROOT
from tests.node_harness.node import NodeRun, UnitFailed, node_namespace, running
from tests.node_harness.packages import package_shims, read_only_extras, store_inventory
from tests.node_harness.scenario import (
    R2,
    conf_value,
    estate_copy,
    loop_device,
    mounted,
    postgres_ready,
    psql,
    r2_stand_in,
    wait_archived,
    write_boot,
)

pytestmark = pytest.mark.node

REPO = ROOT
PRIMARY = "10.100.0.1"
SECRETS = {"pg_password_svc_api_rw": "api-secret-1", "pg_password_svc_web_ro": "web-secret-2",
           "pgbackrest_cipher_pass": "cipher-3", "pgbackrest_s3_key": "key-4",
           "pgbackrest_s3_key_secret": "secret-5", "pg_tunnel_token": "token-6",
           "log_sink_access_key_id": "AKID", "log_sink_secret_access_key": "SECRET"}


@attrs.frozen
class Primary:
    node: NodeRun
    device: str
    r2: R2


@contextlib.contextmanager
def primary_of(repo: Path, tmp_path: Path, volume_mb: int = 256) -> Iterator[Primary]:
    """prod's pg-tokyo evaluated from `repo`, in its namespace, with a blank volume and R2."""
    report = evaluate_node("prod", "pg-tokyo", root=repo)
    base = tmp_path / "pg-tokyo"
    base.mkdir()
    with node_namespace("pg") as netns, loop_device(tmp_path / "volume.img",
                                                          volume_mb) as device:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", f"{PRIMARY}/24",
                        "dev", "lo"], check=True, timeout=30)
        node = NodeRun("pg-tokyo", report, base, netns, packages=package_shims(base),
                       extra_ro=read_only_extras(repo),
                       inventory=store_inventory(repo, "pg-tokyo"), repo=repo,
                       ready={"postgresql": postgres_ready})
        with running(node), r2_stand_in(tmp_path / "r2", node,
                                        conf_value(report, "repo1-s3-endpoint"),
                                        conf_value(report, "repo1-s3-bucket")) as r2:
            secrets = {**SECRETS, "pgbackrest_s3_key": r2.s3.access_key,
                       "pgbackrest_s3_key_secret": r2.s3.secret_key}
            write_boot(node, secrets, postgres={"volume_device": device})
            yield Primary(node, device, r2)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Primary]:
    with primary_of(REPO, tmp_path) as primary:
        yield primary


def test_the_primary_starts_bootstraps_and_serves_over_tls(pg: Primary) -> None:
    primary, device = pg.node, pg.device
    primary.start("edgekit-keys", "edgekit-pg-volume")
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", device], capture_output=True,
                           text=True, timeout=30).stdout.strip()
    assert label == "edgekit-pgdata"
    with mounted(device, primary.path("/var/lib/postgresql")):
        order = primary.start("postgresql", "postgresql-setup", "edgekit-pg-bootstrap")
        assert order.index("edgekit-pg-tls") < order.index("postgresql")
        assert order.index("postgresql-setup") < order.index("edgekit-pg-bootstrap")
        assert psql(primary, "SHOW ssl") == "on"
        assert psql(primary, "SELECT current_setting('server_version_num')::int / 10000") == "17"
        roles = psql(primary, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'svc_%' "
                              "ORDER BY 1")
        assert roles.splitlines() == ["svc_api_rw", "svc_web_ro"]
        assert psql(primary, "SELECT nspname FROM pg_namespace WHERE nspname = 'app'",
                    db="api") == "app"

        # WAL to "R2" from inside postgresql.service's sandbox, and a full backup from its unit
        primary.start("edgekit-pgbackrest-stanza")
        psql(primary, "CREATE TABLE drill (n int)")
        psql(primary, "INSERT INTO drill SELECT generate_series(1, 1000)")
        wait_archived(primary)
        assert pg.r2.keys("prod/archive/prod/"), "no WAL in the repository"
        primary.start("edgekit-pgbackrest-full")
        info = backrest(primary, "info")
        assert "full backup" in info and "status: ok" in info, info


def backrest(node: NodeRun, *argv: str) -> str:
    """The node's edgekit-pgbackrest (the unit's PATH) as postgres."""
    path = node.units["edgekit-pgbackrest-full"].environment["PATH"]
    done = node.run_as("postgres", ["edgekit-pgbackrest", "--stanza=prod", *argv],
                       env={"PATH": path})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _mkfs(device: str, kind: str, label: str, mount_dir: Path) -> None:
    """Someone else's filesystem with a file on it."""
    subprocess.run([f"mkfs.{kind}", "-q", "-L", label, device], check=True, timeout=60)
    with mounted(device, mount_dir, fstype=kind):
        (mount_dir / "precious.txt").write_text("keep me\n")


@pytest.mark.parametrize(("kind", "label"), [("ext2", "backup"), ("ext4", "photos")])
def test_a_volume_holding_another_filesystem_is_left_alone(
        pg: Primary, tmp_path: Path, kind: str, label: str) -> None:
    primary, device = pg.node, pg.device
    _mkfs(device, kind, label, tmp_path / "look")
    with pytest.raises(UnitFailed, match="edgekit-pg-volume"):
        primary.start("edgekit-keys", "edgekit-pg-volume")
    log = primary.journal("edgekit-pg-volume")
    assert (f"edgekit: Postgres volume {device} holds a {kind} filesystem labelled "
            f"'{label}', not the data volume (ext4, label edgekit-pgdata)") in log
    blkid = subprocess.run(["blkid", "-o", "export", device], capture_output=True, text=True,
                           timeout=30).stdout
    assert f"TYPE={kind}" in blkid and f"LABEL={label}" in blkid
    with mounted(device, tmp_path / "look", fstype=kind):
        assert (tmp_path / "look" / "precious.txt").read_text() == "keep me\n"


def test_a_missing_password_file_stops_the_bootstrap_naming_the_role(pg: Primary) -> None:
    primary, device = pg.node, pg.device
    boot = json.loads(primary.path("/etc/edgekit/boot.json").read_text())
    del boot["secrets"]["pg_password_svc_web_ro"]
    primary.path("/etc/edgekit/boot.json").write_text(json.dumps(boot))
    primary.start("edgekit-keys", "edgekit-pg-volume")
    with mounted(device, primary.path("/var/lib/postgresql")):
        with pytest.raises(UnitFailed, match="edgekit-pg-bootstrap"):
            primary.start("postgresql", "postgresql-setup", "edgekit-pg-bootstrap")
        log = primary.journal("edgekit-pg-bootstrap")
        assert "cat: /run/keys/edgekit-pg/svc_web_ro: No such file or directory" in log
        assert "edgekit: no password for role svc_web_ro: its password file is missing" in log
        # the roles, databases and the other role's password are there; nothing was cleared
        assert psql(primary, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'svc_%'") == "2"
        assert psql(primary, "SELECT rolpassword IS NOT NULL FROM pg_authid "
                             "WHERE rolname = 'svc_api_rw'") == "t"


QUEUE_MAX_MB = 64
"""The archive queue limit of this test: the node's setting (archive_queue_max_mb, 4096 by
default) scaled down so that a few seconds of writes exceed it."""


def test_r2_unreachable_for_a_while_bounds_pg_wal_and_says_so(tmp_path: Path) -> None:
    repo = estate_copy(ROOT, tmp_path / "repo")
    conf = repo / "nix" / "pgbackrest" / "prod.json"
    conf.write_text(conf.read_text().replace("archive-push-queue-max=4096MiB",
                                             f"archive-push-queue-max={QUEUE_MAX_MB}MiB"))
    with primary_of(repo, tmp_path, volume_mb=3072) as pg:
        primary = pg.node
        primary.start("edgekit-keys", "edgekit-pg-volume")
        with mounted(pg.device, primary.path("/var/lib/postgresql")):
            primary.start("postgresql", "postgresql-setup", "edgekit-pg-bootstrap",
                          "edgekit-pgbackrest-stanza")
            wait_archived(primary)
            pg.r2.bridges[primary.netns].close()  # R2 unreachable: connection refused
            psql(primary, "CREATE TABLE filler (v text)")
            for _ in range(10):  # ~16 MB of WAL each
                psql(primary, "INSERT INTO filler SELECT repeat(md5(g::text), 30) "
                              "FROM generate_series(1, 16000) g")
                psql(primary, "SELECT pg_switch_wal()")
            status = primary.path("/var/lib/postgresql/17/pg_wal/archive_status")

            def waiting() -> list[str]:
                return sorted(f.name for f in status.iterdir() if f.name.endswith(".ready"))

            assert len(waiting()) * 16 > QUEUE_MAX_MB  # more than the queue may hold
            deadline = time.monotonic() + 180
            while len(waiting()) * 16 > QUEUE_MAX_MB + 16:
                assert time.monotonic() < deadline, (waiting(),
                                                     primary.journal("postgresql")[-3000:])
                # a new segment wakes the archiver, which sleeps a minute after 3 failures
                psql(primary, "INSERT INTO filler VALUES ('x'); SELECT pg_switch_wal()")
                time.sleep(2)
            log = primary.journal("postgresql")
            assert "archive-push" in log and f"archive queue exceeded {QUEUE_MAX_MB}MB" in log, \
                log[-3000:]
            # R2 back: archiving resumes by itself
            pg.r2.attach_again(primary)
            wait_archived(primary)
            assert int(psql(primary, "SELECT count(*) FROM filler")) >= 160000  # nothing lost
