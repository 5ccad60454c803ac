"""`edgekit logs` as part of the operating commands: the stack's sink comes from its CUE
export, a stack without one is an error, an empty prefix is never silent, and queries over
the mirror are read-only."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.obs.contract import LogsError
from edgekit.obs.query import check_read_only, query
from edgekit.obs.testing import SeaweedS3, gzip_ndjson, upload, vector_objects

ROOT = Path(__file__).resolve().parent.parent


def sync_args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"stack": "staging", "bucket": None, "endpoint": None,
                               "dest": None, "profile": None}
    base.update(kw)
    return argparse.Namespace(**base)


def test_sink_comes_from_the_stacks_cue_export(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgekit.cue.model import Estate
    from edgekit.obs.cli import resolve_sink

    monkeypatch.delenv("EDGEKIT_R2_ENDPOINT", raising=False)
    monkeypatch.setenv("EDGEKIT_LOGS_BUCKET", "edgekit-logs")  # ignored with a CUE project
    for stack in ("staging", "prod"):
        side = Estate.load(ROOT, stack, check_fresh=False).env.cloudflare
        bucket, endpoint = resolve_sink(sync_args(stack=stack), ROOT)
        assert bucket == side.logs_bucket
        assert endpoint == f"https://{side.account_id}.r2.cloudflarestorage.com"
    assert resolve_sink(sync_args(), ROOT)[0] == "edgekit-logs-staging"
    assert resolve_sink(sync_args(bucket="other", endpoint="http://127.0.0.1:1"), ROOT) == (
        "other", "http://127.0.0.1:1")


def test_a_stack_without_a_log_sink_is_an_error(project_cwd: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["logs", "sync", "--stack", "example"])
    assert code == 1
    err = capsys.readouterr().err
    assert "stack 'example' has no log sink" in err
    assert "environments: prod, staging" in err


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    s3 = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield s3
    finally:
        s3.stop()


@pytest.mark.tools
def test_zero_objects_is_never_silent(server: SeaweedS3, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client = server.client()
    client.create_bucket(Bucket="logs-zero")
    objects = vector_objects(stacks=["prod"], nodes=["edge-1"], services=["api"],
                             start=datetime(2026, 11, 29, tzinfo=UTC), hours=1,
                             objects_per_hour=2, events_per_object=3)
    upload(client, "logs-zero", {k: gzip_ndjson(v) for k, v in objects.items()})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    base = ["logs", "sync", "--bucket", "logs-zero", "--endpoint", server.endpoint]
    assert main([*base, "--stack", "staging", "--dest", "s"]) == 1
    err = capsys.readouterr().err
    assert "no objects under s3://logs-zero/otel/staging/" in err
    assert "the bucket holds otel/prod/: is --stack or the bucket wrong?" in err
    assert main([*base, "--stack", "prod", "--dest", "p"]) == 0
    out = capsys.readouterr().out
    assert "2 objects, 2 downloaded" in out
    client.create_bucket(Bucket="logs-empty")
    assert main(["logs", "sync", "--bucket", "logs-empty", "--endpoint", server.endpoint,
                 "--stack", "prod", "--dest", "e"]) == 1
    assert "have the nodes shipped any logs yet?" in capsys.readouterr().err


@pytest.mark.parametrize("sql", [
    "COPY (SELECT * FROM logs) TO '/tmp/edgekit-leak.csv'",
    "ATTACH '/tmp/edgekit-other.db'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE TABLE t AS SELECT * FROM logs",
    "SELECT 1; DROP VIEW logs",
    "PRAGMA version",
])
def test_queries_are_read_only(sql: str, tmp_path: Path) -> None:
    with pytest.raises(LogsError, match="read-only"):
        check_read_only(sql)
    with pytest.raises(LogsError, match="read-only"):
        query(tmp_path, sql)
    assert not Path("/tmp/edgekit-leak.csv").exists()


def test_reads_are_allowed(tmp_path: Path) -> None:
    for sql in ("SELECT 1", "WITH a AS (SELECT 1 AS x) SELECT x FROM a", "FROM logs",
                "DESCRIBE logs", "EXPLAIN SELECT 1"):
        check_read_only(sql)
    assert query(tmp_path, "SELECT 41 + 1 AS n") == (["n"], [(42,)])
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.tools
def test_listing_pages_folders_and_odd_keys(server: SeaweedS3, tmp_path: Path) -> None:
    """The fast listing (ElementTree in botocore's before-parse hook, folders in parallel)
    sees every key exactly once, across pages, with URL-encoded keys decoded."""
    from concurrent.futures import ThreadPoolExecutor

    from edgekit.obs.listing import list_objects
    from edgekit.obs.sync import sync

    client = server.client()
    client.create_bucket(Bucket="logs-list")
    body = gzip_ndjson(next(iter(vector_objects(
        stacks=["prod"], nodes=["edge-1"], services=["api"],
        start=datetime(2026, 11, 29, tzinfo=UTC), hours=1, objects_per_hour=1,
        events_per_object=1).values())))
    keys = [f"otel/prod/edge-{i % 2}/date=2026-11-29/hour=00/{i:05d}-x.log.gz"
            for i in range(2100)]  # edge-0 holds 1050 keys: two pages
    odd = "otel/prod/edge-1/date=2026-11-29/hour=00/a b+c%d ü&<x>.log.gz"
    top = "otel/prod/stray.log.gz"
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket="logs-list", Key=k, Body=body),
                      [*keys, odd, top]))
    listed = list(list_objects(client, "logs-list", "otel/prod/"))
    assert sorted(i.key for i in listed) == sorted([*keys, odd, top])
    assert all(i.size == len(body) and i.etag for i in listed)
    report = sync(client, "logs-list", "prod", tmp_path / "m")
    assert report.listed == len(keys) + 2 and len(report.downloaded) == len(keys)
    assert {s.key for s in report.skipped} == {top, odd}  # named exactly, decoded
    again = sync(client, "logs-list", "prod", tmp_path / "m")
    assert again.held == len(keys) and again.downloaded == []


def test_streamed_check_matches_the_whole_object_check() -> None:
    """Fed in pieces of any size, the streaming check finds what validate_object finds."""
    import gzip as gz

    from edgekit.obs.checks import GunzipCheck, validate_object

    good = b'{"timestamp": "2026-11-29T08:00:00Z", "severity_number": 9}\n'
    cases = {
        "ok": gz.compress(good * 50),
        "two members": gz.compress(good * 3) + gz.compress(good * 2),
        "bad line 3": gz.compress(good * 2 + b'{"severity_number": true}\n' + good),
        "not json 2": gz.compress(good + b'{"mess\n' + good),
        "truncated": gz.compress(good * 200)[:-9],
        "not gzip": b"plain text\n",
        "empty": b"",
    }
    for name, data in cases.items():
        whole = validate_object(data)
        for size in (1, 7, 4096):
            check = GunzipCheck()
            for i in range(0, len(data), size):
                check.feed(data[i:i + size])
            streamed = check.finish()
            assert (streamed is None) == (whole is None), (name, size, streamed, whole)
            if whole is not None and whole.startswith("line"):
                assert streamed == whole, (name, size)
            if whole is not None and not whole.startswith("line"):
                assert streamed is not None and streamed.startswith("not a gzip stream")
