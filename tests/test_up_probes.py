"""What `edgekit up` waits for (ADR 0031): the probes, asked against real things where they
exist here (PostgreSQL 15, a closed port) and a stand-in where they do not (cloudflared: a
script that forwards TCP and records its command line and environment)."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edgekit.deploy.reports import parse_report
from edgekit.ops.up.probes import (
    MeshKeysProbe,
    ObjectProbe,
    PostgresProbe,
    ProbeError,
    Seen,
    StatusProbe,
    cloudflared_forward,
    direct,
    postgres_answers,
    wait_for,
)
from tests.pg_server import free_port, throwaway_postgres

NOW = datetime(2026, 12, 6, 20, 0, 0, tzinfo=UTC)
"""The probe's injected clock; reports are dated relative to it, never to the day the test
runs."""
C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40
"""c1 < c2 < c3 in the repository's history."""


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def status(at: datetime = NOW, **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "schema": "edgekit.status/v1", "env": "prod", "node": "pg-tokyo", "wanted": C2,
        "running": C2, "generation": 3, "time": stamp(at), "ref": "deploy/prod",
        "switch": {"result": "ok", "attempt": 1, "max_attempts": 5, "message": "switched",
                   "time": stamp(at - timedelta(minutes=2))},
        "health": {"postgresql": {"ok": True, "detail": "accepting connections"}}}
    body.update(changes)
    return json.dumps(body).encode()


def probe(raw: bytes | None, revision: str = C2, now: datetime = NOW) -> StatusProbe:
    """The probe over one stored object, read by the one reader (`parse_report`)."""
    history = {(C2, C1), (C3, C2), (C3, C1)}
    key = "s3://edgekit-logs/status/prod/pg-tokyo.json"
    return StatusProbe(lambda: None if raw is None else parse_report(raw, key), "prod",
                       "pg-tokyo", revision, lambda a, b: (a, b) in history, 900.0,
                       lambda: now)


def test_status_is_up_only_when_fresh_running_what_was_pushed_and_healthy() -> None:
    assert probe(status(at=NOW - timedelta(seconds=30))).check() == Seen(
        True, f"runs {C2[:12]}, healthy (postgresql); reported 30s ago")
    assert probe(status(wanted=C3, running=C3)).check().ready  # a later commit is fine
    older = probe(status(wanted=C1, running=C1)).check()
    assert not older.ready and "has not pulled the pushed commit yet" in older.detail
    switching = probe(status(running=C1, switch={
        "result": "pending", "attempt": 2, "max_attempts": 5, "message": "building",
        "time": stamp(NOW)})).check()
    assert switching == Seen(False, "switching: attempt 2 of 5: building")
    sick = probe(status(health={"postgresql": {"ok": False, "detail": "no data volume"}}))
    assert sick.check() == Seen(False, "unhealthy: postgresql: no data volume")
    failed = probe(status(switch={"result": "rolled-back", "attempt": 3, "max_attempts": 5,
                                  "message": "health window", "time": stamp(NOW)}))
    assert failed.check() == Seen(False, "rolled-back: health window")
    assert probe(None).check().detail.startswith("no status object yet")
    # a primary that reports no Postgres check is not known to accept connections
    blind = probe(status(health={"api": {"ok": True, "detail": "200"}})).check()
    assert not blind.ready and "reports no postgresql check" in blind.detail


def test_a_stale_report_is_never_up_by_the_rule_edgekit_status_uses() -> None:
    """Stale after the environment's deploy.stale_after_seconds, whatever it said; the
    same report read at another moment of the injected clock."""
    report = status(at=NOW)
    assert probe(report, now=NOW + timedelta(seconds=900)).check().ready
    late = probe(report, now=NOW + timedelta(seconds=901)).check()
    assert not late.ready and late.detail.startswith("stale: last report 15m ago")


def test_a_status_object_that_is_not_one_is_an_error_not_a_wait() -> None:
    with pytest.raises(ProbeError, match="not JSON"):
        probe(b"{nope").check()
    with pytest.raises(ProbeError, match=r"schema.*#NodeStatus"):
        probe(status(schema="other")).check()
    with pytest.raises(ProbeError, match=r"\$\.time"):  # the contract's shape, field named
        probe(status(time="yesterday")).check()
    with pytest.raises(ProbeError, match="is the status of prod/edge-1"):
        probe(status(node="edge-1")).check()


