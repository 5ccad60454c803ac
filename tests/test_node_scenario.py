"""prod's Postgres primary and a client node, run from their evaluated units over the real
WireGuard mesh (issue 22): the whole data path, joint by joint.

- pg-tokyo: the keys unit writes the secrets; the volume unit formats a loop device;
  PostgreSQL 17 starts on it with the generated settings and TLS; postgresql-setup and the
  bootstrap unit make roles, passwords, schemas and grants; archive_command ships WAL to
  "R2" (SeaweedFS over TLS, reached at R2's hostname) and a full backup runs from its unit.
- edge-tokyo: the api service logs in with its password over the mesh and writes; web reads
  and cannot write.
- a Hyperdrive-like client reaches Postgres with TLS verified, from cloudflared's source
  address on the primary, and from nowhere else.
- every unit stops and starts again: the bootstrap is idempotent and no row is lost.
- a point-in-time restore onto a new primary from that archive has every row committed up to
  the target, and none after.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from edgekit.nix.evaluate import evaluate_node
from tests.conftest import ROOT
from tests.node_harness import mesh
from tests.node_harness.node import NodeRun, node_namespace, running
from tests.node_harness.packages import package_shims, read_only_extras, store_inventory
from tests.node_harness.scenario import (
    R2,
    conf_value,
    estate_copy,
    hyperdrive_probe,
    loop_device,
    mounted,
    postgres_ready,
    psql,
    r2_stand_in,
    restored_node,
    wait_archived,
    write_boot,
)

pytestmark = pytest.mark.node

SOURCE = ROOT
PUBLIC = {"pg-tokyo": "192.0.2.1", "edge-tokyo": "192.0.2.2"}
PASSWORDS = {"pg_password_svc_api_rw": "api-secret-1", "pg_password_svc_web_ro": "web-secret-2"}
OTHER_SECRETS = {"pgbackrest_cipher_pass": "cipher-3", "pg_tunnel_token": "token-6",
                 "tunnel_token": "token-7", "log_sink_access_key_id": "AKID",
                 "log_sink_secret_access_key": "SECRET"}
HYPERDRIVE_HOST = "pg-origin.edgekit.example"



def _node(name: str, repo: Path, base: Path, netns: str) -> NodeRun:
    report = evaluate_node("prod", name, root=repo)
    assert report["failedAssertions"] == [] and report["warnings"] == []
    base.mkdir(parents=True)
    return NodeRun(name, report, base, netns, packages=package_shims(base),
                   extra_ro=read_only_extras(repo), inventory=store_inventory(repo, name),
                   repo=repo, ready={"postgresql": postgres_ready,
                                     "edgekit-api": http_ready(8080),
                                     "edgekit-web": http_ready(8081)})


def http_ready(port: int) -> Any:
    """A service counts as started once it answers HTTP (healthy or not: Type=simple)."""
    def probe(node: NodeRun) -> bool:
        return http(node, "GET", port, "/healthz")[0] != 0
    return probe


def http(node: NodeRun, method: str, port: int, path: str,
         body: dict[str, Any] | None = None) -> tuple[int, str]:
    """An HTTP request to a service on the node's loopback (what cloudflared sends)."""
    script = (
        "import json, sys, urllib.request, urllib.error\n"
        "method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]\n"
        "req = urllib.request.Request(url, method=method, data=body.encode() or None,\n"
        "                             headers={'Content-Type': 'application/json'})\n"
        "try:\n"
        "    with urllib.request.urlopen(req, timeout=10) as r:\n"
        "        print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
        "except OSError as e:\n"
        "    print(0); print(e)\n")
    done = subprocess.run(
        ["ip", "netns", "exec", node.netns, "python3", "-c", script, method,
         f"http://127.0.0.1:{port}{path}", json.dumps(body) if body is not None else ""],
        capture_output=True, text=True, timeout=60)
    status, _, text = done.stdout.partition("\n")
    return int(status or 0), text


