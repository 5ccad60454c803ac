"""Building blocks of the node scenarios: a loop device as the data volume, the primary's boot
document, readiness probes, and psql inside a node's namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from edgekit.constructs.mesh import ENDPOINTS_OUTPUT
from edgekit.core.writer import dump_json
from edgekit.cue.generate import HEADER
from edgekit.cue.model import Estate
from edgekit.estate.mesh_plan import nixos_mesh
from edgekit.obs.testing import SeaweedS3
from edgekit.pg.backup import restore_commands, settings_for
from tests.conftest import ROOT
from tests.node_harness.bridge import Bridge
from tests.node_harness.node import NodeRun, node_namespace, running
from tests.node_harness.packages import SOCKET_DIR, package_shims
from tests.pg_server import pg_bin

TIMEOUT = 120


@contextlib.contextmanager
def loop_device(image: Path, size_mb: int = 256) -> Iterator[str]:
    """A sparse file behind a loop device (the node's block volume); detached afterwards."""
    with image.open("wb") as out:
        out.truncate(size_mb * 1024 * 1024)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True,
                            text=True, check=True, timeout=TIMEOUT).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], timeout=TIMEOUT)


@contextlib.contextmanager
def mounted(device: str, target: Path, fstype: str = "ext4") -> Iterator[None]:
    """What ``var-lib-postgresql.mount`` does (by label in NixOS; here the device itself)."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", fstype, device, str(target)], check=True, timeout=TIMEOUT)
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(target)], timeout=TIMEOUT)


def conf_value(report: Mapping[str, Any], key: str) -> str:
    """A setting of the node's evaluated /etc/pgbackrest/pgbackrest.conf."""
    text = str(report["etc"]["pgbackrest/pgbackrest.conf"]["text"])
    return next(line.split("=", 1)[1] for line in text.splitlines()
                if line.startswith(f"{key}="))


def write_boot(node: NodeRun, secrets: Mapping[str, str], **extra: Any) -> None:
    """/etc/edgekit/boot.json as cloud-init leaves it (root 0600)."""
    boot = node.path("/etc/edgekit/boot.json")
    boot.parent.mkdir(parents=True, exist_ok=True)
    boot.write_text(json.dumps({"secrets": dict(secrets), **extra}))
    boot.chmod(0o600)


def postgres_ready(node: NodeRun) -> bool:
    """postgresql.service's readiness (Type=notify upstream; the pinned build has no sd_notify):
    the server answers on its socket in the node's /run/postgresql."""
    done = node.run_as("postgres", [f"{pg_home()}/bin/pg_isready", "-q", "-h", SOCKET_DIR])
    return done.returncode == 0


def psql(node: NodeRun, sql: str, *, db: str = "postgres") -> str:
    """psql on the node as its `postgres` user (peer authentication) over its socket."""
    done = node.run_as("postgres", [f"{pg_home()}/bin/psql", "-X", "-At", "-v",
                                    "ON_ERROR_STOP=1", "-h", SOCKET_DIR, "-d", db, "-c", sql])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def pg_home() -> str:
    """The PostgreSQL the sandboxes see (read-only at its host path)."""
    return str(pg_bin().parent)


R2_ADDRESS = "198.51.100.10"
"""Where the node's /etc/hosts puts the R2 endpoint: the bridge to SeaweedFS listens there."""


def _certificate(folder: Path, host: str) -> tuple[Path, Path]:
    cert, key = folder / "r2.crt", folder / "r2.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=TIMEOUT)
    return cert, key


