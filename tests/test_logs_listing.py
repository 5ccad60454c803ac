"""`edgekit logs sync`'s incremental listing (ADR 0021) against the real SeaweedFS.

A re-sync lists only the recent hour folders of the node folders it listed before; a new node
folder, a state without listing records, `--full` and the daily full listing list everything.
The clock is injected (`sync(now=...)`); keys listed are counted, not timed.
"""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import EndpointConnectionError

from edgekit.cli import main
from edgekit.obs.contract import STATE_FILE, LogsError
from edgekit.obs.listing import (
    FULL_EVERY,
    Listing,
    ListingRecords,
    plan,
    start_after,
    worth_recording,
)
from edgekit.obs.sync import SyncState, sync
from edgekit.obs.testing import SeaweedS3, gzip_ndjson, make_event, object_key

NOW = datetime(2026, 11, 30, 12, 20, tzinfo=UTC)
NODES = ("edge-1", "edge-2")
HOURS = 48
"""One object per node and hour, for the 48 hours before NOW: hours NOW-48h .. NOW-1h."""

_buckets = itertools.count(1)


def body(moment: datetime) -> bytes:
    return gzip_ndjson([make_event(moment, "api", "edge-1", random.Random(3))])


def put(client: Any, bucket: str, node: str, hour: datetime) -> str:
    key = object_key("prod", node, hour, hour + timedelta(minutes=7))
    client.put_object(Bucket=bucket, Key=key, Body=body(hour), ContentEncoding="gzip")
    return key


def hours_back(n: int) -> datetime:
    return NOW.replace(minute=0) - timedelta(hours=n)


@pytest.fixture
def bucket(s3: SeaweedS3) -> str:
    """A bucket holding HOURS objects for each of NODES."""
    name = f"logs-listing-{next(_buckets)}"
    client = s3.client()
    client.create_bucket(Bucket=name)
    jobs = [(node, hours_back(h)) for node in NODES for h in range(1, HOURS + 1)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job: put(client, name, *job), jobs))
    return name


def recent_keys(s3: SeaweedS3, bucket: str, since: datetime) -> int:
    """Keys in the hour folders from `since`'s hour on (what an incremental listing reads),
    counted with botocore's own listing."""
    first = f"date={since:%Y-%m-%d}/hour={since:%H}"
    return sum("/".join(obj["Key"].split("/")[3:5]) >= first
               for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
               for obj in page.get("Contents", []))


@pytest.mark.tools
def test_an_incremental_resync_lists_only_the_recent_hour_folders(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    client = s3.client()
    first = sync(client, bucket, "prod", tmp_path, now=NOW)
    total = len(NODES) * HOURS
    assert first.listing == "full" and first.keys_listed == total
    assert len(first.downloaded) == total

    recorded = (tmp_path / STATE_FILE).read_bytes()
    again = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(minutes=10))
    # floor(NOW - 6 h) = 06:00: the folders 06 .. 11 of each node, one object each.
    assert again.listing == "incremental"
    assert again.keys_listed == len(NODES) * 6 == recent_keys(s3, bucket, NOW - timedelta(hours=6))
    assert again.listed == total and again.held == total and again.downloaded == []
    assert again.ok and again.hours == 7
    assert "re-listed the last 7 hours of each node (12 keys)" in again.summary()
    assert "a full listing runs daily or with --full" in again.summary()
    assert "full listing (96 keys)" in first.summary()
    # Within an hour of the recorded times nothing is rewritten (an older time only widens
    # the next window); later, the records move on.
    assert (tmp_path / STATE_FILE).read_bytes() == recorded
    later = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(hours=2))
    assert later.keys_listed == len(NODES) * 6 and later.hours == 9  # from NOW's window
    assert SyncState(tmp_path).listings == ListingRecords(
        NOW, {f"otel/prod/{node}/": NOW + timedelta(hours=2) for node in NODES})


@pytest.mark.tools
def test_an_object_in_a_recent_folder_is_fetched(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    client = s3.client()
    sync(client, bucket, "prod", tmp_path, now=NOW)
    recent = put(client, bucket, "edge-2", hours_back(1))
    this_hour = put(client, bucket, "edge-1", hours_back(0))
    ahead = put(client, bucket, "edge-1", hours_back(-3))  # a node whose clock runs ahead
    settling = put(client, bucket, "edge-2", hours_back(6))  # the oldest folder re-listed
    again = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(minutes=5))
    assert again.listing == "incremental"
    assert sorted(again.downloaded) == sorted([recent, this_hour, ahead, settling])
    assert all((tmp_path / key).is_file() for key in again.downloaded)


