"""What `edgekit up` waits for (ADR 0031): the probes, asked against real things where they
exist here (PostgreSQL 15, a closed port) and a stand-in where they do not (cloudflared: a
script that forwards TCP and records its command line and environment)."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from edgekit.ops.up.probes import (
    MeshKeysProbe,
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


def status(**changes: Any) -> bytes:
    body = {"schema": "edgekit.status/v1", "env": "prod", "node": "pg-tokyo", "wanted": "c2",
            "running": "c2", "generation": 3, "time": "2026-12-06T20:00:00Z",
            "switch": {"result": "ok", "attempt": 1, "message": "switched"},
            "health": {"postgresql": {"ok": True, "detail": "accepting connections"}}}
    body.update(changes)
    return json.dumps(body).encode()


def probe(raw: bytes | None, revision: str = "c2") -> StatusProbe:
    history = {("c2", "c1"), ("c3", "c2"), ("c3", "c1")}  # c1 < c2 < c3
    return StatusProbe(lambda key: raw if key == "status/prod/pg-tokyo.json" else None,
                       "prod", "pg-tokyo", revision, lambda a, b: (a, b) in history)


def test_status_is_up_only_when_running_what_was_pushed_and_healthy() -> None:
    assert probe(status()).check() == Seen(True, "runs c2, healthy (postgresql)")
    assert probe(status(wanted="c3", running="c3")).check().ready  # a later commit is fine
    older = probe(status(wanted="c1", running="c1")).check()
    assert not older.ready and "has not pulled the pushed commit yet" in older.detail
    switching = probe(status(running="c1", switch={
        "result": "pending", "attempt": 2, "message": "building"})).check()
    assert switching == Seen(False, "runs c1, asked to run c2 (switch pending, attempt 2: "
                             "building)")
    sick = probe(status(health={"postgresql": {"ok": False, "detail": "no data volume"}}))
    assert sick.check() == Seen(False, "runs c2, not healthy: postgresql: no data volume")
    failed = probe(status(switch={"result": "rolled-back", "attempt": 3, "message": "x"}))
    assert not failed.check().ready
    assert probe(None).check().detail.startswith("no status object yet")


def test_a_status_object_that_is_not_one_is_an_error_not_a_wait() -> None:
    with pytest.raises(ProbeError, match="is not JSON"):
        probe(b"{nope").check()
    with pytest.raises(ProbeError, match=r"not an edgekit\.status/v1 object"):
        probe(status(schema="other")).check()
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
