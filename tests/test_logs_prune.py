"""`edgekit logs sync` mirrors the nodes' and the edge's objects and nothing else of the logs
bucket; `--prune` removes from the mirror what the bucket no longer holds, and never anything
else (issue 26, ADR 0037). Against the real SeaweedFS (signatures checked)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.obs.contract import STATE_FILE, LogsError
from edgekit.obs.sync import SyncState, sync
from edgekit.obs.testing import SeaweedS3, gzip_ndjson, make_event, object_key

pytestmark = pytest.mark.tools

START = datetime(2026, 11, 29, 6, tzinfo=UTC)


def put(client: object, bucket: str, key: str, service: str = "api") -> None:
    body = gzip_ndjson([make_event(START, service, "edge-1", random.Random(key))])
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentEncoding="gzip")  # type: ignore[attr-defined]


def keys(root: str, node: str, hours: int) -> list[str]:
    return [object_key("prod", node, START + timedelta(hours=h),
                       START + timedelta(hours=h, minutes=5)).replace("otel/", f"{root}/", 1)
            for h in range(hours)]


def files(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}


@pytest.fixture
def bucket(s3: SeaweedS3, request: pytest.FixtureRequest) -> str:
    name = f"prune-{request.node.name[:30].replace('_', '-').lower()}"
    s3.client().create_bucket(Bucket=name)
    return name


def test_sync_mirrors_node_and_edge_objects_and_never_the_nodes_keys_or_traces(
        s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    client = s3.client()
    node, edge = keys("otel", "edge-1", 3), keys("edge", "NRT", 2)
    for key in node:
        put(client, bucket, key)
    for key in edge:
        put(client, bucket, key, service="edge-worker")
    others = ["status/prod/edge-1.json", "mesh/prod/edge-1.pub", "pg-tls/prod/pg-tokyo.crt",
              "traces/prod/edge-1/date=2026-11-29/hour=06/1-x.log.gz",
              "edge-logpush/prod/workers/20261129/x.log.gz"]
    for key in others:
        client.put_object(Bucket=bucket, Key=key, Body=b"{}")
    dest = tmp_path / "mirror"
    report = sync(client, bucket, "prod", dest, now=START + timedelta(days=1))
    assert report.ok, report.summary()
    assert sorted(report.downloaded) == sorted(node + edge)
    assert files(dest) == set(node + edge) | {STATE_FILE}
    from edgekit.obs.query import query

    assert query(dest, "select source, node, service, count(*) from logs group by all "
                       "order by all")[1] == [("edge", "NRT", "edge-worker", 2),
                                             ("otel", "edge-1", "api", 3)]


def test_prune_removes_what_the_bucket_no_longer_holds_and_nothing_else(
        s3: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    client = s3.client()
    node, edge = keys("otel", "edge-1", 4), keys("edge", "NRT", 2)
    for key in node + edge:
        put(client, bucket, key, service="edge-worker" if key.startswith("edge/") else "api")
    dest = tmp_path / "mirror"
    assert sync(client, bucket, "prod", dest, now=START + timedelta(days=1)).ok
    # what the operator keeps in the mirror folder beside the synced files
    mine = dest / "otel" / "prod" / "edge-1" / "notes.txt"
    mine.write_text("mine")
    own_log = dest / "otel" / "prod" / "edge-9" / "date=2026-11-29" / "hour=06" / "1-a.log.gz"
    own_log.parent.mkdir(parents=True)
    own_log.write_bytes(b"not from the bucket")
    # the lifecycle rule deletes the oldest objects
    expired = [node[0], node[1], edge[0]]
    for key in expired:
        client.delete_object(Bucket=bucket, Key=key)

    plain = sync(client, bucket, "prod", dest, now=START + timedelta(days=1, hours=1))
    assert plain.pruned == [] and all((dest / k).is_file() for k in expired)

    pruned = sync(client, bucket, "prod", dest, prune=True,
                  now=START + timedelta(days=1, hours=2))
    assert sorted(pruned.pruned) == sorted(expired)
    assert "--prune removed 3 file(s)" in pruned.summary()
    assert files(dest) == (set(node + edge) - set(expired)) | {
        STATE_FILE, mine.relative_to(dest).as_posix(), own_log.relative_to(dest).as_posix()}
    assert not (dest / expired[2]).parent.exists()  # the emptied hour folder went too
    assert set(SyncState(dest).held) == set(node + edge) - set(expired)
    # pruning again removes nothing more
    assert sync(client, bucket, "prod", dest, prune=True,
                now=START + timedelta(days=1, hours=3)).pruned == []


def test_prune_refuses_to_empty_the_mirror_from_an_empty_listing(
        s3: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    client = s3.client()
    node = keys("otel", "edge-1", 2)
    for key in node:
        put(client, bucket, key)
    dest = tmp_path / "mirror"
    assert sync(client, bucket, "prod", dest, now=START + timedelta(days=1)).ok
    client.create_bucket(Bucket=f"{bucket}-empty")
    with pytest.raises(LogsError, match="refusing to prune them all"):
        sync(client, f"{bucket}-empty", "prod", dest, prune=True,
             now=START + timedelta(days=1, hours=1))
    assert files(dest) == set(node) | {STATE_FILE}

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    monkeypatch.setenv("EDGEKIT_R2_ENDPOINT", s3.endpoint)
    monkeypatch.chdir(tmp_path)
    code = main(["logs", "sync", "--stack", "prod", "--bucket", f"{bucket}-empty",
                 "--dest", str(dest), "--prune"])
    assert code == 1 and "refusing to prune" in capsys.readouterr().err
    assert files(dest) == set(node) | {STATE_FILE}
