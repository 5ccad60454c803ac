"""One request, edge to service, in one query (issue 26, ADR 0035).

The edge Worker runs in real workerd (Miniflare, services/edge-worker/tools/run-requests.mjs)
in front of the real `api` service; the service's telemetry goes through the node's real Vector
0.45 to SeaweedFS. The Worker's edge records (what its R2 binding stored) are put in the same
bucket, `edgekit logs sync` mirrors both, and `edgekit logs trace <request id>` shows the edge's
line and the service's line, with the same trace id, in time order.

With Logpush (``logs.edge: "logpush"``, ``logs.http_requests: true``) the Worker prints the same
records instead, and Cloudflare writes them (Workers Trace Events) and its own request lines
(HTTP requests) at the jobs' destination. Logpush cannot run here: the test writes those files
as the synthesized jobs would (their destination, fields and timestamp format) from the real
Worker's records and the ray ids it was sent, and everything after that is real.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edgekit.cli import main
from edgekit.obs.query import query
from edgekit.obs.sync import sync
from edgekit.obs.testing import SeaweedS3, gzip_ndjson, http_request, logpush_key, trace_event
from edgekit.obs.trace import trace
from tests.test_edge_worker import OFFLINE, WORKER
from tests.test_logs_logpush import destinations, jobs
from tests.test_vector_delivery import (
    SERVED,
    Service,
    flush,
    node,  # noqa: F401  (fixture)
    vector,  # noqa: F401  (fixture)
    wait_until_shipped,
)

pytestmark = pytest.mark.tools


def run_worker(origin: str, out: Path, ids: list[str],
               rays: list[str] | None = None) -> dict[str, Any]:
    npm_node = shutil.which("node")
    if npm_node is None or not (WORKER / "node_modules").is_dir():
        pytest.fail("the edge Worker needs Node.js and `npm ci` in services/edge-worker")
    args = [npm_node, "tools/run-requests.mjs", "--origin", origin, "--out", str(out),
            "--env", "prod", "--path", "/healthz"]
    for ident in ids:
        args += ["--id", ident]
    for ray in rays or []:
        args += ["--ray", ray]
    done = subprocess.run(args, cwd=WORKER, env={**os.environ, **OFFLINE},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_one_request_edge_to_service_in_one_query(node: Any, s3: SeaweedS3,  # noqa: F811
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    client = s3.client()
    client.create_bucket(Bucket="edge-trace")
    shipper = node(s3, "edge-trace")
    shipper.start()
    service = Service(shipper.url)
    ids = ["req-trace-1", "req-trace-2"]
    summary = run_worker(f"http://127.0.0.1:{service.port}", tmp_path / "edge", ids)
    assert [(r["id"], r["status"], r["request_id"]) for r in summary["requests"]] == [
        (i, 200, i) for i in ids]
    # what the Worker's R2 binding stored goes into the logs bucket as R2 would hold it
    for key in summary["objects"]:
        assert key.startswith("edge/prod/")
        client.put_object(Bucket="edge-trace", Key=key, ContentEncoding="gzip",
                          Body=(tmp_path / "edge" / key).read_bytes())
    service.served = len(ids)
    assert "dropped" not in service.finish()
    flush(shipper)
    wait_until_shipped(s3, "edge-trace", SERVED, len(ids), shipper)

    dest = tmp_path / "mirror"
    report = sync(client, "edge-trace", "prod", dest)
    assert report.ok, report.summary()
    columns, rows = trace(dest, "req-trace-1")
    lines = [dict(zip(columns, row, strict=True)) for row in rows]
    assert [(x["source"], x["service"], x["body"]) for x in lines] == [
        ("edge", "edge-worker", "GET api.edgekit.test/healthz 200"),
        ("otel", "api", SERVED)]
    edge, origin = lines
    assert edge["trace_id"] == origin["trace_id"]  # one trace id from the edge to the service
    assert len(edge["trace_id"]) == 32 and edge["span_id"] != origin["span_id"]
    assert edge["timestamp"] <= origin["timestamp"]
    assert edge["node"] != "edge-1" and origin["node"] == "edge-1"  # the colo, the node
    # by trace id: the same two lines; the other request's trace is another
    assert trace(dest, edge["trace_id"])[1] == rows
    other = trace(dest, "req-trace-2")[1]
    assert len(other) == 2 and other[0][columns.index("trace_id")] != edge["trace_id"]

    code = main(["logs", "trace", "req-trace-1", "--dest", str(dest)])
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[-1] == "(2 rows)"
    assert main(["logs", "trace", "no-such-request", "--dest", str(dest)]) == 1
    assert main(["logs", "trace", "a b", "--dest", str(dest)]) == 2


def logpush_files(records: list[dict[str, Any]], script: str,
                  prefixes: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """What the two Logpush jobs write for the requests the Worker made `records` of: per
    request a Workers Trace Event (holding the record the Worker printed), the client's
    request and the Worker's request to the origin (a subrequest naming the client's ray)."""
    events, requests = [], []
    for record in records:
        attributes = record["attributes"]
        ray = attributes["cf.ray"].split("-")[0]
        start = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(record["observed_timestamp"].replace("Z", "+00:00"))
        events.append(trace_event(record, script, ray))
        host, path, status = (attributes["server.address"], attributes["url.path"],
                              attributes["http.response.status_code"])
        requests.append(http_request(ray, start - timedelta(milliseconds=2),
                                     end + timedelta(milliseconds=1), host=host, uri=path,
                                     status=status, colo=attributes["edge.colo"]))
        requests.append(http_request(f"{int(ray, 16) + 1:016x}", start, end, host="127.0.0.1",
                                     uri=path, status=status, colo=attributes["edge.colo"],
                                     parent=ray, origin_status=status))
    rng = random.Random(26)
    out = {}
    for dataset, lines in (("workers_trace_events", events), ("http_requests", requests)):
        stamps = [line.get("EventTimestampMs", 0) * 1_000_000 or line["EdgeStartTimestamp"]
                  for line in lines]
        first, last = (datetime.fromtimestamp(min(stamps) / 1e9, UTC),
                       datetime.fromtimestamp(max(stamps) / 1e9, UTC))
        out[logpush_key(prefixes[dataset], first, last, rng)] = lines
    return out


def test_cloudflare_logpush_lines_and_the_service_line_of_one_request_in_one_query(
        node: Any, s3: SeaweedS3, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    wanted = destinations("prod")
    assert {b for b, _ in wanted.values()} == {"edgekit-logs"}  # the node's logs bucket
    bucket = "edge-logpush-trace"  # (the harness checks it points the node elsewhere)
    job = jobs("prod")["workers_trace_events"]
    script = json.loads(job["filter"])["where"]["and"][0]["value"]
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    shipper = node(s3, bucket)
    shipper.start()
    service = Service(shipper.url)
    ids, rays = ["req-push-1", "req-push-2"], ["8f2a1b3c4d5e6f70-AMS", "8f2a1b3c4d5e6f90-AMS"]
    summary = run_worker(f"http://127.0.0.1:{service.port}", tmp_path / "edge", ids, rays)
    assert [r["status"] for r in summary["requests"]] == [200, 200]
    records = [json.loads(line) for key in summary["objects"]
               for line in gzip.decompress((tmp_path / "edge" / key).read_bytes()).splitlines()]
    assert sorted(r["attributes"]["cf.ray"] for r in records) == rays
    # in logpush mode these records reach the bucket only inside Logpush's files
    files = logpush_files(records, script, {d: p for d, (_, p) in wanted.items()})
    for key, lines in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=gzip_ndjson(lines))
    service.served = len(ids)
    assert "dropped" not in service.finish()
    flush(shipper)
    wait_until_shipped(s3, bucket, SERVED, len(ids), shipper)

    dest = tmp_path / "mirror"
    report = sync(client, bucket, "prod", dest)
    assert report.ok, report.summary()
    assert set(files) <= set(report.downloaded)

    # one query: Cloudflare's line of the client's request, the Worker's, the service's
    joined = query(dest, """
        select h.ray_id, w.request_id, h.status, l.service, l.body
        from logpush_http_requests h
        join logpush_workers_trace_events w on w.ray_id = h.ray_id
        join logs l on l.trace_id = w.trace_id and l.source = 'otel'
        where not h.worker_subrequest order by w.request_id""")[1]
    assert joined == [(ray.split("-")[0], ident, 200, "api", SERVED)
                      for ray, ident in zip(rays, ids, strict=True)]

    columns, rows = trace(dest, "req-push-1")
    lines = [dict(zip(columns, row, strict=True)) for row in rows]
    assert [(x["source"], x["service"]) for x in lines] == [
        ("http_requests", "cloudflare"), ("workers_trace_events", script),
        ("http_requests", "cloudflare"), ("otel", "api")]
    client_line, worker, subrequest, origin = lines
    assert client_line["body"] == "GET api.edgekit.test/healthz 200"
    assert subrequest["body"] == "GET 127.0.0.1/healthz 200 (Worker subrequest)"
    assert worker["body"] == "GET api.edgekit.test/healthz 200"  # the record's message
    assert worker["trace_id"] == origin["trace_id"] and len(origin["trace_id"]) == 32
    assert [x["timestamp"] for x in lines] == sorted(x["timestamp"] for x in lines)
    # by trace id: the same lines; the other request's are others
    assert trace(dest, origin["trace_id"])[1] == rows
    other = trace(dest, "req-push-2")[1]
    assert len(other) == 4 and not set(other) & set(rows)

    assert main(["logs", "trace", "req-push-1", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "(4 rows)" and "workers_trace_events" in out
