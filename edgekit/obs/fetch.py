"""Reading the bucket for `edgekit.obs.sync`: objects streamed to disk with validation on
the way (listing: `edgekit.obs.listing`).

* Fetching (`Fetcher`): each object is read from a presigned URL over a kept-alive
  connection (`edgekit.obs.transport`, which says why not botocore's ``get_object``) and
  streamed in chunks into a temp file beside its target while `edgekit.obs.checks` checks it.
  The caller puts it on disk (one syncfs per batch, or ``sync_each``: an fdatasync here),
  renames it into place and records it. A bad object leaves nothing behind.
"""

from __future__ import annotations

import http.client
import os
import threading
import zlib
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import attrs
from botocore.exceptions import ClientError, EndpointConnectionError

from edgekit.obs.checks import MD5_ETAG, Check, DigestCheck, GunzipCheck, LineCheck
from edgekit.obs.contract import logpush_dataset
from edgekit.obs.listing import Listed, etag_of
from edgekit.obs.transport import NETWORK_ERRORS, Presigner, Transport

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20

# -- fetch and stage ------------------------------------------------------------------------------


@attrs.frozen
class Staged:
    key: str
    etag: str
    tmp: Path | None
    """The object written beside its target, not yet renamed into place."""
    size: int = 0
    problem: str | None = None
    refused: bool = False
    """The object was read and its check refused it (not: it vanished from the bucket)."""


STREAM_ATTEMPTS = 3
"""A connection that breaks part way through a body: the object is read again from the start."""


def s3_error(status: int, body: bytes, operation: str = "GetObject") -> ClientError:
    """The S3 XML error document of a refused request as botocore's ClientError, so that one
    place (`edgekit.obs.sync`) turns every refusal into advice."""
    code, message = str(status), ""
    try:
        root = ElementTree.fromstring(body)
        code = root.findtext("Code") or code
        message = root.findtext("Message") or ""
    except ElementTree.ParseError:
        pass
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {},
                                             "HostId": "", "RequestId": "",
                                             "RetryAttempts": 0}}, operation)


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Fetcher:
    """Streams objects of one bucket into temp files beside their targets, checking them on
    the way (`edgekit.obs.checks`; ``full_check``: every line).

    One per sync; `fetch` runs in worker threads, so network waits, hashing and inflating
    (both release the GIL) and disk writes of many objects overlap."""

    def __init__(self, client: S3Client, bucket: str, *, full_check: bool = False,
                 sync_each: bool = True) -> None:
        self.client = client
        self.sync_each = sync_each
        """fdatasync each file; else the caller syncs the file system before the renames."""
        self.bucket = bucket
        self.full_check = full_check
        self.transport = Transport(str(client.meta.endpoint_url))
        self.presigner = Presigner(client, bucket)
        self.folders: set[Path] = set()
        """Folders already made: one mkdir per hour folder, not per object."""

    def close(self) -> None:
        self.transport.close()

    def fetch(self, item: Listed, dest: Path) -> Staged:
        """Stream ``item`` into a temp file beside ``dest/<key>``, checked on the way."""
        for attempt in range(1, STREAM_ATTEMPTS + 1):
            try:
                return self._fetch_once(item, dest)
            except NETWORK_ERRORS as exc:  # the body was cut short: read it again
                self.transport.drop()
                if attempt == STREAM_ATTEMPTS:
                    raise EndpointConnectionError(endpoint_url=self.transport.endpoint,
                                                  error=exc) from exc
        raise AssertionError("unreachable")

    def _fetch_once(self, item: Listed, dest: Path) -> Staged:
        response = self.transport.get(self.presigner.url(item.key))
        if response.status == 404:
            response.read()
            return Staged(item.key, item.etag, None, 0, "deleted from the bucket during the sync")
        if response.status != 200:
            raise s3_error(response.status, response.read())
        etag = etag_of(response.getheader("ETag", "")) or item.etag  # of these bytes
        staged = self._stage(item.key, etag, response, dest,
                             response.getheader("Content-Encoding", ""))
        if not response.isclosed():
            self.transport.drop()  # refused part way: the rest of the body is not wanted
        return staged

    def _stage(self, key: str, etag: str, body: http.client.HTTPResponse, dest: Path,
               encoding: str) -> Staged:
        first = body.read(CHUNK)
        # Stored with Content-Encoding: gzip (as Vector's sink does), a server or proxy that
        # honours it may hand back the decoded NDJSON: the contract's gzip form is kept on disk.
        decoded = bool(first) and not first.startswith(GZIP_MAGIC) and encoding == "gzip"
        target = dest / key
        if target.parent not in self.folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(target.parent)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        check: Check
        dataset = logpush_dataset(key)  # a Logpush file: Cloudflare's fields, not the nodes'
        if decoded:
            check = LineCheck(dataset)
        elif self.full_check or not MD5_ETAG.fullmatch(etag):
            check = GunzipCheck(dataset)  # also Logpush's multipart uploads ("<md5>-<parts>")
        else:
            check = DigestCheck(etag, dataset)
        deflate = zlib.compressobj(1, zlib.DEFLATED, 31) if decoded else None
        size = 0
        # os-level calls, not a buffered file object: a tenth of a ms less per object.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            try:
                chunk = first
                while chunk:
                    check.feed(chunk)
                    if check.problem is not None:
                        break
                    out = deflate.compress(chunk) if deflate is not None else chunk
                    write_all(fd, out)
                    size += len(out)
                    chunk = body.read(CHUNK)
                if check.problem is None and body.length:
                    # http.client's read(n) ends quietly at a connection closed early.
                    raise http.client.IncompleteRead(b"", body.length)
                problem = check.problem or check.finish()
                if problem is None and deflate is not None:
                    tail = deflate.flush()
                    write_all(fd, tail)
                    size += len(tail)
                if problem is None and self.sync_each:
                    os.fdatasync(fd)  # the data and its size; not the times
            finally:
                os.close(fd)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if problem is not None:
            tmp.unlink(missing_ok=True)
            if decoded:
                problem = "not a gzip stream (nor decoded NDJSON)"
            return Staged(key, etag, None, 0, problem, refused=True)
        return Staged(key, etag, tmp, size)
