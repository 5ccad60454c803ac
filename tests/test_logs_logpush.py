"""`edgekit logs sync` mirrors Cloudflare's Logpush files where edgekit's jobs put them, checks
each line against the fields the job asks for, and `edgekit logs query` reads them as the views
``logpush_http_requests`` and ``logpush_workers_trace_events`` (issue 26, ADR 0035). Against the
real SeaweedFS (signatures checked); the layout is the synthesized jobs' ``destination_conf``."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edgekit import App
from edgekit.obs.contract import STATE_FILE, parse_key
from edgekit.obs.listing import SETTLE, start_after
from edgekit.obs.logpush import check_record
from edgekit.obs.query import query
from edgekit.obs.sync import KEY_LAYOUTS, sync
from edgekit.obs.testing import (
    SeaweedS3,
    gzip_ndjson,
    http_request,
    logpush_key,
    make_event,
    object_key,
)
from edgekit.testing import synth
from stacks.estate import EstateStack
from tests.test_edge_logs_stack import LOGPUSH, resources, with_edge_logs

START = datetime(2026, 12, 5, 23, 59, 58, 123456, tzinfo=UTC)


def jobs(env_name: str) -> dict[str, dict[str, Any]]:
    """Per dataset, the synthesized Logpush job of environment `env_name`."""
    doc = synth(EstateStack(App(), with_edge_logs(env_name, **LOGPUSH)))
    return {job["dataset"]: job for job in resources(doc, "cloudflare_logpush_job").values()}


def destinations(env_name: str) -> dict[str, tuple[str, str]]:
    """Per dataset, (bucket, key prefix with ``{DATE}``) of the synthesized Logpush job."""
    out = {}
    for dataset, job in jobs(env_name).items():
        url = job["destination_conf"]
        assert url.startswith("r2://")
        bucket, path = url.removeprefix("r2://").split("?", 1)[0].split("/", 1)
        out[dataset] = (bucket, path)
    return out


def files(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}


def put(client: Any, bucket: str, key: str, lines: list[dict[str, Any]]) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=gzip_ndjson(lines))


def requests(start: datetime, count: int) -> list[dict[str, Any]]:
    return [http_request(f"8f{i:014x}", start + timedelta(seconds=i),
                         start + timedelta(seconds=i, microseconds=250_000),
                         host="api.edgekit.test", uri=f"/items/{i}", status=200 + i,
                         colo="AMS") for i in range(count)]


def test_sync_mirrors_the_logpush_files_at_the_jobs_destination_and_queries_them(
        logs_s3: SeaweedS3, tmp_path: Path) -> None:
    wanted = destinations("prod")
    assert set(wanted) == {"http_requests", "workers_trace_events"}
    (bucket,) = {b for b, _ in wanted.values()}
    assert bucket == "edgekit-logs"  # prod's logs bucket, which `logs_s3` holds
    client = logs_s3.client()
    rng = random.Random(26)
    http_prefix = wanted["http_requests"][1]
    assert http_prefix == "edge-logpush/prod/http_requests/{DATE}"
    # a batch either side of midnight: two day folders
    day1, day2 = requests(START, 2), requests(START + timedelta(seconds=3), 3)
    k1 = logpush_key(http_prefix, START, START + timedelta(seconds=1), rng)
    k2 = logpush_key(http_prefix, START + timedelta(seconds=3), START + timedelta(seconds=5), rng)
    assert k1.startswith("edge-logpush/prod/http_requests/20261205/")
    assert k2.startswith("edge-logpush/prod/http_requests/20261206/")
    put(client, bucket, k1, day1)
    put(client, bucket, k2, day2)
    node_key = object_key("prod", "edge-1", START.replace(minute=0, second=0, microsecond=0),
                          START)
    client.put_object(Bucket=bucket, Key=node_key, ContentEncoding="gzip", Body=gzip_ndjson(
        [make_event(START, "api", "edge-1", rng)]))
    # not mirrored: a dataset edgekit has no job for, another stack's files; refused: a key
    # not laid out as a job writes it
    other = ["edge-logpush/prod/firewall_events/20261205/x.log.gz",
             "edge-logpush/staging/http_requests/20261205/x.log.gz"]
    misplaced = "edge-logpush/prod/http_requests/2026-12-05/x.log.gz"
    for key in [*other, misplaced]:
        put(client, bucket, key, day1)

    dest = tmp_path / "mirror"
    report = sync(client, bucket, "prod", dest, now=START + timedelta(hours=1))
    assert sorted(report.downloaded) == sorted([k1, k2, node_key])
    assert [(s.key, s.reason) for s in report.skipped] == [(misplaced, KEY_LAYOUTS)]
    assert files(dest) == {k1, k2, node_key, STATE_FILE}

    cols, rows = query(dest, "select ray_id, timestamp, end_timestamp, status, uri, stack, "
                             "worker_subrequest, parent_ray_id from logpush_http_requests "
                             "order by timestamp")
    assert [r[0] for r in rows] == [x["RayID"] for x in day1 + day2]
    first = dict(zip(cols, rows[0], strict=True))
    assert first["timestamp"] == START and first["end_timestamp"] == START + timedelta(
        microseconds=250_000)  # unix nanoseconds, to the microsecond
    assert (first["status"], first["uri"], first["stack"]) == (200, "/items/0", "prod")
    assert first["worker_subrequest"] is False and first["parent_ray_id"] is None
    # the nodes' view holds the nodes' line only; the other dataset's view is there, empty
    assert query(dest, "select count(*) from logs")[1] == [(1,)]
    assert query(dest, "select count(*) from logpush_workers_trace_events")[1] == [(0,)]

    # a later sync lists a dataset folder from the day folder of (its last listing - SETTLE)
    assert start_after("edge-logpush/prod/http_requests/", START + SETTLE) == \
        "edge-logpush/prod/http_requests/20261205/"
    assert start_after("edge-logpush/prod/http_requests/", START + SETTLE + timedelta(hours=1)) \
        == "edge-logpush/prod/http_requests/20261206/"
    again = sync(client, bucket, "prod", dest, now=START + timedelta(hours=2))
    assert again.downloaded == [] and again.held == 3
    # the bucket's lifecycle deleted the first day: --prune removes it from the mirror
    client.delete_object(Bucket=bucket, Key=k1)
    pruned = sync(client, bucket, "prod", dest, prune=True, now=START + timedelta(days=1))
    assert pruned.pruned == [k1] and files(dest) == {k2, node_key, STATE_FILE}


@pytest.mark.parametrize(("change", "said"), [
    ({"EdgeStartTimestamp": "2026-12-05T23:59:58Z"},
     "EdgeStartTimestamp is not an integer (edgekit's jobs write timestamps as unixnano)"),
    ({"RayID": None}, "RayID is missing (every http_requests line of edgekit's job has it)"),
    ({"WorkerSubrequest": 1}, "WorkerSubrequest is not true or false"),
    ({"EdgeResponseStatus": True}, "EdgeResponseStatus is not an integer"),
])
def test_a_logpush_line_not_as_the_job_writes_it_is_refused(
        s3: SeaweedS3, tmp_path: Path, change: dict[str, Any], said: str) -> None:
    line = {**requests(START, 1)[0], **change}
    assert check_record("http_requests", line) == said
    bucket = f"logpush-bad-{abs(hash(said)) % 10**8}"
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    key = logpush_key("edge-logpush/prod/http_requests/{DATE}", START, START, random.Random(1))
    put(client, bucket, key, [line])
    for verify in (False, True):  # the first line's check and the whole file's
        dest = tmp_path / f"mirror-{verify}"
        report = sync(client, bucket, "prod", dest, verify=verify,
                      now=START + timedelta(hours=1))
        assert [(s.key, s.reason) for s in report.skipped] == [(key, f"line 1: {said}")]
        assert not (dest / key).exists()


def test_a_logpush_key_parses_as_its_stack_dataset_and_day() -> None:
    key = "edge-logpush/prod/workers_trace_events/20261206/20261206T000000Z_x_1.log.gz"
    parsed = parse_key(key)
    assert parsed is not None
    assert (parsed.root, parsed.stack, parsed.node, parsed.date, parsed.hour) == (
        "edge-logpush", "prod", "workers_trace_events", "2026-12-06", "")
    for bad in ("edge-logpush/prod/dns_logs/20261206/x.log.gz",
                "edge-logpush/prod/http_requests/2026120/x.log.gz",
                "edge-logpush/prod/http_requests/20261206/../x.log.gz",
                "edge-logpush/prod/http_requests/20261206/x.json"):
        assert parse_key(bad) is None, bad


def test_the_views_are_there_and_empty_without_logpush_files(tmp_path: Path) -> None:
    for view in ("logpush_http_requests", "logpush_workers_trace_events"):
        assert query(tmp_path, f"select count(*) from {view}")[1] == [(0,)]