@pytest.mark.tools
def test_a_late_object_in_an_old_folder_needs_a_full_listing(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    """A disk buffer flushed after a long R2 outage writes into old hour folders: the
    incremental listing does not see it; `--full` does, and so does the daily full listing."""
    client = s3.client()
    sync(client, bucket, "prod", tmp_path, now=NOW)
    late = put(client, bucket, "edge-1", hours_back(30))
    just_out = put(client, bucket, "edge-2", hours_back(7))  # one hour before the window
    incremental = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(hours=1))
    assert incremental.listing == "incremental" and incremental.downloaded == []

    forced = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(hours=2), full=True)
    assert forced.listing == "full" and sorted(forced.downloaded) == sorted([late, just_out])

    later = put(client, bucket, "edge-2", hours_back(40))
    last_full = NOW + timedelta(hours=2)
    for since_full in (timedelta(hours=3), timedelta(hours=12),
                       FULL_EVERY - timedelta(minutes=1)):  # within a day: incremental
        again = sync(client, bucket, "prod", tmp_path, now=last_full + since_full)
        assert again.listing == "incremental" and again.downloaded == [], since_full
    daily = sync(client, bucket, "prod", tmp_path, now=last_full + FULL_EVERY)
    assert daily.listing == "full" and daily.downloaded == [later]
    assert SyncState(tmp_path).listings.full == last_full + FULL_EVERY


@pytest.mark.tools
def test_a_new_node_folder_is_listed_fully(s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    client = s3.client()
    sync(client, bucket, "prod", tmp_path, now=NOW)
    new = [put(client, bucket, "tokyo-1", hours_back(h)) for h in (2, 20, 45)]
    again = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(minutes=30))
    assert again.listing == "incremental"
    assert sorted(again.downloaded) == sorted(new)
    assert again.keys_listed == len(NODES) * 6 + len(new)
    records = SyncState(tmp_path).listings
    assert records.nodes["otel/prod/tokyo-1/"] == NOW + timedelta(minutes=30)
    assert records.full == NOW  # the last FULL listing is still the first one


@pytest.mark.tools
@pytest.mark.parametrize("listings", [None, "not a record", {"full": "yesterday"},
                                      {"full": None, "nodes": {"otel/prod/edge-1/": 17}}])
def test_a_state_without_readable_listing_records_leads_to_a_full_listing(
    s3: SeaweedS3, bucket: str, tmp_path: Path, listings: Any
) -> None:
    client = s3.client()
    sync(client, bucket, "prod", tmp_path, now=NOW)
    state = orjson.loads((tmp_path / STATE_FILE).read_bytes())
    assert state["version"] == 1 and set(state) == {"version", "objects", "listings"}
    assert all(set(v) == {"etag"} for v in state["objects"].values())  # as older code reads it
    if listings is None:
        del state["listings"]  # as an older edgekit writes it
    else:
        state["listings"] = listings
    (tmp_path / STATE_FILE).write_bytes(orjson.dumps(state))
    late = put(client, bucket, "edge-1", hours_back(33))
    again = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(minutes=10))
    assert again.listing == "full" and again.keys_listed == len(NODES) * HOURS + 1
    assert again.downloaded == [late]
    assert SyncState(tmp_path).listings.full == NOW + timedelta(minutes=10)


class Refused(Exception):
    pass


@pytest.mark.tools
def test_a_listing_that_fails_midway_records_no_listing_times(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    client = s3.client()
    calls = itertools.count()

    def fail_after_the_first(**_: Any) -> None:
        if next(calls) >= 1:  # the stack folder lists, a node folder does not
            raise EndpointConnectionError(endpoint_url=s3.endpoint)

    client.meta.events.register("before-call.s3.ListObjectsV2", fail_after_the_first)
    with pytest.raises(LogsError, match="cannot reach"):
        sync(client, bucket, "prod", tmp_path / "fresh", now=NOW)
    assert not (tmp_path / "fresh").exists()

    good = s3.client()
    sync(good, bucket, "prod", tmp_path, now=NOW)
    before = (tmp_path / STATE_FILE).read_bytes()
    new = put(good, bucket, "edge-1", hours_back(2))
    calls = itertools.count()
    with pytest.raises(LogsError):
        sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(hours=3))
    assert (tmp_path / STATE_FILE).read_bytes() == before  # still the records of NOW

    # A sync that dies while downloading records no listing either.
    def stop(done: int, total: int, nbytes: int) -> None:
        if done:
            raise Refused

    other = put(good, bucket, "edge-2", hours_back(1))
    with pytest.raises(Refused):
        sync(good, bucket, "prod", tmp_path, now=NOW + timedelta(hours=4), progress=stop,
             workers=1)
    state = SyncState(tmp_path)
    assert state.listings == ListingRecords.from_json(orjson.loads(before)["listings"])
    fetched = {new, other} & set(state.held)
    assert len(fetched) == 1
    resumed = sync(good, bucket, "prod", tmp_path, now=NOW + timedelta(hours=5))
    assert resumed.listing == "incremental"
    assert resumed.downloaded == sorted({new, other} - fetched)
    assert (tmp_path / new).is_file() and (tmp_path / other).is_file()


