"""When the node's Vector disk buffer is full (issue 26, ADR 0036): the real Vector 0.45.0 with
the node's generated configuration, the real `api` service sending, SeaweedFS as R2.

The node's buffer is already the smallest Vector allows (`DISK_BUFFER_BYTES`: a byte less and
Vector does not start, asserted below), and Vector blocks once it holds `BUFFER_HOLDS_BYTES`
not yet shipped. So the test fills it for real: the S3 server is stopped, filler records are
posted straight to Vector until it stops answering, and the server stays down while the
service keeps serving requests until it has had to drop log records. What the node's
configuration promises then (``when_full = "block"``) is asserted:

- Vector stops answering posts (a post is not answered within the services' timeout); it
  answers again once the server is back and the buffer drains;
- the node's disk use for Vector (its data directory) never exceeds the buffer's ``max_size``;
- every request line the service logged is either in the bucket (and counted once by
  ``edgekit logs``) or counted as dropped by the service, which keeps the newest 2,048 records
  of each kind and says on stderr that it drops, when it starts;
- Vector's log says why it cannot ship (``Retrying after error`` for the logs sink), and keeps
  saying so while it is full.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edgekit.obs.query import query
from edgekit.obs.sync import sync
from edgekit.obs.testing import SeaweedS3
from edgekit.obs.vector import BUFFER_HOLDS_BYTES, DISK_BUFFER_BYTES
from tests.otlp_proto import CONTENT_TYPE, LogRecord, logs_request
from tests.test_vector_delivery import (
    SERVED,
    Service,
    disk_use,
    node,  # noqa: F401  (fixture)
    vector,  # noqa: F401  (fixture)
)
from tests.test_vector_real import for_this_machine, generated

pytestmark = pytest.mark.tools

FILLER = "buffer-filler"
FILLER_RECORD = "f" * 60_000
"""About 60 kB a record, 3 MB a post: fills the buffer in seconds; gzip makes it tiny in R2."""
POST_TIMEOUT = 5.0
"""The services' own timeout for a post to Vector (services/lib/edgekit_service.py)."""
CAPACITY = 2048
"""Records of a kind a service keeps when Vector does not take them."""
FULL_AT_LEAST = 30.0
"""Seconds the buffer stays full at least: three capped retry rounds of the sink."""
WAIT = 240.0


def post(url: str, body: bytes, timeout: float = POST_TIMEOUT) -> int | None:
    """The HTTP status of a logs post, or None when Vector did not answer in time."""
    request = urllib.request.Request(f"{url}/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": CONTENT_TYPE})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read()
            status: int = reply.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except TimeoutError:
        return None


def filler(count: int, tag: str = FILLER) -> bytes:
    now = time.time_ns()
    return logs_request([LogRecord(body=f"{tag} {i} {FILLER_RECORD}", time_unix_nano=now)
                         for i in range(count)], resource={"service.name": "filler"})


class Bucket:
    """The service's request lines in the bucket, each object read once (the filler makes
    the bucket's JSON large: its lines are skipped unparsed)."""

    def __init__(self, s3: SeaweedS3, bucket: str) -> None:
        self.client, self.bucket = s3.client(), bucket
        self.read: dict[str, list[dict[str, Any]]] = {}

    def lines(self) -> list[dict[str, Any]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix="otel/prod/edge-1/"):
            for item in page.get("Contents", []):
                if item["Key"] in self.read:
                    continue
                body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                self.read[item["Key"]] = [
                    json.loads(line) for line in gzip.decompress(body).splitlines()
                    if FILLER.encode() not in line]
        return [line for lines in self.read.values() for line in lines]


def cancelled(log: str) -> list[str]:
    """Vector's lines saying a post to its OTLP/HTTP logs endpoint gave up while waiting to
    enter the (full) buffer: those events were never acknowledged, the sender keeps them."""
    return [line for line in log.splitlines()
            if "component_id=otel" in line and "path=/v1/logs" in line
            and "Events dropped" in line and 'reason="Source send cancelled."' in line]


def dropped_counts(stderr: str) -> tuple[int, int, int]:
    """(log records, spans) the service said it dropped at exit, and how many it still held."""
    found = re.findall(r"telemetry: (\d+) log record\(s\) and (\d+) span\(s\) dropped "
                       r"\(more than \d+ waited\), (\d+) not accepted", stderr)
    if not found:
        return 0, 0, 0
    logs, spans, waiting = found[-1]
    return int(logs), int(spans), int(waiting)


