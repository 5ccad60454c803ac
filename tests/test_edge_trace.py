"""One request, edge to service, in one query (issue 26, ADR 0035).

The edge Worker runs in real workerd (Miniflare, services/edge-worker/tools/run-requests.mjs)
in front of the real `api` service; the service's telemetry goes through the node's real Vector
0.45 to SeaweedFS. The Worker's edge records (what its R2 binding stored) are put in the same
bucket, `edgekit logs sync` mirrors both, and `edgekit logs trace <request id>` shows the edge's
line and the service's line, with the same trace id, in time order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edgekit.cli import main
from edgekit.obs.sync import sync
from edgekit.obs.testing import SeaweedS3
from edgekit.obs.trace import trace
from tests.test_edge_worker import OFFLINE, WORKER
from tests.test_vector_delivery import (
    SERVED,
    Service,
    flush,
    node,  # noqa: F401  (fixture)
    vector,  # noqa: F401  (fixture)
    wait_until_shipped,
)

pytestmark = pytest.mark.tools


def run_worker(origin: str, out: Path, ids: list[str]) -> dict[str, Any]:
    npm_node = shutil.which("node")
    if npm_node is None or not (WORKER / "node_modules").is_dir():
        pytest.fail("the edge Worker needs Node.js and `npm ci` in services/edge-worker")
    args = [npm_node, "tools/run-requests.mjs", "--origin", origin, "--out", str(out),
            "--env", "prod", "--path", "/healthz"]
    for ident in ids:
        args += ["--id", ident]
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
