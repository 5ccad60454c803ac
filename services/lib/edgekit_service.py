"""What every edgekit service shares: configuration from ``edgekit.json`` and the
environment, the Postgres password, best-effort OpenTelemetry (OTLP/HTTP protobuf to the
node's Vector, encoded by ``otlp_proto``), a Postgres connection, and an HTTP server that traces and logs every request.

A service (``services/<svc>/app.py``) subclasses `ServiceHandler`, implements ``route``
and calls `serve`; its glued flake packages this module with it (``services/lib/flake.nix``),
and ``PYTHONPATH=services/lib python services/<svc>/app.py`` runs it from the repository.
Python 3.11 stdlib only, plus psycopg 3 when Postgres is configured.

Configuration: ``edgekit.json`` beside the service (``EDGEKIT_CONFIG`` names another),
generated from CUE: port, health path, Postgres role and database. The environment overrides
it: ``PORT``, ``BIND`` (default ``127.0.0.1``: only cloudflared on the same node reaches it);
``PGHOST`` (Postgres is used only when it is set), ``PGPORT``, ``PGUSER``, ``PGDATABASE``, and
the password from ``PGPASSWORD``, or the file ``PGPASSWORD_FILE``, or the systemd credential
``$CREDENTIALS_DIRECTORY/pgpassword`` (what the NixOS module uses);
``OTEL_EXPORTER_OTLP_ENDPOINT`` (default: ``otel.endpoint`` of edgekit.json),
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SDK_DISABLED``,
``OTEL_BSP_SCHEDULE_DELAY`` (milliseconds between exports, default 1000).

Telemetry never holds a request up: one span and one log record per request go into a
bounded queue that a background thread posts. A batch the collector did not accept (refused,
timed out, not 2xx) is kept and posted again, with a growing pause, so a restart of the
node's Vector loses nothing; only when more than ``capacity`` records of a kind wait are the
oldest dropped (counted per kind, and said on stderr when it starts and when the service
stops). Every log record carries ``log.record.uid`` (OpenTelemetry's attribute for a record's
unique id): a batch posted twice (the answer lost, then retried) is the same records, which
``edgekit logs`` counts once (ADR 0036).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

from otlp_proto import CONTENT_TYPE, export_request

SCOPE = "edgekit.service"


# ------------------------------------------------------------------ configuration


def load_config(here: Path) -> dict[str, Any]:
    """The service's settings: ``edgekit.json`` in `here` (or ``$EDGEKIT_CONFIG``), with the
    environment over it (see the module doc)."""
    path = Path(os.environ.get("EDGEKIT_CONFIG") or here / "edgekit.json")
    data: dict[str, Any] = json.loads(path.read_text())
    pg = data.get("postgres") or {}
    otel = data.get("otel") or {}
    env = os.environ
    return {
        "service": data["service"],
        "bind": env.get("BIND", "127.0.0.1"),
        "port": int(env.get("PORT", data["port"])),
        "health_path": data.get("health_path", "/healthz"),
        "pg": {
            "host": env.get("PGHOST") or None,
            "port": int(env.get("PGPORT", pg.get("port", 5432))),
            "user": env.get("PGUSER", pg.get("role")),
            "dbname": env.get("PGDATABASE", pg.get("database")),
        },
        "otel": {
            "endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT", otel.get("endpoint")),
            "service_name": env.get("OTEL_SERVICE_NAME", otel.get("service_name",
                                                                  data["service"])),
            "attributes": env.get("OTEL_RESOURCE_ATTRIBUTES", ""),
            "disabled": env.get("OTEL_SDK_DISABLED", "").lower() == "true",
            "delay": int(env.get("OTEL_BSP_SCHEDULE_DELAY", "1000")) / 1000,
        },
    }


def pg_password() -> str | None:
    if "PGPASSWORD" in os.environ:
        return os.environ["PGPASSWORD"]
    candidates = [os.environ.get("PGPASSWORD_FILE")]
    if os.environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append(os.path.join(os.environ["CREDENTIALS_DIRECTORY"], "pgpassword"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return Path(candidate).read_text().rstrip("\n")
    return None


# ------------------------------------------------------------------ OTLP/HTTP, best effort


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _value(value)} for key, value in pairs.items()]


def resource_attributes(service_name: str, raw: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    attributes["service.name"] = service_name
    return attributes


class Telemetry:
    """Spans and log records into a bounded queue; a daemon thread posts them in batches."""

    RETRY_PAUSE_MAX = 5.0
    """Seconds, at most, between two posts of a batch the collector did not accept."""
    DROP_NOTICE_EVERY = 10_000
    """After the first, a "dropping" line on stderr per this many more dropped items."""

    def __init__(self, endpoint: str | None, resource: dict[str, Any], *, delay: float,
                 disabled: bool = False, capacity: int = 2048) -> None:
        self.endpoint = (endpoint or "").rstrip("/")
        self.enabled = bool(self.endpoint) and not disabled
        self.resource = _attributes(resource)
        self.delay = delay
        self.capacity = capacity
        self.queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=capacity)
        self.held: dict[str, list[dict[str, Any]]] = {"traces": [], "logs": []}
        """Items posted but not accepted yet, oldest first; posted again before new ones."""
        self.failures = 0
        self.dropped: dict[str, int] = {"traces": 0, "logs": 0}
        """Per kind: items given up (more than ``capacity`` waited), oldest first."""
        self.dropped_lock = threading.Lock()  # request threads and the exporter count
        self.said_dropped = 0
        """How many drops the last "dropping" line on stderr told of."""
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="otel-export", daemon=True)
        if self.enabled:
            self.thread.start()

    def _put(self, kind: str, item: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            self.queue.put_nowait((kind, item))
        except queue.Full:
            self._drop(kind, 1)

    def span(self, name: str, *, trace_id: str, span_id: str, parent: str | None,
             start: int, end: int, attributes: dict[str, Any], error: bool) -> None:
        span: dict[str, Any] = {
            "traceId": trace_id, "spanId": span_id, "name": name, "kind": 2,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
            "attributes": _attributes(attributes),
            "status": {"code": 2 if error else 1},
        }
        if parent:
            span["parentSpanId"] = parent
        self._put("traces", span)

    def log(self, body: str, *, severity: str = "INFO", trace_id: str | None = None,
            span_id: str | None = None, attributes: dict[str, Any] | None = None) -> None:
        now = str(time.time_ns())
        record: dict[str, Any] = {
            "timeUnixNano": now, "observedTimeUnixNano": now,
            "severityNumber": {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}.get(severity, 9),
            "severityText": severity, "body": {"stringValue": body},
            "attributes": _attributes({**(attributes or {}),
                                       "log.record.uid": secrets.token_hex(16)}),
        }
        if trace_id and span_id:
            record |= {"traceId": trace_id, "spanId": span_id}
        self._put("logs", record)

    def _post(self, kind: str, items: list[dict[str, Any]]) -> bool:
        """True when the collector accepted the batch (2xx)."""
        body = export_request(kind, self.resource, {"name": SCOPE}, items)
        request = urllib.request.Request(f"{self.endpoint}/v1/{kind}", data=body, method="POST",
                                         headers={"Content-Type": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                reply.read()
                return 200 <= reply.status < 300
        except Exception:  # refused, timed out, 5xx: keep the batch and try again later
            return False

    def _drain(self) -> bool:
        """Post what is held, then what is queued; True when everything was accepted."""
        while True:
            try:
                kind, item = self.queue.get_nowait()
            except queue.Empty:
                break
            self.held[kind].append(item)
        accepted = True
        for kind, items in self.held.items():
            sent = 0
            while accepted and sent < len(items):
                accepted = self._post(kind, items[sent:sent + 512])
                sent += 512 if accepted else 0
            left = items[sent:]
            if len(left) > self.capacity:  # the oldest go first; counted, said on stderr
                self._drop(kind, len(left) - self.capacity)
                left = left[len(left) - self.capacity:]
            self.held[kind] = left
        self._say_dropping()
        return accepted

    def _drop(self, kind: str, count: int) -> None:
        with self.dropped_lock:
            self.dropped[kind] += count

    def _say_dropping(self) -> None:
        """Say on stderr (the unit's journal) that items are being dropped when it starts,
        then once per `DROP_NOTICE_EVERY` more: an operator learns of it then, not at exit."""
        total = sum(self.dropped.values())
        if total < (self.said_dropped + self.DROP_NOTICE_EVERY if self.said_dropped else 1):
            return
        self.said_dropped = total
        print(f"telemetry: {self.endpoint} is not accepting telemetry; keeping the newest "
              f"{self.capacity} of each kind, dropped so far: {self._counts()}",
              file=sys.stderr, flush=True)

    def _counts(self) -> str:
        return f"{self.dropped['logs']} log record(s) and {self.dropped['traces']} span(s)"

    def _run(self) -> None:
        pause = self.delay
        while not self.stopping.wait(pause):
            if self._drain():
                self.failures, pause = 0, self.delay
            else:
                self.failures += 1
                pause = min(self.RETRY_PAUSE_MAX, self.delay * 2 ** self.failures)
        self._drain()

    def close(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        waiting = sum(map(len, self.held.values())) + self.queue.qsize()
        if any(self.dropped.values()) or waiting:
            print(f"telemetry: {self._counts()} dropped (more than {self.capacity} "
                  f"waited), {waiting} not accepted by {self.endpoint} at exit",
                  file=sys.stderr, flush=True)


# ------------------------------------------------------------------ Postgres


class Database:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings["host"])

    def connect(self) -> Any:
        import psycopg  # only needed when Postgres is configured

        return psycopg.connect(host=self.settings["host"], port=self.settings["port"],
                               user=self.settings["user"], dbname=self.settings["dbname"],
                               password=pg_password(), connect_timeout=5)

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute("SELECT 1")

    def items(self) -> list[dict[str, Any]]:
        with self.connect() as conn:
            rows = conn.execute("SELECT id, name FROM app.items ORDER BY id").fetchall()
        return [{"id": row[0], "name": row[1]} for row in rows]


# ------------------------------------------------------------------ HTTP


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Reply(NamedTuple):
    status: int
    body: str
    content_type: str = "application/json"
    cache: str = "no-store"


def json_reply(status: int, payload: Any, cache: str = "no-store") -> Reply:
    return Reply(status, json.dumps(payload), "application/json", cache)


def _hex(text: str, length: int) -> bool:
    return (len(text) == length and all(c in "0123456789abcdef" for c in text)
            and text.strip("0") != "")


def trace_parent(header: str | None) -> tuple[str, str | None]:
    """Trace id and parent span id from a W3C ``traceparent`` header, or a new trace."""
    parts = (header or "").strip().lower().split("-")
    if len(parts) == 4 and _hex(parts[1], 32) and _hex(parts[2], 16):
        return parts[1], parts[2]
    return secrets.token_hex(16), None


class ServiceHandler(BaseHTTPRequestHandler):
    """One request: ``route`` answers it; errors become JSON (a bug: 500, said in OTEL);
    every request is traced and logged. Subclasses set `allowed` for the 405 reply."""

    config: dict[str, Any]
    db: Database
    telemetry: Telemetry
    allowed = "GET, HEAD"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every request is logged through OTEL in _handle

    def route(self, method: str, path: str) -> Reply:
        raise NotImplementedError

    def health(self) -> Reply:
        """``GET <health_path>``: 200, or 503 when Postgres is configured and unreachable."""
        if not self.db.configured:
            return json_reply(200, {"status": "ok", "db": "not configured"})
        try:
            self.db.ping()
        except Exception as error:  # report, do not crash
            return json_reply(503, {"status": "error", "db": type(error).__name__})
        return json_reply(200, {"status": "ok", "db": "ok"})

    def _send(self, reply: Reply, head: bool, extra: dict[str, str]) -> None:
        body = reply.body.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", reply.cache)
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _handle(self, method: str) -> None:
        start = time.time_ns()
        trace_id, parent = trace_parent(self.headers.get("traceparent"))
        span_id = secrets.token_hex(8)
        path = urllib.parse.urlsplit(self.path).path
        error: str | None = None
        extra: dict[str, str] = {}
        try:
            reply = self.route(method, path)
        except HttpError as failure:
            reply = json_reply(failure.status, {"error": str(failure)})
            if failure.status == 405:
                extra["Allow"] = self.allowed
        except Exception as failure:  # a bug or a database error: 500, and say so in OTEL
            error = f"{type(failure).__name__}: {failure}"
            reply = json_reply(500, {"error": type(failure).__name__})
        with contextlib.suppress(OSError):
            self._send(reply, method == "HEAD", extra)
        status = reply.status
        end = time.time_ns()
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": path,
                                      "http.response.status_code": status}
        request_id = self.headers.get("x-request-id")
        if request_id:  # set by the edge Worker: joins this line with the edge's (ADR 0035)
            attributes["request.id"] = request_id[:128]
        self.telemetry.span(f"{method} {path}", trace_id=trace_id, span_id=span_id,
                            parent=parent, start=start, end=end,
                            attributes=attributes, error=status >= 500)
        severity = "ERROR" if status >= 500 else "INFO"
        # OpenTelemetry's request duration (seconds): `edgekit logs chart` draws it
        self.telemetry.log(f"{method} {path} {status}" + (f" {error}" if error else ""),
                           severity=severity, trace_id=trace_id, span_id=span_id,
                           attributes={**attributes,
                                       "http.server.request.duration": (end - start) / 1e9})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def check_database(config: dict[str, Any], db: Database, telemetry: Telemetry) -> bool:
    """Log in once at start and say how it went, in the unit's log (stderr, the journal) and
    in OTEL: a wrong role, password or database is named here, not only as 503s later."""
    if not db.configured:
        return True
    pg = config["pg"]
    where = (f"Postgres {pg['host']}:{pg['port']} as {pg['user']} (database {pg['dbname']})")
    try:
        db.ping()
    except Exception as error:  # the service still starts; its health answers 503
        message = f"{config['service']}: cannot use {where}: {' '.join(str(error).split())}"
        print(message, file=sys.stderr, flush=True)
        telemetry.log(message, severity="ERROR")
        return False
    print(f"{config['service']}: {where}: ok", file=sys.stderr, flush=True)
    return True


def serve(handler: type[ServiceHandler], here: Path,
          database: type[Database] | None = None) -> int:
    """Run the service until SIGTERM/SIGINT: `handler` with the settings of `here`."""
    config = load_config(here)
    otel = config["otel"]
    telemetry = Telemetry(otel["endpoint"],
                          resource_attributes(otel["service_name"], otel["attributes"]),
                          delay=otel["delay"], disabled=otel["disabled"])
    bound = type("BoundHandler", (handler,), {
        "config": config, "db": (database or Database)(config["pg"]),
        "telemetry": telemetry})
    server = ThreadingHTTPServer((config["bind"], config["port"]), bound)
    server.daemon_threads = True

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"{config['service']} listening on http://{host}:{port}", file=sys.stderr, flush=True)
    telemetry.log(f"{config['service']} started on {host}:{port}")
    check_database(config, bound.db, telemetry)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        telemetry.log(f"{config['service']} stopping")
        telemetry.close()
    return 0