def test_a_smaller_disk_buffer_than_the_nodes_is_refused_by_vector(vector: str,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """The node's buffer is Vector's smallest: the buffer-full test cannot use a smaller
    one, and a Vector that allowed one would show here."""
    _, _, settings = generated()[0]
    assert settings["sinks"]["r2_logs"]["buffer"]["max_size"] == DISK_BUFFER_BYTES
    smaller = for_this_machine(settings, data_dir=tmp_path / "data",
                               endpoint="http://127.0.0.1:9", bucket="unused")
    smaller["sinks"]["r2_logs"]["buffer"]["max_size"] = DISK_BUFFER_BYTES - 1
    config = tmp_path / "smaller.json"
    config.write_text(json.dumps(smaller))
    (tmp_path / "data").mkdir()
    # `vector validate` does not build buffers: only a start does.
    done = subprocess.run([vector, "--config", str(config)], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode != 0
    assert f"must be greater than or equal to {DISK_BUFFER_BYTES} bytes" in done.stdout + \
        done.stderr


class Disk:
    """The largest size seen of Vector's data directory (both sinks' buffers and ledgers)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.biggest = folder, 0

    def look(self) -> None:
        self.biggest = max(self.biggest, disk_use(self.folder))


def fill_until_blocked(url: str, disk: Disk) -> int:
    """Post filler until Vector stops answering (the buffer holds what it may); the number of
    posts it answered."""
    answered = 0
    while (status := post(url, filler(50))) == 200:
        answered += 1
        disk.look()
        assert answered * 3_000_000 < 2 * DISK_BUFFER_BYTES, "the buffer never filled"
    assert status is None  # not refused, not an error: the post waits (block)
    return answered


def ship_everything(url: str, shipped: Bucket) -> list[dict[str, Any]]:
    """A marker, then a batch's worth of filler so the sink sends: everything Vector took
    before the marker is in the bucket once the marker is (one sink, one ordered buffer)."""
    marker = f"last {time.time_ns()}"
    assert post(url, logs_request([LogRecord(body=marker, time_unix_nano=time.time_ns())],
                                  resource={"service.name": "marker"})) == 200
    for _ in range(4):  # 12 MB: more than the sink's 10 MB batch
        assert post(url, filler(50, f"{FILLER} tail")) == 200
    deadline = time.monotonic() + WAIT
    while not any(line["message"] == marker for line in shipped.lines()):
        assert time.monotonic() < deadline, "the marker never reached the bucket"
        time.sleep(1)
    return shipped.lines()


def test_a_full_disk_buffer_blocks_keeps_the_disk_bounded_and_loses_only_what_is_counted(
        node: Any, tmp_path: Path) -> None:  # noqa: F811
    s3 = SeaweedS3.start(tmp_path / "weed")
    bucket, service = "buffer-full", None
    try:
        s3.client().create_bucket(Bucket=bucket)
        vector = node(s3, bucket)
        disk = Disk(Path(vector.settings["data_dir"]))
        vector.start()
        service = Service(vector.url, pause=0.002)
        service.keep_sending()
        service.wait_served(50)
        s3.proc.terminate()
        s3.proc.wait(timeout=30)
        before = len(vector.log_text())

        started = time.monotonic()
        answered = fill_until_blocked(vector.url, disk)
        full_at, served_at_full = time.monotonic(), service.served
        # Full: the service keeps serving, its log posts are not answered, it keeps the newest
        # CAPACITY records and drops older ones; the disk stays within the buffer's bound; and
        # Vector says that a post could not enter the buffer.
        while (time.monotonic() - full_at < FULL_AT_LEAST
               or service.served - served_at_full < CAPACITY + 1024
               or not cancelled(vector.log_text()[before:])):
            assert time.monotonic() - full_at < WAIT, vector.log_text()[before:][-3000:]
            disk.look()
            time.sleep(0.5)
        assert post(vector.url, filler(1, "probe"), timeout=2) is None  # still full
        during = vector.log_text()[before:]

        s3.restart()
        back_at = time.monotonic()
        while post(vector.url, filler(1, "probe"), timeout=2) != 200:
            assert time.monotonic() - back_at < WAIT, vector.log_text()[-3000:]
            disk.look()
        drained = time.monotonic() - back_at
        service.wait_served(service.served + 50)
        err = service.finish()
        lines = ship_everything(vector.url, Bucket(s3, bucket))
        report = sync(s3.client(), bucket, "prod", tmp_path / "mirror")
    finally:
        if service is not None and service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait(timeout=30)
        s3.stop()

    served = service.served
    dropped_logs, dropped_spans, waiting = dropped_counts(err)
    uids = {line["attributes"]["log.record.uid"] for line in lines if line["message"] == SERVED}
    print(f"filled {answered} posts in {full_at - started:.1f} s, full "
          f"{back_at - full_at:.0f} s, answering again {drained:.1f} s after the server "
          f"returned; data dir at most {disk.biggest} B; served {served}, dropped "
          f"{dropped_logs} log records and {dropped_spans} spans, delivered {len(uids)} "
          f"({sum(line['message'] == SERVED for line in lines)} lines)")
    assert disk.biggest <= DISK_BUFFER_BYTES  # the node's bound, whatever was posted
    assert disk.biggest >= BUFFER_HOLDS_BYTES - 2 * 3_000_000  # it was full: within a post
    assert waiting == 0, err  # at exit the service held nothing Vector had not taken
    assert dropped_logs > 0, err  # the outage outlasted what the service keeps
    assert f"is not accepting telemetry; keeping the newest {CAPACITY} of each kind" in err

    assert served - dropped_logs <= len(uids) <= served  # each line delivered, or counted
    assert report.ok, report.summary()
    (rows,), = query(tmp_path / "mirror", "select count(*) from logs where body = ?", [SERVED])[1]
    assert rows == len(uids)  # each delivered record once, duplicates or not

    retried = [line for line in during.splitlines()
               if "component_id=r2_logs" in line and "Retrying after error" in line]
    assert retried and cancelled(during), during[-3000:]
