"""TLS on the primary and the Hyperdrive path (ADR 0025), with the real PostgreSQL 17.

The certificate script the node runs (`pg_tls.certificate_script`) makes the authority and
the server certificate; Postgres runs with the generated TLS settings and the generated
pg_hba (`mesh_hba`: ``hostssl`` lines only) in a network namespace holding the primary's mesh
address. A Hyperdrive-like client reaches it as cloudflared does on the node: through a TCP
relay that dials the listen address without choosing a source (so the kernel gives it the
listen address itself), and verifies the server (``verify-full`` against the node's
authority and the Hyperdrive hostname). The same relay bound to another address is refused,
as is any login without TLS.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from edgekit.constructs.hyperdrive import hyperdrive_service
from edgekit.constructs.pg_tls import LOG_MARK, certificate_script
from edgekit.cue.model import Estate
from edgekit.estate.mesh_plan import mesh_hba, mesh_plan
from tests.conftest import ROOT
from tests.node_harness.scenario import hyperdrive_probe
from tests.pg_server import TIMEOUT, PgServer, make_certificates, pg_bin, throwaway_postgres

HOST = "pg-origin.edgekit.example"
PRIMARY = "10.100.0.1"
STRANGER = "10.100.0.99"


def _openssl(*argv: str) -> str:
    done = subprocess.run(["openssl", *argv], capture_output=True, text=True, check=True,
                          timeout=TIMEOUT)
    return done.stdout


def test_the_certificate_script_makes_an_authority_once_and_renews_on_change(
        tmp_path: Path) -> None:
    folder = tmp_path / "tls"

    def run(hostnames: list[str], addresses: list[str]) -> str:
        script = certificate_script(hostnames=hostnames, addresses=addresses,
                                    directory=str(folder), owner="root")
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              timeout=TIMEOUT, check=True)
        return done.stdout

    first = run([HOST], [PRIMARY])
    ca_pem = (folder / "ca.crt").read_text()
    assert f"{LOG_MARK} " in first and "new Postgres server certificate" in first
    text = _openssl("x509", "-in", str(folder / "server.crt"), "-noout", "-text")
    assert f"DNS:{HOST}" in text and f"IP Address:{PRIMARY}" in text
    assert _openssl("verify", "-CAfile", str(folder / "ca.crt"),
                    str(folder / "server.crt")).strip().endswith("OK")
    assert (folder / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "server.key").stat().st_mode & 0o777 == 0o600
    serial = _openssl("x509", "-in", str(folder / "server.crt"), "-noout", "-serial")
    again = run([HOST], [PRIMARY])  # the daily timer: nothing to do
    assert "new Postgres server certificate" not in again
    assert _openssl("x509", "-in", str(folder / "server.crt"), "-noout", "-serial") == serial
    moved = run([HOST], ["10.100.0.2"])  # another listen address: a new certificate
    assert "new Postgres server certificate" in moved
    assert (folder / "ca.crt").read_text() == ca_pem  # from the same authority


@contextlib.contextmanager
def _namespace(tag: str) -> Iterator[str]:
    name = f"ektls-{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=TIMEOUT)
    try:
        # the addresses on loopback: local either way, which is all the source choice needs
        for argv in (["ip", "link", "set", "lo", "up"],
                     ["ip", "addr", "add", f"{PRIMARY}/24", "dev", "lo"],
                     ["ip", "addr", "add", f"{STRANGER}/32", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", name, *argv], check=True, timeout=TIMEOUT)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=TIMEOUT)


def _client(ns: str, pg: PgServer, *, source: str | None, user: str, db: str, password: str,
            sslmode: str = "verify-full") -> dict[str, object]:
    return hyperdrive_probe(ns, pg.tls / "ca.crt", HOST, PRIMARY, source=source,
                            password=password, user=user, db=db, sslmode=sslmode, port=pg.port)


def test_hyperdrive_path_admits_exactly_cloudflareds_source_over_tls() -> None:
    estate = Estate.load(ROOT, "prod", check_fresh=False)
    plan = mesh_plan(estate.env)
    assert plan.addresses["pg-tokyo"] == PRIMARY
    reader = hyperdrive_service(estate.services)
    assert reader is not None and reader.pg_role == "svc_web_ro"
    hba = mesh_hba(estate.env, estate.services, plan)
    with throwaway_postgres("edgekit-tls-") as pg, _namespace(str(os.getpid())) as ns:
        with pg.connect("postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE web")
            conn.execute("CREATE DATABASE api")
            conn.execute("CREATE ROLE svc_web_ro LOGIN PASSWORD 'web-secret'")
            conn.execute("CREATE ROLE svc_api_rw LOGIN PASSWORD 'api-secret'")
        # the node's certificate: the Hyperdrive hostname and the mesh address
        for name in ("server.crt", "server.key", "server.san"):
            (pg.tls / name).unlink()
        make_certificates(pg, hostnames=(HOST,), addresses=(PRIMARY,))
        (pg.data / "pg_hba.conf").write_text("local all postgres trust\n" + "\n".join(hba)
                                             + "\n")
        stop = pg.pg(str(pg_bin() / "pg_ctl"), "-D", str(pg.data), "-m", "fast", "-w", "stop")
        assert stop.returncode == 0, stop.stderr
        log = pg.run / "tls.log"
        options = (f"-c listen_addresses={PRIMARY} -p {pg.port} -k {pg.run} -c fsync=off "
                   f"{pg.tls_options()}")
        start = subprocess.run(
            ["ip", "netns", "exec", ns, *pg.as_postgres(
                str(pg_bin() / "pg_ctl"), "-D", str(pg.data), "-l", str(log), "-w", "-t", "30",
                "-o", options, "start")],
            capture_output=True, text=True, timeout=TIMEOUT, cwd=pg.run)
        assert start.returncode == 0, start.stdout + start.stderr + log.read_text()

        # Hyperdrive through cloudflared: source = the listen address, TLS verified
        hyperdrive = _client(ns, pg, source=None, user="svc_web_ro", db="web",
                             password="web-secret")
        assert hyperdrive == {"ok": True, "row": ["svc_web_ro", PRIMARY, True]}, hyperdrive
        # the same path from any other address: refused
        stranger = _client(ns, pg, source=STRANGER, user="svc_web_ro", db="web",
                           password="web-secret")
        assert stranger["ok"] is False
        assert f'pg_hba.conf rejects connection for host "{STRANGER}"' in str(stranger["error"])
        # the line admits Hyperdrive's role only
        other_role = _client(ns, pg, source=None, user="svc_api_rw", db="api",
                             password="api-secret")
        assert other_role["ok"] is False and "pg_hba.conf rejects" in str(other_role["error"])
        # no login without TLS, even from the admitted address
        plain = _client(ns, pg, source=None, user="svc_web_ro", db="web",
                        password="web-secret", sslmode="disable")
        assert plain["ok"] is False and "no encryption" in str(plain["error"])
        # a server whose certificate is not from the pinned authority is not trusted
        wrong_ca = pg.tls / "other-ca.crt"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "1", "-subj", "/CN=other", "-keyout",
                 str(pg.tls / "other-ca.key"), "-out", str(wrong_ca))
        (pg.tls / "ca.crt").rename(pg.tls / "ca.crt.real")
        wrong_ca.rename(pg.tls / "ca.crt")
        try:
            mitm = _client(ns, pg, source=None, user="svc_web_ro", db="web",
                           password="web-secret")
        finally:
            (pg.tls / "ca.crt.real").rename(pg.tls / "ca.crt")
        assert mitm["ok"] is False and "certificate verify failed" in str(mitm["error"])
