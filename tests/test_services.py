"""The api and web services, run as real processes on loopback.

Against a throwaway PostgreSQL cluster of the nodes' major bootstrapped exactly as the
primary's node does it (`bootstrap_sql`, then `password_sql` per login role, tables made by the
owners from each service's schema.sql), and a tiny OTLP/HTTP receiver standing in for the
node's Vector: it takes only protobuf, as the pinned Vector does, and decodes it with
opentelemetry-proto (an implementation independent of the services' encoder). The services'
records reaching the real Vector and R2 are in tests/test_vector_real.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from psycopg import errors

from edgekit.constructs.pg_bootstrap import bootstrap_sql, password_sql
from edgekit.cue.model import Estate
from tests.conftest import ROOT
from tests.pg_server import TIMEOUT, PgServer, free_port, throwaway_postgres

SERVICES = ROOT / "services"


Pg = PgServer


def _bootstrap(pg: Pg) -> None:
    """The primary's bootstrap, as its oneshot unit runs it; then the owners' tables."""
    services = Estate.load(ROOT, "prod", check_fresh=False).services
    files = pg.base / "files"
    files.mkdir()
    script = files / "bootstrap.sql"
    script.write_text(bootstrap_sql(services))
    result = pg.psql("-d", "postgres", "-f", str(script))
    assert result.returncode == 0, result.stdout + result.stderr
    for service in services.values():
        role = service.pg_role
        if role is None:
            continue
        secret = files / role
        secret.write_text(f"pw-{secrets.token_urlsafe(18)}\n")
        secret.chmod(0o600)
        snippet = files / f"{role}.sql"
        snippet.write_text(password_sql(role))
        result = pg.psql("-d", "postgres", "-v", f"password_file={secret}", "-f", str(snippet))
        assert result.returncode == 0, result.stdout + result.stderr
        pg.password_files[role] = secret
    for db in ("api", "web"):
        with pg.connect(db) as conn:
            conn.execute(f"SET ROLE {db}_owner")
            conn.execute((SERVICES / db / "schema.sql").read_text())
    with pg.connect("web") as conn:
        conn.execute("SET ROLE web_owner")
        conn.execute("INSERT INTO app.items (name) VALUES ('<seeded & escaped>')")


@pytest.fixture(scope="module")
def pg() -> Iterator[Pg]:
    with throwaway_postgres("edgekit-svc-pg-") as server:
        _bootstrap(server)
        yield server


# ---------------------------------------------------------------- OTLP/HTTP receiver


def _decoded(path: str, body: bytes) -> dict[str, Any]:
    """An OTLP/HTTP protobuf request as its OTLP/JSON form (hex trace and span ids)."""
    message: Message = (ExportTraceServiceRequest() if path == "/v1/traces"
                        else ExportLogsServiceRequest())
    message.ParseFromString(body)
    decoded: dict[str, Any] = MessageToDict(message, use_integers_for_enums=True)

    def hex_ids(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("traceId", "spanId", "parentSpanId"):
                    value[key] = base64.b64decode(inner).hex()
                else:
                    hex_ids(inner)
        elif isinstance(value, list):
            for inner in value:
                hex_ids(inner)

    hex_ids(decoded)
    return decoded


class Receiver:
    """Records every OTLP/HTTP protobuf POST, decoded: (path, body); refuses other types."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(415)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.received.append((self.path, _decoded(self.path, body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def resources(self, path: str, service: str) -> list[dict[str, Any]]:
        """The resourceSpans / resourceLogs entries from `service` received at `path`."""
        key = {"/v1/traces": "resourceSpans", "/v1/logs": "resourceLogs"}[path]
        with self.lock:
            bodies = [body for p, body in self.received if p == path]
        found = []
        for body in bodies:
            for resource in body[key]:
                attributes = _attrs(resource["resource"]["attributes"])
                if attributes.get("service.name") == service:
                    found.append(resource)
        return found

    def spans(self, service: str) -> list[dict[str, Any]]:
        return [span for r in self.resources("/v1/traces", service)
                for scope in r["scopeSpans"] for span in scope["spans"]]

    def logs(self, service: str) -> list[dict[str, Any]]:
        return [log for r in self.resources("/v1/logs", service)
                for scope in r["scopeLogs"] for log in scope["logRecords"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: next(iter(item["value"].values())) for item in items}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    recv = Receiver()
    yield recv
    recv.close()


# ---------------------------------------------------------------- the services


@attrs.frozen
class Running:
    name: str
    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _request(url: str, method: str = "GET", body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else (body if isinstance(body, bytes)
                                      else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _start(name: str, env: dict[str, str]) -> Running:
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("PG", "OTEL_"))}
    environment |= {"PORT": str(port), "BIND": "127.0.0.1", "OTEL_SERVICE_NAME": name,
                    "OTEL_BSP_SCHEDULE_DELAY": "100",
                    "PYTHONPATH": str(SERVICES / "lib"),  # what the glued flake packages
                    **env}
    process = subprocess.Popen([sys.executable, str(SERVICES / name / "app.py")],
                               env=environment, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    running = Running(name, process, port)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"{name} exited with {process.returncode} before it was ready:\n"
                        f"{output}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return running
        time.sleep(0.05)
    _stop_service(running)
    pytest.fail(f"{name} did not listen on 127.0.0.1:{port} within {TIMEOUT}s")


def _stop_service(running: Running) -> None:
    running.process.terminate()
    try:
        running.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait(timeout=10)
    if running.process.stdout:
        running.process.stdout.close()


Starter = Callable[[str, dict[str, str]], Running]


@pytest.fixture(scope="module")
def start() -> Iterator[Starter]:
    started: list[Running] = []

    def starter(name: str, env: dict[str, str]) -> Running:
        running = _start(name, env)
        started.append(running)
        return running

    yield starter
    for running in started:
        _stop_service(running)


def _pg_env(pg: Pg, role: str) -> dict[str, str]:
    # PGUSER and PGDATABASE are not set: they come from the service's edgekit.json.
    return {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port),
            "PGPASSWORD_FILE": str(pg.password_files[role])}


@pytest.fixture(scope="module")
def api(pg: Pg, receiver: Receiver, start: Starter) -> Running:
    return start("api", {**_pg_env(pg, "svc_api_rw"),
                         "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                         "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,"
                                                     "host.name=test-node"})


@pytest.fixture(scope="module")
def web(pg: Pg, receiver: Receiver, start: Starter) -> Running:
    return start("web", {**_pg_env(pg, "svc_web_ro"),
                         "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})


# ---------------------------------------------------------------- api


def test_api_health(api: Running) -> None:
    status, headers, body = _request(f"{api.url}/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "db": "ok"}
    assert headers["Content-Type"] == "application/json"


def test_api_items_round_trip_through_its_rw_role(api: Running, pg: Pg) -> None:
    with pg.connect("api") as conn:  # record which role inserts each row (test only)
        conn.execute("SET ROLE api_owner")
        conn.execute("ALTER TABLE app.items ADD COLUMN IF NOT EXISTS inserted_by text "
                     "NOT NULL DEFAULT current_user")
    status, _, body = _request(f"{api.url}/items", "POST", {"name": "first"})
    assert status == 201, body
    created = json.loads(body)
    assert created["name"] == "first" and isinstance(created["id"], int)
    status, _, body = _request(f"{api.url}/items")
    assert status == 200
    assert created in json.loads(body)["items"]
    with pg.connect("api") as conn:
        # the service logged in as svc_api_rw: from edgekit.json, not from the environment
        assert conn.execute("SELECT name, inserted_by FROM app.items WHERE id = %s",
                            (created["id"],)).fetchone() == ("first", "svc_api_rw")


@pytest.mark.parametrize("body", [{"nom": "x"}, {"name": ""}, {"name": 3}, b"{not json",
                                  {"name": "x" * 201}])
def test_api_refuses_bad_items(api: Running, body: Any) -> None:
    status, _, reply = _request(f"{api.url}/items", "POST", body)
    assert status == 400, reply
    assert "error" in json.loads(reply)


def test_api_unknown_route(api: Running) -> None:
    assert _request(f"{api.url}/nope")[0] == 404


# ---------------------------------------------------------------- web


@pytest.mark.parametrize("path", ["/", "/docs/", "/docs/getting-started", "/docs/api"])
def test_web_pages_are_cacheable_html(web: Running, path: str) -> None:
    status, headers, body = _request(f"{web.url}{path}")
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.startswith(b"<!doctype html>")


def test_web_home_lists_items_through_its_ro_role(web: Running) -> None:
    body = _request(f"{web.url}/")[2].decode()
    assert "<li>&lt;seeded &amp; escaped&gt;</li>" in body


def test_web_health_and_missing_pages(web: Running) -> None:
    status, headers, body = _request(f"{web.url}/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok", "db": "ok"})
    assert headers["Cache-Control"] == "no-store"
    status, headers, _ = _request(f"{web.url}/docs/nope")
    assert status == 404 and headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_web_cannot_write(web: Running, method: str) -> None:
    status, headers, _ = _request(f"{web.url}/", method, {"name": "x"})
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_web_role_cannot_write_even_directly(pg: Pg) -> None:
    password = pg.password_files["svc_web_ro"].read_text().rstrip("\n")
    with pg.connect("web", "svc_web_ro", password) as conn, \
            pytest.raises(errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO app.items (name) VALUES ('nope')")


# ---------------------------------------------------------------- OpenTelemetry


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_otel_traces_and_logs_arrive_with_service_name(
        api: Running, web: Running, receiver: Receiver) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    status, _, _ = _request(f"{api.url}/items", headers={
        "traceparent": f"00-{trace_id}-{parent}-01"})
    assert status == 200
    assert _request(f"{web.url}/docs/")[0] == 200

    def traced() -> bool:
        return any(s["traceId"] == trace_id for s in receiver.spans("api")) and any(
            s["name"] == "GET /docs/" for s in receiver.spans("web"))

    _wait_for(traced, "the spans of api and web at the OTLP receiver")
    span = next(s for s in receiver.spans("api") if s["traceId"] == trace_id)
    assert span["parentSpanId"] == parent
    assert span["name"] == "GET /items" and span["kind"] == 2 and span["status"] == {"code": 1}
    assert _attrs(span["attributes"]) == {"http.request.method": "GET", "url.path": "/items",
                                          "http.response.status_code": "200"}
    assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
    resource = _attrs(receiver.resources("/v1/traces", "api")[0]["resource"]["attributes"])
    assert resource == {"service.name": "api", "deployment.environment": "test",
                        "host.name": "test-node"}

    def logged() -> bool:
        return any(r.get("traceId") == trace_id for r in receiver.logs("api")) and bool(
            receiver.logs("web"))

    _wait_for(logged, "the logs of api and web at the OTLP receiver")
    record = next(r for r in receiver.logs("api") if r.get("traceId") == trace_id)
    assert record["body"] == {"stringValue": "GET /items 200"}
    assert record["severityText"] == "INFO" and record["spanId"] == span["spanId"]
    assert record["severityNumber"] == 9
    assert any(r["body"]["stringValue"] == "GET /docs/ 200" for r in receiver.logs("web"))


def test_an_unreachable_collector_never_fails_a_request(pg: Pg, start: Starter) -> None:
    closed = free_port()
    api = start("api", {**_pg_env(pg, "svc_api_rw"),
                        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}"})
    began = time.monotonic()
    for _ in range(20):
        assert _request(f"{api.url}/healthz")[0] == 200
    assert time.monotonic() - began < 10


def test_health_is_503_when_postgres_is_unreachable(start: Starter, pg: Pg) -> None:
    web = start("web", {"PGHOST": "127.0.0.1", "PGPORT": str(free_port()),
                        "PGPASSWORD": "x", "OTEL_SDK_DISABLED": "true"})
    status, _, body = _request(f"{web.url}/healthz")
    assert status == 503
    assert json.loads(body)["status"] == "error"