@contextlib.contextmanager
def _estate(tmp: Path) -> Iterator[tuple[NodeRun, NodeRun, R2, str]]:
    keys = {n: mesh.keypair() for n in PUBLIC}
    repo = estate_copy(SOURCE, tmp / "repo", "prod", {n: k[1] for n, k in keys.items()},
                       PUBLIC)
    entries = mesh.mesh_entries(repo, "prod")["nodes"]
    wireguard: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        ns = {n: stack.enter_context(node_namespace(n.split("-")[0])) for n in PUBLIC}
        stack.enter_context(mesh.linked(ns, PUBLIC))
        stack.callback(mesh.stop, wireguard)
        device = stack.enter_context(loop_device(tmp / "volume.img"))
        primary = stack.enter_context(running(_node("pg-tokyo", repo, tmp / "pg", ns["pg-tokyo"])))
        edge = stack.enter_context(running(_node("edge-tokyo", repo, tmp / "edge",
                                                 ns["edge-tokyo"])))
        r2 = stack.enter_context(r2_stand_in(tmp / "r2", primary,
                                             conf_value(primary.report, "repo1-s3-endpoint"),
                                             conf_value(primary.report, "repo1-s3-bucket")))
        s3_keys = {"pgbackrest_s3_key": r2.s3.access_key,
                   "pgbackrest_s3_key_secret": r2.s3.secret_key}
        write_boot(primary, {**PASSWORDS, **OTHER_SECRETS, **s3_keys},
                   postgres={"volume_device": device})
        write_boot(edge, {**PASSWORDS, **OTHER_SECRETS})
        for node in (primary, edge):
            mesh.join(node, entries[node.name], keys[node.name][0], wireguard)
        yield primary, edge, r2, device


def _rows(primary: NodeRun) -> list[str]:
    return psql(primary, "SELECT name FROM app.items ORDER BY id", db="api").splitlines()


def test_the_data_path_end_to_end(tmp_path: Path) -> None:
    with _estate(tmp_path) as (primary, edge, r2, device):
        primary.start("edgekit-keys", "edgekit-pg-volume")
        with mounted(device, primary.path("/var/lib/postgresql")):
            order = primary.start("postgresql", "postgresql-setup", "edgekit-pg-bootstrap",
                                  "edgekit-pgbackrest-stanza")
            assert order.index("edgekit-pg-tls") < order.index("postgresql")
            assert psql(primary, "SHOW ssl") == "on"
            # the owners make the tables (schema.sql), as ADR 0004 says; never the services
            for db in ("api", "web"):
                schema = (ROOT / "services" / db / "schema.sql").read_text()
                psql(primary, f"SET ROLE {db}_owner; {schema}", db=db)
            psql(primary, "SET ROLE web_owner; INSERT INTO app.items (name) VALUES ('page')",
                 db="web")

            # the client node: its services log in over the mesh with their passwords
            edge.start("edgekit-keys", "edgekit-api", "edgekit-web")
            status, body = http(edge, "POST", 8080, "/items", {"name": "first"})
            assert status == 201, body + edge.journal("edgekit-api")[-3000:]
            assert http(edge, "GET", 8080, "/items")[1].count('"first"') == 1
            status, page = http(edge, "GET", 8081, "/")
            assert status == 200 and "<li>page</li>" in page
            # as the services see it: their own role, from edge-tokyo's mesh address, TLS
            seen = as_service(edge, "edgekit-api", WHO_AM_I)
            assert "svc_api_rw 10.100.0.21 True" in seen, seen
            denied = as_service(edge, "edgekit-web", WEB_WRITES)
            assert "DENIED" in denied and "read-only transaction" in denied, denied
            assert "WROTE" not in denied

            # Hyperdrive through cloudflared on the primary: its source address, TLS verified
            ca = primary.path("/var/lib/edgekit/pg-tls/ca.crt")
            ok = hyperdrive_probe(primary.netns, ca, HYPERDRIVE_HOST, "10.100.0.1", source=None,
                                  password=PASSWORDS["pg_password_svc_web_ro"])
            assert ok == {"ok": True, "row": ["svc_web_ro", "10.100.0.1", True]}, ok
            other = hyperdrive_probe(primary.netns, ca, HYPERDRIVE_HOST, "10.100.0.1",
                                     source="198.51.100.10",
                                     password=PASSWORDS["pg_password_svc_web_ro"])
            assert other["ok"] is False and "pg_hba.conf rejects" in str(other["error"])

            # WAL to R2 from inside postgresql.service, a full backup from its unit
            for name in ("second", "third"):
                assert http(edge, "POST", 8080, "/items", {"name": name})[0] == 201
            wait_archived(primary)
            assert r2.keys("prod/archive/prod/"), "no WAL in the repository"
            primary.start("edgekit-pgbackrest-full")

            # everything stops and starts again: nothing lost, the bootstrap idempotent
            edge.stop()
            primary.stop()
            primary.start("postgresql", "postgresql-setup", "edgekit-pg-bootstrap")
            edge.start("edgekit-api", "edgekit-web")
            assert _rows(primary) == ["first", "second", "third"]
            assert http(edge, "POST", 8080, "/items", {"name": "after-restart"})[0] == 201

            # the recovery target: rows before it are kept, rows after it are not
            time.sleep(1.1)
            target = datetime.fromisoformat(psql(primary, "SELECT to_char(clock_timestamp(), "
                                                 "'YYYY-MM-DD\"T\"HH24:MI:SS.USOF')"))
            time.sleep(1.1)
            assert http(edge, "POST", 8080, "/items", {"name": "too-late"})[0] == 201
            wait_archived(primary)
            expected = ["first", "second", "third", "after-restart"]
            edge.stop()
            primary.stop()
        with restored_node(tmp_path, primary, r2, target) as new:
            assert _rows(new) == expected


