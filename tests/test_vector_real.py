"""The real Vector ships a node's logs to R2 (issue 11).

The binary is the pinned Vector (tools/versions.env, installed from the tool bundle by
tools/build.sh). It runs the configuration edgekit generates for a node, taken from the
node's NixOS modules (nix/estate.nix + nix/node.nix, evaluated against the vendored upstream
modules, nix/eval/), changed
only where the machine differs (data_dir, the OTLP ports, the S3 endpoint and bucket). Its
R2 keys come the way the node's unit gets them: the edgekit-keys script writes
``vector.env`` from the boot document, and the unit's ``EnvironmentFile`` becomes Vector's
environment. SeaweedFS stands in for R2 and checks signatures.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edgekit.nix.evaluate import evaluate
from edgekit.obs.contract import parse_key
from edgekit.obs.testing import SeaweedS3
from edgekit.obs.vector import VECTOR_VERSION, logs_prefix
from tests.conftest import ROOT
from tests.otlp_proto import CONTENT_TYPE, LogRecord, logs_request
from tests.pg_server import free_port
from tests.test_nix import NODE_EVAL, _nix
from tools.toolpaths import tools_dir

pytestmark = pytest.mark.tools

WAIT = 60.0  # seconds: the longest any step here may take


@pytest.fixture(scope="module")
def vector() -> str:
    binary = tools_dir() / "bin" / "vector"
    if not binary.is_file():
        pytest.fail(f"Vector not found at {binary}: run `make tools` (tools/build.sh installs "
                    "it from the tool bundle, EDGEKIT_TOOL_BUNDLE)")
    return str(binary)


def generated() -> list[tuple[str, str, dict[str, Any]]]:
    """(env, node, settings) for every node in nix/vector/<env>.json."""
    out = []
    for path in sorted((ROOT / "nix" / "vector").glob("*.json")):
        for node, settings in json.loads(path.read_text()).items():
            if node != "//":
                out.append((path.stem, node, settings))
    return out


# -- the pin --------------------------------------------------------------------------------

def test_the_binary_is_the_version_edgekit_pins(vector: str) -> None:
    pins = dict(re.findall(r"^([A-Z_]+)=(\S+)$", (ROOT / "tools/versions.env").read_text(),
                           re.M))
    assert pins["VECTOR_VERSION"] == VECTOR_VERSION
    out = subprocess.run([vector, "--version"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    assert out.split()[:2] == ["vector", VECTOR_VERSION]


# -- vector validate ------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "node", "settings"), generated(),
                         ids=[f"{e}-{n}" for e, n, _ in generated()])
def test_vector_validates_the_generated_config(vector: str, tmp_path: Path, env: str,
                                               node: str, settings: dict[str, Any]) -> None:
    config = tmp_path / f"{env}-{node}.json"
    config.write_text(json.dumps(settings))
    done = subprocess.run([vector, "validate", "--no-environment", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validated" in done.stdout


def test_vector_validate_refuses_a_broken_config(vector: str, tmp_path: Path) -> None:
    """The check above can fail: a sink reading from no component is refused."""
    _, _, settings = generated()[0]
    broken = copy.deepcopy(settings)
    broken["sinks"]["r2_logs"]["inputs"] = ["otel.metrics_that_do_not_exist"]
    config = tmp_path / "broken.json"
    config.write_text(json.dumps(broken))
    done = subprocess.run([vector, "validate", "--no-environment", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "otel.metrics_that_do_not_exist" in done.stdout + done.stderr


# -- the node's Vector, shipping to an S3 server that checks signatures ---------------------

def node_vector(env: str, node: str, keys_dir: Path) -> dict[str, Any]:
    """services.vector.settings, the vector unit and the edgekit-keys script of `node`, as
    nix/node.nix makes them from nix/estate.nix (what the flake gives nixosSystem)."""
    expression = (
        f"let e = import {_nix(NODE_EVAL)} {{ }}; "
        f"n = (import {_nix(ROOT / 'nix' / 'estate.nix')} {{ }}).{json.dumps(node)}; "
        f"mods = import {_nix(ROOT / 'nix' / 'node.nix')} {{ name = {json.dumps(node)}; "
        "node = n.composed; vector = n.vector; postgresql = null; "
        "modules = e.gluedModules; "
        f"keysDir = {json.dumps(str(keys_dir))}; "
        f"pgPasswordDir = {json.dumps(str(keys_dir) + '-pg')}; "
        "vectorPackage = e.pkgs.vector // { version = "
        f"{json.dumps(VECTOR_VERSION)}; }}; }}; "
        "ev = e.evalModules (mods ++ [ { system.stateVersion = \"25.11\"; } ]); "
        "r = e.reportOf ev; "
        "in { env = n.env; settings = r.vector.settings; "
        "unit = r.services.vector; keys = r.services.edgekit-keys.script; }")
    result: dict[str, Any] = evaluate(expression)
    assert result["env"] == env
    return result


def unit_environment(node: dict[str, Any], boot: Path, secrets: dict[str, str]) -> dict[str, str]:
    """Run the node's edgekit-keys script on a boot document holding `secrets`, then read the
    vector unit's EnvironmentFile as systemd does (KEY=VALUE lines)."""
    boot.write_text(json.dumps({"secrets": secrets}))
    script = node["keys"].replace("/etc/edgekit/boot.json", str(boot))
    done = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    (environment_file,) = node["unit"]["serviceConfig"]["EnvironmentFile"]
    env = {}
    for line in Path(environment_file.removeprefix("-")).read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