@pytest.mark.tools
def test_a_node_with_a_bad_object_is_listed_whole_until_it_loads(
    s3: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    """A skipped object is tried again by the next sync, wherever its folder is."""
    client = s3.client()
    bad = object_key("prod", "edge-2", hours_back(30), hours_back(30))
    client.put_object(Bucket=bucket, Key=bad, Body=b"not gzip\n")
    first = sync(client, bucket, "prod", tmp_path, now=NOW)
    assert [s.key for s in first.skipped] == [bad]
    assert set(SyncState(tmp_path).listings.nodes) == {"otel/prod/edge-1/"}
    again = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(minutes=10))
    assert [s.key for s in again.skipped] == [bad]
    assert again.keys_listed == 6 + HOURS + 1  # edge-1 incremental, edge-2 whole
    client.put_object(Bucket=bucket, Key=bad, Body=body(hours_back(30)))
    fixed = sync(client, bucket, "prod", tmp_path, now=NOW + timedelta(minutes=20))
    assert fixed.downloaded == [bad] and fixed.ok
    assert set(SyncState(tmp_path).listings.nodes) == {"otel/prod/edge-1/", "otel/prod/edge-2/"}


@pytest.mark.tools
def test_cli_full_flag(s3: SeaweedS3, bucket: str, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    base = ["logs", "sync", "--stack", "prod", "--bucket", bucket, "--endpoint", s3.endpoint,
            "--dest", "m"]
    assert main(base) == 0
    assert "full listing (96 keys)" in capsys.readouterr().out
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "96 objects, 0 downloaded" in out and "re-listed the last" in out
    late = put(s3.client(), bucket, "edge-1", datetime.now(UTC) - timedelta(days=3))
    assert main(base) == 0
    assert "0 downloaded" in capsys.readouterr().out
    assert main([*base, "--full"]) == 0
    out = capsys.readouterr().out
    assert "1 downloaded" in out and "full listing (97 keys)" in out
    assert (tmp_path / "m" / late).is_file()


def test_sync_help_says_when_to_use_full(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "sync", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--full" in text
    assert "could not reach R2 for more than 6 hours" in text
    assert "a full listing runs once a day or with --full" in text


def test_start_after_is_the_hour_folder_six_hours_back() -> None:
    folder = "otel/prod/edge-1/"
    assert start_after(folder, datetime(2026, 12, 1, 3, 30, tzinfo=UTC)) == \
        "otel/prod/edge-1/date=2026-11-30/hour=21/"
    assert start_after(folder, datetime(2026, 12, 1, 6, 0, tzinfo=UTC)) == \
        "otel/prod/edge-1/date=2026-12-01/hour=00/"
    # its own keys sort after it, earlier hours before it, later days after it
    assert start_after(folder, datetime(2026, 12, 1, 3, 30, tzinfo=UTC)) < \
        "otel/prod/edge-1/date=2026-11-30/hour=21/1-a.log.gz"
    assert "otel/prod/edge-1/date=2026-11-30/hour=20/1-a.log.gz" < \
        "otel/prod/edge-1/date=2026-11-30/hour=21/"


def test_plan_lists_whole_what_it_cannot_trust() -> None:
    a, b, c = "otel/prod/a/", "otel/prod/b/", "otel/prod/c/"
    records = ListingRecords(NOW - timedelta(hours=1),
                             {a: NOW - timedelta(hours=1), b: NOW + timedelta(hours=2)})
    assert plan(records, [a, b, c], NOW, full=False) == {
        a: start_after(a, NOW - timedelta(hours=1)),
        b: "",  # recorded by a clock ahead of ours
        c: "",  # never listed
    }
    assert plan(records, [a], NOW, full=True) == {a: ""}
    assert plan(records, [a], NOW + FULL_EVERY, full=False) == {a: ""}
    assert plan(ListingRecords(None, records.nodes), [a], NOW, full=False) == {a: ""}
    assert plan(ListingRecords(NOW + timedelta(minutes=5), records.nodes), [a], NOW,
                full=False) == {a: ""}
    listing = Listing(("otel/prod/",), NOW, [], {a: start_after(a, NOW), c: ""})
    assert listing.mode == "incremental" and listing.hours() == 7
    assert listing.settled([f"{a}date=2026-11-30/hour=05/x", f"{a}date=2026-11-30/hour=06/x",
                            f"{c}date=2026-11-01/hour=00/x", "otel/prod/stray.log.gz"]) == \
        [f"{a}date=2026-11-30/hour=05/x"]
    after = listing.records(records, [f"{c}date=2026-11-01/hour=00/x"])
    assert after == ListingRecords(records.full, {a: NOW})


def test_records_are_rewritten_only_when_worth_it() -> None:
    a, b = "otel/prod/a/", "otel/prod/b/"
    before = ListingRecords(NOW, {a: NOW, b: NOW})

    def moved(**times: timedelta) -> ListingRecords:
        return ListingRecords(NOW, {f"otel/prod/{k}/": NOW + v for k, v in times.items()})

    assert not worth_recording(before, moved(a=timedelta(minutes=59), b=timedelta(0)))
    assert worth_recording(before, moved(a=timedelta(hours=1), b=timedelta(0)))
    assert worth_recording(before, moved(a=timedelta(minutes=1)))  # b dropped: list it whole
    assert worth_recording(before, moved(a=timedelta(0), b=timedelta(0),
                                         c=timedelta(0)))  # a new folder
    assert worth_recording(before, moved(a=-timedelta(minutes=1), b=timedelta(0)))  # clock back
    assert worth_recording(before, ListingRecords(NOW + timedelta(minutes=1), before.nodes))