def test_the_wait_is_bounded_on_its_clock() -> None:
    class Clock:
        def __init__(self) -> None:
            self.t = 100.0
            self.slept: list[float] = []

        def now(self) -> float:
            return self.t

        def sleep(self, seconds: float) -> None:
            self.slept.append(seconds)
            self.t += seconds

    class Never:
        what = "nothing"
        asked = 0

        def check(self) -> Seen:
            self.asked += 1
            return Seen(False, f"try {self.asked}")

    clock, never, seen = Clock(), Never(), []
    last, waited = wait_for(never, timeout=50, interval=15, clock=clock,
                            report=lambda s, w: seen.append((s.detail, w)))
    assert not last.ready and waited == 50
    assert clock.slept == [15, 15, 15, 5]  # never past the deadline
    assert seen[-1] == ("try 5", 50)


def test_postgres_answers_the_ssl_request(tmp_path: Path) -> None:
    with throwaway_postgres("edgekit-probe-") as pg:
        seen = PostgresProbe(direct("127.0.0.1", pg.port), "a test").check()
        assert seen == Seen(True, f"Postgres answers on 127.0.0.1:{pg.port}")
    closed = postgres_answers("127.0.0.1", free_port(), timeout=2)
    assert not closed.ready and "no answer from 127.0.0.1" in closed.detail
    with socket.socket() as server:  # something that is not Postgres
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        import threading

        def reply() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(8)
                conn.sendall(b"HTTP/1.1 400\r\n")

        threading.Thread(target=reply, daemon=True).start()
        other = postgres_answers("127.0.0.1", port)
    assert other == Seen(False, f"127.0.0.1:{port} answered b'H', not Postgres")


STAND_IN = r'''#!{python}
"""cloudflared stand-in: `access tcp --hostname H --url 127.0.0.1:P` forwards P to $TARGET."""
import json, os, socket, sys, threading
args = sys.argv[1:]
with open(os.environ["RECORD"], "w") as out:
    json.dump({{"argv": args, "id": os.environ.get("TUNNEL_SERVICE_TOKEN_ID"),
               "secret": os.environ.get("TUNNEL_SERVICE_TOKEN_SECRET")}}, out)
port = int(args[args.index("--url") + 1].split(":")[1])
host, target = os.environ["TARGET"].split(":")
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port)); server.listen(4)
def pipe(a, b):
    while data := a.recv(4096):
        b.sendall(data)
while True:
    conn, _ = server.accept()
    up = socket.create_connection((host, int(target)))
    threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
    threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
'''


def test_through_cloudflared_the_token_stays_off_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "cloudflared"
    binary.write_text(STAND_IN.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "record.json"
    with throwaway_postgres("edgekit-probe-cf-") as pg:
        monkeypatch.setenv("TARGET", f"127.0.0.1:{pg.port}")
        monkeypatch.setenv("RECORD", str(record))
        forward = cloudflared_forward(str(binary), "pg-origin.edgekit.example", "id-1",
                                      "secret-2", settle=30)
        seen = PostgresProbe(forward, "through cloudflared").check()
    assert seen.ready, seen
    called = json.loads(record.read_text())
    assert called["argv"][:4] == ["access", "tcp", "--hostname", "pg-origin.edgekit.example"]
    assert (called["id"], called["secret"]) == ("id-1", "secret-2")
    assert "secret-2" not in " ".join(called["argv"]) and "id-1" not in called["argv"]
    assert "TUNNEL_SERVICE_TOKEN_SECRET" not in os.environ


def test_a_missing_cloudflared_is_a_clear_error(tmp_path: Path) -> None:
    forward = cloudflared_forward(str(tmp_path / "nope"), "h", "i", "s")
    with pytest.raises(ProbeError, match="install cloudflared or pass --pg-address"):
        PostgresProbe(forward, "x").check()


def test_mesh_keys_are_there_when_every_node_published() -> None:
    keys = ["mesh/prod/edge-1.pub", "mesh/prod/pg-tokyo.pub", "mesh/prod/notes.txt"]
    waiting = MeshKeysProbe(lambda prefix: keys, "prod", ("edge-1", "edge-2", "pg-tokyo"))
    assert waiting.check() == Seen(False, "no key yet from edge-2")
    keys.append("mesh/prod/edge-2.pub")
    assert waiting.check().ready


def test_the_authority_is_there_when_its_object_is() -> None:
    keys: list[str] = ["pg-tls/prod/pg-tokyo.crt.tmp"]
    waiting = ObjectProbe(lambda prefix: [k for k in keys if k.startswith(prefix)],
                          "pg-tls/prod/pg-tokyo.crt", "the authority")
    assert waiting.check() == Seen(False, "nothing at pg-tls/prod/pg-tokyo.crt yet")
    keys.append("pg-tls/prod/pg-tokyo.crt")
    assert waiting.check() == Seen(True, "pg-tls/prod/pg-tokyo.crt is there")