CONNECT = """\
import os, psycopg
password = open(os.environ["CREDENTIALS_DIRECTORY"] + "/pgpassword").read()
conn = psycopg.connect(host=os.environ["PGHOST"], user=os.environ["PGUSER"],
                       dbname=os.environ["PGDATABASE"], password=password, autocommit=True)
"""
WHO_AM_I = CONNECT + """\
row = conn.execute("SELECT current_user, host(inet_client_addr()), ssl FROM pg_stat_ssl "
                   "WHERE pid = pg_backend_pid()").fetchone()
print(*row)
"""
WEB_WRITES = CONNECT + """\
try:
    conn.execute("INSERT INTO app.items (name) VALUES ('from-web')")
    print("WROTE")
except psycopg.Error as error:
    print("DENIED", error)
"""


def as_service(node: NodeRun, unit: str, code: str) -> str:
    """`code` run by `unit`'s own user, with its own credential and environment, inside its
    sandbox (in place of its program); what it printed."""
    name = f"{unit}-probe"
    probe = node.path(f"/etc/edgekit/{name}.py")
    probe.write_text(code)
    python = next(s for s in node.store if "-python3-env-" in s)
    spec = node.units[unit]
    node.run_unit(attrs.evolve(spec, name=name, type="oneshot",
                               exec_start=(f"{python}/bin/python3 /etc/edgekit/{name}.py",),
                               user=unit))
    return node.journal(name)


def test_a_wrong_role_name_in_a_services_environment_is_named_in_its_log(
        tmp_path: Path) -> None:
    with _estate(tmp_path) as (primary, edge, _r2, device):
        primary.start("edgekit-keys", "edgekit-pg-volume")
        with mounted(device, primary.path("/var/lib/postgresql")):
            primary.start("postgresql", "postgresql-setup", "edgekit-pg-bootstrap")
            schema = (ROOT / "services" / "api" / "schema.sql").read_text()
            psql(primary, f"SET ROLE api_owner; {schema}", db="api")
            edge.start("edgekit-keys")
            api = edge.units["edgekit-api"]
            wrong = attrs.evolve(api, environment={**api.environment, "PGUSER": "svc_api_wr"})
            edge.run_unit(wrong)  # starts: the service runs and says what is wrong
            deadline = time.monotonic() + 60
            while "cannot use Postgres" not in edge.journal("edgekit-api"):
                assert time.monotonic() < deadline, edge.journal("edgekit-api")
                time.sleep(0.2)
            log = edge.journal("edgekit-api")
            assert ("api: cannot use Postgres 10.100.0.1:5432 as svc_api_wr (database api): "
                    'connection failed: connection to server at "10.100.0.1", port 5432 '
                    'failed: FATAL: pg_hba.conf rejects connection for host "10.100.0.21", '
                    'user "svc_api_wr", database "api"') in log, log
            status, body = http(edge, "GET", 8080, "/healthz")
            assert status == 503 and "OperationalError" in body
            assert http(edge, "POST", 8080, "/items", {"name": "x"})[0] == 500
            assert _rows(primary) == []  # nothing written, nothing else touched
