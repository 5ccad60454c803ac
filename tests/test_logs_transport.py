"""The sync's download path: presigned GETs over kept-alive connections (edgekit.obs.transport)
and the fetcher on top (edgekit.obs.fetch).

Signatures and refusals run against the real SeaweedFS (it checks SigV4). Retries and broken
connections need a server that misbehaves on purpose: a small in-process HTTP server on
127.0.0.1 scripted per test (a unit test of our retry code, not a stand-in for S3).
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from edgekit.core.files import publish, sync_filesystem
from edgekit.obs import transport
from edgekit.obs.contract import LogsError
from edgekit.obs.fetch import Fetcher
from edgekit.obs.listing import Listed
from edgekit.obs.sync import client_config, sync
from edgekit.obs.testing import SeaweedS3
from edgekit.obs.transport import Presigner, Transport

Handler = Callable[[http.server.BaseHTTPRequestHandler, int], None]
"""Answers the n-th request (1-based)."""


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Handler], str]]:
    """Start a loopback HTTP server whose answers a test scripts; yields its start function,
    which returns the server's base URL. No backoff sleeps (the count of attempts is what is
    tested)."""
    monkeypatch.setattr(transport, "BACKOFF", 0.0)
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        count = [0]
        lock = threading.Lock()

        class Scripted(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with lock:
                    count[0] += 1
                    n = count[0]
                handle(self, n)

            def log_message(self, *_: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def answer(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes,
           length: int | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)
    handler.wfile.flush()


def test_busy_answers_are_retried_then_returned(scripted: Callable[[Handler], str]) -> None:
    def handle(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        answer(h, 503 if n < 3 else 200, b"busy" if n < 3 else b"the body")

    t = Transport(scripted(handle))
    response = t.get(t.endpoint + "/b/k?X-Amz-Signature=x")
    assert (response.status, response.read()) == (200, b"the body")

    always = Transport(scripted(lambda h, n: answer(h, 500, b"<Error><Code>InternalError"
                                                          b"</Code></Error>")))
    last = always.get(always.endpoint + "/b/k")
    assert last.status == 500  # after ATTEMPTS tries the caller gets the refusal to report


def test_a_closed_connection_is_reopened(scripted: Callable[[Handler], str]) -> None:
    def handle(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            h.close_connection = True
            h.connection.close()  # no answer at all
            return
        answer(h, 200, b"ok")

    t = Transport(scripted(handle))
    assert t.get(t.endpoint + "/b/k").read() == b"ok"

    def never(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        h.close_connection = True
        h.connection.close()

    dead = Transport(scripted(never))
    with pytest.raises(EndpointConnectionError):
        dead.get(dead.endpoint + "/b/k")


def test_a_body_cut_short_is_read_again_from_the_start(
    scripted: Callable[[Handler], str], s3: SeaweedS3, tmp_path: Path,
) -> None:
    body = gzip.compress(b'{"timestamp": "2026-11-29T08:00:00Z"}\n' * 200)
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()

    def handle(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:  # promises the whole body, sends 40 bytes, hangs up
            answer(h, 200, body[:40], length=len(body))
            h.close_connection = True
            h.connection.close()
            return
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("ETag", f'"{etag}"')
        h.end_headers()
        h.wfile.write(body)

    client = s3.client()
    fetcher = Fetcher(client, "b")
    fetcher.transport = Transport(scripted(handle))
    key = "otel/prod/edge-1/date=2026-11-29/hour=08/1-a.log.gz"
    staged = fetcher.fetch(Listed(key, etag, len(body)), tmp_path)
    assert staged.problem is None and staged.tmp is not None
    assert staged.tmp.read_bytes() == body

    def cut(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        answer(h, 200, body[:40], length=len(body))
        h.close_connection = True
        h.connection.close()

    fetcher.transport = Transport(scripted(cut))
    with pytest.raises(EndpointConnectionError):
        fetcher.fetch(Listed(key, etag, len(body)), tmp_path)
    assert not [p for p in tmp_path.rglob("*.tmp") if p != staged.tmp]  # nothing half-written


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8333", "http://localhost:80",
                                      "https://abc123.r2.cloudflarestorage.com"])
@pytest.mark.parametrize("token", [None, "session/to+ken="])
def test_presigned_urls_are_botocores_byte_for_byte(
    endpoint: str, token: str | None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Our SigV4 query signing gives exactly the URL botocore's presign gives (same moment):
    keys with spaces, plus, tilde, '=' and non-ASCII; default and other ports; a session
    token; a secret with '/' and '+'."""
    moment = datetime(2026, 11, 30, 18, 0, 5)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="wJalr/XUtnFEMI+K7MDENG", aws_session_token=token,
                          config=client_config(max_attempts=1, pool=1))
    presigner = Presigner(client, "edgekit-logs")
    assert presigner.frozen is not None  # the fast path, not the fallback
    for key in ("otel/prod/edge-1/date=2026-11-29/hour=08/1796018400-0b6c.log.gz",
                "odd/a key with spaces+plus=eq~tilde/ü.gz"):
        theirs = client.generate_presigned_url(
            "get_object", Params={"Bucket": "edgekit-logs", "Key": key}, ExpiresIn=900)
        assert presigner.url(key, now=moment.replace(tzinfo=UTC)) == theirs, key


