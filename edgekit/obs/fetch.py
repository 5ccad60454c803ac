"""Reading the bucket for `edgekit.obs.sync`: objects streamed to disk with validation on
the way (listing: `edgekit.obs.listing`).

* Fetching: an object is streamed in chunks into a temp file beside its target while it is
  gunzipped and every NDJSON line is checked (`LineCheck`); the temp file is fsynced. The
  caller renames it into place and records it. A bad object leaves nothing behind.
"""

from __future__ import annotations

import gzip
import os
import threading
import zlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import orjson
from botocore.exceptions import ClientError

from edgekit.obs.listing import Listed, etag_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20

# -- validation -------------------------------------------------------------------------------

_STRING_FIELDS = ("observed_timestamp", "severity_text", "trace_id", "span_id", "source_type")
_OBJECT_FIELDS = ("attributes", "resources")


def _check_event(event: Any) -> str | None:
    if not isinstance(event, dict):
        return f"not a JSON object but {type(event).__name__}"
    ts = event.get("timestamp")
    if ts is not None:
        if not isinstance(ts, str):
            return "timestamp is not a string"
        try:
            datetime.fromisoformat(ts)
        except ValueError:
            return f"timestamp {ts[:40]!r} is not RFC 3339"
    for name in _STRING_FIELDS:
        if event.get(name) is not None and not isinstance(event[name], str):
            return f"{name} is not a string"
    for name in _OBJECT_FIELDS:
        if event.get(name) is not None and not isinstance(event[name], dict):
            return f"{name} is not an object"
    number = event.get("severity_number")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        return "severity_number is not an integer"
    return None


def validate_object(data: bytes) -> str | None:
    """Why ``data`` is not a valid log object (gzip NDJSON of events), or None when it is."""
    if not data:
        return "not a gzip stream (an empty object)"
    try:
        raw = gzip.decompress(data)  # handles multi-member streams too
    except (OSError, EOFError, zlib.error) as exc:
        return f"not a gzip stream ({exc})"
    return validate_ndjson(raw)


def validate_ndjson(raw: bytes) -> str | None:
    """Why ``raw`` is not NDJSON of contract events, or None when it is."""
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return f"line {number}: not JSON ({exc})"
        if (problem := _check_event(event)) is not None:
            return f"line {number}: {problem}"
    return None



# -- streaming check ----------------------------------------------------------------------------


class LineCheck:
    """NDJSON fed in pieces: every complete line is checked as `validate_ndjson` does."""

    def __init__(self) -> None:
        self.rest = b""
        self.number = 0
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        if self.problem is not None or not data:
            return
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        self._check(lines)

    def finish(self) -> str | None:
        if self.problem is None and self.rest:
            self._check([self.rest])
            self.rest = b""
        return self.problem

    def _check(self, lines: list[bytes]) -> None:
        for line in lines:
            self.number += 1
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self.problem = f"line {self.number}: not JSON ({exc})"
                return
            if (problem := _check_event(event)) is not None:
                self.problem = f"line {self.number}: {problem}"
                return


class GunzipCheck:
    """Gzip (one or more members) fed in pieces, its NDJSON checked by a `LineCheck`."""

    def __init__(self) -> None:
        self.inflate = zlib.decompressobj(31)
        self.lines = LineCheck()
        self.started = False
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        if self.problem is not None:
            return
        try:
            while data:
                self.started = True
                self.lines.feed(self.inflate.decompress(data))
                data = self.inflate.unused_data
                if data:  # another gzip member follows
                    self.inflate = zlib.decompressobj(31)
        except zlib.error as exc:
            self.problem = f"not a gzip stream ({exc})"

    def finish(self) -> str | None:
        if self.problem is None and (not self.started or not self.inflate.eof):
            self.problem = "not a gzip stream (it ends before the end of the stream)"
        return self.problem or self.lines.finish()


# -- fetch and stage ------------------------------------------------------------------------------


@attrs.frozen
class Staged:
    key: str
    etag: str
    tmp: Path | None
    """The object written and fsynced beside its target, not yet renamed into place."""
    size: int = 0
    problem: str | None = None


def fetch_and_stage(client: S3Client, bucket: str, item: Listed, dest: Path) -> Staged:
    """Stream one object into a temp file beside ``dest/<key>``, checking it on the way.

    Runs in a worker thread: network waits, gunzips and fsyncs of many objects overlap."""
    try:
        response = client.get_object(Bucket=bucket, Key=item.key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return Staged(item.key, item.etag, None, 0, "deleted from the bucket during the sync")
        raise
    etag = etag_of(response.get("ETag", "")) or item.etag  # of the bytes we get
    body = response["Body"]
    first = body.read(CHUNK)
    decoded = not first.startswith(GZIP_MAGIC) and response.get("ContentEncoding", "") == "gzip"
    target = dest / item.key
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    check: LineCheck | GunzipCheck = LineCheck() if decoded else GunzipCheck()
    # Stored with Content-Encoding: gzip (as Vector's sink does), a server or proxy that
    # honours it may hand back the decoded NDJSON: the contract's gzip form is kept on disk.
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31) if decoded else None
    size = 0
    try:
        with tmp.open("wb") as fh:
            chunk = first
            while chunk:
                check.feed(chunk)
                if check.problem is not None:
                    break
                out = deflate.compress(chunk) if deflate is not None else chunk
                fh.write(out)
                size += len(out)
                chunk = body.read(CHUNK)
            problem = check.problem or check.finish()
            if problem is None and deflate is not None:
                tail = deflate.flush()
                fh.write(tail)
                size += len(tail)
            if problem is None:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if problem is not None:
        tmp.unlink(missing_ok=True)
        if decoded:
            problem = "not a gzip stream (nor decoded NDJSON)"
        return Staged(item.key, etag, None, 0, problem)
    return Staged(item.key, etag, tmp, size)