def for_this_machine(settings: dict[str, Any], *, data_dir: Path, endpoint: str,
                     bucket: str) -> dict[str, Any]:
    """The generated settings with this machine's data_dir, free loopback ports and the local
    S3 server; every other value stays as generated (checked)."""
    local = copy.deepcopy(settings)
    local["data_dir"] = str(data_dir)
    for protocol in ("grpc", "http"):
        local["sources"]["otel"][protocol]["address"] = f"127.0.0.1:{free_port()}"
    for sink in local["sinks"].values():
        sink["endpoint"] = endpoint
        sink["bucket"] = bucket
    changed = {path for path in _leaves(settings) if _at(local, path) != _at(settings, path)}
    assert changed == {("data_dir",), ("sources", "otel", "grpc", "address"),
                       ("sources", "otel", "http", "address")} | {
        ("sinks", sink, key) for sink in settings["sinks"] for key in ("endpoint", "bucket")}
    return local


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    else:
        yield path


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@contextmanager
def running(vector: str, settings: dict[str, Any], env: dict[str, str],
            workdir: Path) -> Iterator[tuple[str, Path]]:
    """Vector on `settings` with `env` as its whole environment (plus PATH/HOME); yields its
    OTLP/HTTP URL and log file, and stops it."""
    config = workdir / "vector.json"
    config.write_text(json.dumps(settings))
    Path(settings["data_dir"]).mkdir(parents=True, exist_ok=True)
    log_path = workdir / "vector.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [vector, "--graceful-shutdown-limit-secs", "3", "--config", str(config)],
            env={"PATH": "/usr/bin:/bin", "HOME": str(workdir),
                 "AWS_EC2_METADATA_DISABLED": "true", **env},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        address = settings["sources"]["otel"]["http"]["address"]
        host, port = address.rsplit(":", 1)
        deadline = time.monotonic() + WAIT
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Vector's OTLP/HTTP source never listened"
                time.sleep(0.1)
        yield f"http://{address}", log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def post(url: str, body: bytes, content_type: str = CONTENT_TYPE) -> int:
    request = urllib.request.Request(f"{url}/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            status: int = reply.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def send_and_fill(url: str, record: LogRecord, batch_bytes: int) -> None:
    """`record`, then enough records of the same hour to fill the sink's batch: the
    generated sink sends a batch at max_bytes or after timeout_secs (300 s); the test fills
    it rather than shortening the generated timeout."""
    resource = {"service.name": "api", "host.name": "edge-1"}
    assert post(url, logs_request([record], resource=resource)) == 200
    filler = "f" * 8000
    sent = 0
    while sent < batch_bytes * 1.2:
        batch = [LogRecord(body=f"filler {sent} {i} {filler}",
                           time_unix_nano=record.time_unix_nano) for i in range(100)]
        assert post(url, logs_request(batch, resource=resource)) == 200
        sent += 100 * len(filler)


def wait_for(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no {what} after {WAIT:.0f} s")


def test_a_log_record_reaches_the_bucket_as_gzip_ndjson(vector: str, s3: SeaweedS3,
                                                        tmp_path: Path) -> None:
    node = node_vector("prod", "edge-1", tmp_path / "keys")
    env = unit_environment(node, tmp_path / "boot.json", {
        "log_sink_access_key_id": s3.access_key,
        "log_sink_secret_access_key": s3.secret_key, "tunnel_token": "T"})
    assert set(env) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    client = s3.client()
    client.create_bucket(Bucket="logs-shipped")
    settings = for_this_machine(node["settings"], data_dir=tmp_path / "data",
                                endpoint=s3.endpoint, bucket="logs-shipped")
    moment = datetime.now(UTC)
    marker = f"edgekit real-vector test {uuid.uuid4()}"
    record = LogRecord(body=marker, time_unix_nano=int(moment.timestamp() * 1e9),
                       severity_text="WARN", severity_number=13, trace_id=bytes(range(16)),
                       span_id=bytes(range(8)), attributes={"http.route": "/api/items"})
    prefix = moment.strftime(logs_prefix("prod", "edge-1"))
    with running(vector, settings, env, tmp_path) as (url, _log):
        send_and_fill(url, record, settings["sinks"]["r2_logs"]["batch"]["max_bytes"])
        objects = wait_for(lambda: client.list_objects_v2(
            Bucket="logs-shipped", Prefix=prefix).get("Contents"), f"object under {prefix}")
    key = objects[0]["Key"]
    parsed = parse_key(key)
    assert parsed is not None and (parsed.stack, parsed.node) == ("prod", "edge-1"), key
    stored = client.get_object(Bucket="logs-shipped", Key=key)
    assert stored["ContentEncoding"] == "gzip"
    lines = gzip.decompress(stored["Body"].read()).decode().splitlines()
    first = json.loads(lines[0])
    assert first["message"] == marker
    assert first["severity_text"] == "WARN" and first["severity_number"] == 13
    assert first["trace_id"] == bytes(range(16)).hex()
    assert first["span_id"] == bytes(range(8)).hex()
    assert first["attributes"] == {"http.route": "/api/items"}
    assert first["resources"]["service.name"] == "api"
    assert first["source_type"] == "opentelemetry"
    assert first["timestamp"].startswith(moment.strftime("%Y-%m-%dT%H:%M:%S"))
    assert all(json.loads(line)["message"].startswith("filler") for line in lines[1:])


def test_wrong_keys_ship_nothing_and_vector_says_why(vector: str, s3: SeaweedS3,
                                                     tmp_path: Path) -> None:
    node = node_vector("prod", "edge-1", tmp_path / "keys")
    env = unit_environment(node, tmp_path / "boot.json", {
        "log_sink_access_key_id": s3.access_key,
        "log_sink_secret_access_key": "not-the-secret-key-0000000000"})
    client = s3.client()
    client.create_bucket(Bucket="logs-refused")
    settings = for_this_machine(node["settings"], data_dir=tmp_path / "data",
                                endpoint=s3.endpoint, bucket="logs-refused")
    moment = datetime.now(UTC)
    record = LogRecord(body="refused", time_unix_nano=int(moment.timestamp() * 1e9))
    with running(vector, settings, env, tmp_path) as (url, log):
        send_and_fill(url, record, settings["sinks"]["r2_logs"]["batch"]["max_bytes"])
        wait_for(lambda: "SignatureDoesNotMatch" in log.read_text(errors="replace"),
                 "SignatureDoesNotMatch in Vector's log")
    text = log.read_text(errors="replace")
    assert "component_id=r2_logs" in text and "StatusCode(403)" in text
    assert client.list_objects_v2(Bucket="logs-refused").get("KeyCount", 0) == 0


def test_the_otlp_http_source_takes_protobuf_not_json(vector: str, tmp_path: Path) -> None:
    """What a service must send to the node's Vector: OTLP/HTTP protobuf. The pinned
    Vector refuses OTLP/HTTP JSON (HTTP 500, invalid content-type header)."""
    _, _, generated_settings = generated()[0]
    settings = for_this_machine(generated_settings, data_dir=tmp_path / "data",
                                endpoint="http://127.0.0.1:9", bucket="unused")
    for sink in settings["sinks"].values():
        sink["healthcheck"] = {"enabled": False}
    record = LogRecord(body="hello", time_unix_nano=time.time_ns())
    as_json = json.dumps({"resourceLogs": [{"resource": {}, "scopeLogs": [
        {"logRecords": [{"timeUnixNano": str(record.time_unix_nano),
                         "body": {"stringValue": "hello"}}]}]}]}).encode()
    with running(vector, settings, {}, tmp_path) as (url, _log):
        assert post(url, logs_request([record], resource={"service.name": "api"})) == 200
        assert post(url, as_json, "application/json") == 500


def test_a_services_own_records_reach_the_bucket(vector: str, s3: SeaweedS3,
                                                 tmp_path: Path) -> None:
    """The whole path on one machine: the real api service (services/lib's encoder) posts
    its request log to the node's real Vector, which ships it to the S3 server."""
    node = node_vector("prod", "edge-1", tmp_path / "keys")
    env = unit_environment(node, tmp_path / "boot.json", {
        "log_sink_access_key_id": s3.access_key,
        "log_sink_secret_access_key": s3.secret_key})
    client = s3.client()
    client.create_bucket(Bucket="logs-service")
    settings = for_this_machine(node["settings"], data_dir=tmp_path / "data",
                                endpoint=s3.endpoint, bucket="logs-service")
    moment = datetime.now(UTC)
    prefix = moment.strftime(logs_prefix("prod", "edge-1"))
    with running(vector, settings, env, tmp_path) as (url, _log):
        port = free_port()
        service = subprocess.Popen(
            [sys.executable, str(ROOT / "services" / "api" / "app.py")],
            env={"PATH": "/usr/bin:/bin", "PORT": str(port), "BIND": "127.0.0.1",
                 "OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "api",
                 "OTEL_BSP_SCHEDULE_DELAY": "100", "PYTHONPATH": str(ROOT / "services" / "lib")},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _answers(port), "the api service listening")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                assert r.status == 200
        finally:
            service.terminate()  # the service drains its telemetry queue as it stops
            assert service.wait(timeout=WAIT) == 0
        filler = LogRecord(body="filler", time_unix_nano=int(moment.timestamp() * 1e9))
        send_and_fill(url, filler, settings["sinks"]["r2_logs"]["batch"]["max_bytes"])
        objects = wait_for(lambda: client.list_objects_v2(
            Bucket="logs-service", Prefix=prefix).get("Contents"), f"object under {prefix}")
    lines = [json.loads(line) for obj in objects for line in gzip.decompress(
        client.get_object(Bucket="logs-service", Key=obj["Key"])["Body"].read()
    ).decode().splitlines()]
    served = [line for line in lines if line["message"] == "GET /healthz 200"]
    assert served, sorted({line["message"][:40] for line in lines})
    assert served[0]["resources"]["service.name"] == "api"
    assert served[0]["severity_text"] == "INFO"
    assert re.fullmatch(r"[0-9a-f]{32}", served[0]["trace_id"])


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