@pytest.mark.tools
def test_presigned_urls_are_accepted_by_a_server_that_checks_signatures(s3: SeaweedS3) -> None:
    client = s3.client()
    client.create_bucket(Bucket="presign")
    keys = ["otel/prod/edge-1/date=2026-11-29/hour=08/1796018400-0b6c.log.gz",
            "odd/a key with spaces+plus=eq~tilde/ü.gz"]
    for key in keys:
        client.put_object(Bucket="presign", Key=key, Body=key.encode())
    presigner, t = Presigner(client, "presign"), Transport(s3.endpoint)
    for key in keys:
        response = t.get(presigner.url(key))
        assert (response.status, response.read()) == (200, key.encode()), key

    wrong = s3.client(secret_key="not-the-secret")
    refused = t.get(Presigner(wrong, "presign").url(keys[0]))
    assert refused.status == 403
    refused.read()
    with pytest.raises(ClientError) as info:
        Fetcher(wrong, "presign").fetch(Listed(keys[0], "", 0), Path("/nonexistent"))
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


@pytest.mark.tools
def test_a_fetch_refused_after_listing_is_a_clear_error(
    s3: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listing passes, the GETs are refused (keys revoked mid-sync): LogsError naming the
    credentials, no traceback, nothing recorded."""
    client = s3.client()
    client.create_bucket(Bucket="revoked")
    key = "otel/prod/edge-1/date=2026-11-29/hour=08/1796018400-a.log.gz"
    client.put_object(Bucket="revoked", Key=key,
                      Body=gzip.compress(b'{"timestamp": "2026-11-29T08:00:00Z"}\n'))
    wrong = s3.client(secret_key="not-the-secret")
    real_init = Presigner.__init__

    def revoked(self: Presigner, _client: object, bucket: str) -> None:
        real_init(self, wrong, bucket)

    monkeypatch.setattr(Presigner, "__init__", revoked)
    with pytest.raises(LogsError, match="credentials were refused") as info:
        sync(client, "revoked", "prod", tmp_path / "mirror")
    assert "SignatureDoesNotMatch" in str(info.value)
    assert not (tmp_path / "mirror" / key).exists()


@pytest.mark.tools
@pytest.mark.parametrize("has_syncfs", [True, False])
def test_downloads_reach_the_disk_before_they_are_put_in_place(
    has_syncfs: bool, s3: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With syncfs: one per batch of PUT_IN_PLACE_BATCH files, and every rename after the
    syncfs that covers it; without: an fdatasync per file. Either way a file is on disk
    before it is renamed into place and recorded."""
    from edgekit.obs import sync as sync_module

    client = s3.client()
    bucket = f"durable-{has_syncfs}".lower()
    client.create_bucket(Bucket=bucket)
    count = sync_module.PUT_IN_PLACE_BATCH + 5
    body = gzip.compress(b'{"timestamp": "2026-11-29T08:00:00Z"}\n')
    for i in range(count):
        client.put_object(Bucket=bucket, Body=body,
                          Key=f"otel/prod/edge-1/date=2026-11-29/hour=08/{1796018400 + i}-a.log.gz")
    events: list[str] = []
    real_publish, real_syncfs, real_fdatasync = publish, sync_filesystem, os.fdatasync

    def noted_syncfs(path: Path) -> None:
        events.append("syncfs")
        real_syncfs(path)

    def noted_publish(tmp: Path, path: Path) -> None:
        events.append("rename")
        real_publish(tmp, path)

    def noted_fdatasync(fd: int) -> None:
        events.append("fdatasync")
        real_fdatasync(fd)

    monkeypatch.setattr("edgekit.obs.sync.can_sync_filesystem", lambda: has_syncfs)
    monkeypatch.setattr("edgekit.obs.sync.sync_filesystem", noted_syncfs)
    monkeypatch.setattr("edgekit.obs.sync.publish", noted_publish)
    monkeypatch.setattr(os, "fdatasync", noted_fdatasync)
    report = sync(client, bucket, "prod", tmp_path / "mirror")
    assert report.ok and len(report.downloaded) == count
    assert events.count("rename") == count
    if has_syncfs:
        assert "fdatasync" not in events
        assert events[0] == "syncfs" and events.count("syncfs") == 2  # a batch, the rest
        first_batch = events.index("syncfs", 1) - 1
        assert first_batch >= sync_module.PUT_IN_PLACE_BATCH  # the futures done by then
    else:
        assert "syncfs" not in events and events.count("fdatasync") == count