@contextlib.contextmanager
def r2_stand_in(folder: Path, node: NodeRun, host: str, bucket: str) -> Iterator[R2]:
    """SeaweedFS (signatures checked) over TLS as the node's R2: `host` resolves on the node
    to `R2_ADDRESS`, where a bridge forwards port 443 to it; its certificate's authority is
    in the node's trust store. Nothing of the node's configuration changes."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = _certificate(folder, host)
    s3 = SeaweedS3.start(folder / "s3", tls=(cert, key))
    r2 = R2(s3, cert, host, bucket)
    try:
        s3.client().create_bucket(Bucket=bucket)
        r2.attach(node)
        yield r2
    finally:
        for opened in r2.bridges.values():
            opened.close()
        s3.stop()


@attrs.define
class R2:
    s3: SeaweedS3
    cert: Path
    host: str
    bucket: str
    bridges: dict[str, Bridge] = attrs.field(factory=dict)
    """netns -> the bridge into it."""

    def attach(self, node: NodeRun) -> Bridge:
        """Make this R2 reachable from `node` (its hosts file, trust store, a bridge)."""
        assert self.s3.https_endpoint is not None
        subprocess.run(["ip", "netns", "exec", node.netns, "ip", "addr", "add",
                        f"{R2_ADDRESS}/32", "dev", "lo"], check=True, timeout=30)
        with node.path("/etc/hosts").open("a") as hosts:
            hosts.write(f"{R2_ADDRESS} {self.host}\n")
        bundle = node.path("/etc/ssl/certs/ca-certificates.crt")
        bundle.write_text(bundle.read_text() + self.cert.read_text())
        opened = Bridge(node.netns, R2_ADDRESS, 443,
                        int(self.s3.https_endpoint.rsplit(":", 1)[1]))
        opened.open()
        self.bridges[node.netns] = opened
        return opened

    def attach_again(self, node: NodeRun) -> None:
        """Reopen the bridge into `node` after it was closed (R2 reachable again)."""
        self.bridges[node.netns].open()

    def keys(self, prefix: str) -> list[str]:
        found = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [str(o["Key"]) for o in found.get("Contents", [])]


def wait_archived(node: NodeRun) -> str:
    """Switch WAL and wait until that segment is archived; its name."""
    segment = psql(node, "SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done = psql(node, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        if done >= segment:
            return segment
        time.sleep(0.2)
    raise AssertionError(f"WAL segment {segment} not archived in {TIMEOUT}s:\n"
                         + node.journal("postgresql")[-3000:])


def estate_copy(source: Path, dest: Path, env: str = "prod",
                keys: Mapping[str, str] | None = None,
                endpoints: Mapping[str, str] | None = None) -> Path:
    """The files a node is evaluated from (flake.nix, nix/, services/, cue/export/, the
    deploy agent), copied,
    with the mesh as `edgekit mesh import-keys` and `edgekit generate` leave it once `keys`
    (node -> public key) and `endpoints` (node -> public address) are imported."""
    dest.mkdir(parents=True)
    for name in ("flake.nix", "flake.lock", "nix", "services"):
        target = dest / name
        if (source / name).is_dir():
            shutil.copytree(source / name, target, ignore=shutil.ignore_patterns(
                "__pycache__", "node_modules"))
        else:
            shutil.copy(source / name, target)
    shutil.copytree(source / "cue" / "export", dest / "cue" / "export")
    # the deploy agent the node's unit runs (nix/deploy.nix: ../edgekit/deploy/agent.py)
    (dest / "edgekit" / "deploy").mkdir(parents=True)
    shutil.copy(source / "edgekit" / "deploy" / "agent.py", dest / "edgekit" / "deploy")
    if keys is None or endpoints is None:
        return dest
    estate = Estate.load(ROOT, env, check_fresh=False)
    observed = {**estate.env.observed, ENDPOINTS_OUTPUT: {"value": dict(endpoints)}}
    mesh = attrs.evolve(estate.env.mesh, public_keys=dict(keys))
    changed = attrs.evolve(estate.env, mesh=mesh, observed=observed)
    data = nixos_mesh(changed, estate.services)
    (dest / "nix" / "mesh" / f"{env}.json").write_bytes(dump_json({"//": HEADER, **data}))
    return dest


# Runs inside a node's namespace: a relay like cloudflared's TCP ingress (dials the listen
# address, from the address the kernel picks or from `source`), and libpq through it with
# verify-full against the node's authority and the Hyperdrive hostname.
HYPERDRIVE_CLIENT = """
import json, socket, sys, threading
import psycopg
target, port, source, user, db, password, sslmode, ca, host = sys.argv[1:10]
listener = socket.create_server(("127.0.0.1", 0))
def pump(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
def relay():
    conn, _ = listener.accept()
    upstream = socket.socket()
    if source != "-":
        upstream.bind((source, 0))
    upstream.connect((target, int(port)))
    threading.Thread(target=pump, args=(conn, upstream), daemon=True).start()
    pump(upstream, conn)
threading.Thread(target=relay, daemon=True).start()
try:
    with psycopg.connect(host=host, hostaddr="127.0.0.1", port=listener.getsockname()[1],
                         user=user, dbname=db, password=password, sslmode=sslmode,
                         sslrootcert=ca, connect_timeout=10) as conn:
        row = conn.execute("SELECT current_user, host(inet_client_addr()), ssl "
                           "FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    print(json.dumps({"ok": True, "row": list(row)}))
except psycopg.OperationalError as error:
    print(json.dumps({"ok": False, "error": str(error)}))
"""


def hyperdrive_probe(netns: str, ca: Path, host: str, address: str, *, source: str | None,
                     password: str, user: str = "svc_web_ro", db: str = "web",
                     sslmode: str = "verify-full", port: int = 5432) -> dict[str, object]:
    """What Hyperdrive gets through cloudflared in the node's namespace `netns` (see
    HYPERDRIVE_CLIENT)."""
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", HYPERDRIVE_CLIENT, address,
         str(port), source or "-", user, db, password, sslmode, str(ca), host],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@contextlib.contextmanager
def restored_node(tmp: Path, old: NodeRun, r2: R2, target: datetime | None
                  ) -> Iterator[NodeRun]:
    """A new primary (fresh root, fresh volume, the same evaluation) restored from the archive
    to `target` (None: the newest archived state) with the documented commands (`edgekit pg
    restore`), then started by its units and promoted."""
    settings = settings_for(Estate.load(ROOT, "prod", check_fresh=False).env)
    with node_namespace("new") as netns, loop_device(tmp / "new.img") as device:
        base = tmp / "new"
        base.mkdir()
        node = NodeRun("pg-tokyo", old.report, base, netns, packages=package_shims(base),
                       extra_ro=old.extra_ro, inventory=old.inventory, repo=old.repo,
                       ready={"postgresql": postgres_ready})
        subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", "10.100.0.1/24",
                        "dev", "lo"], check=True, timeout=30)
        with running(node):
            r2.attach(node)
            secrets = json.loads(old.path("/etc/edgekit/boot.json").read_text())["secrets"]
            write_boot(node, secrets, postgres={"volume_device": device})
            node.start("edgekit-keys", "edgekit-pg-volume")
            with mounted(device, node.path("/var/lib/postgresql")):
                data = node.path(str(node.report["postgresql"]["dataDir"]))
                data.mkdir(parents=True)
                data.chmod(0o700)
                os.chown(data, node.uids["postgres"], node.gids["postgres"])
                path = node.units["edgekit-pgbackrest-full"].environment["PATH"]
                for argv in restore_commands(settings, target):
                    if argv[:3] == ["runuser", "-u", "postgres"]:
                        argv = argv[4:]
                    done = node.run_as("postgres", argv, env={"PATH": path}, timeout=300)
                    assert done.returncode == 0, done.stdout + done.stderr
                node.start("postgresql")
                deadline = time.monotonic() + TIMEOUT
                while psql(node, "SELECT pg_is_in_recovery()") != "f":
                    assert time.monotonic() < deadline, node.journal("postgresql")[-3000:]
                    time.sleep(0.2)
                yield node
