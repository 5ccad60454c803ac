"""Reading the bucket for `edgekit.obs.sync`: fast listing, and objects streamed to disk
with validation on the way.

* Listing: each ListObjectsV2 page is read with ElementTree in botocore's ``before-parse``
  hook (botocore's generic parser costs about 1 ms per key), node folders in parallel.
* Fetching (`Fetcher`): each object is read from a presigned URL over a kept-alive
  connection (`edgekit.obs.transport`, which says why not botocore's ``get_object``) and
  streamed in chunks into a temp file beside its target while `edgekit.obs.checks` checks it;
  the temp file is fsynced. The caller renames it into place and records it. A bad object
  leaves nothing behind.
"""

from __future__ import annotations

import http.client
import os
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import attrs
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from edgekit.obs.checks import MD5_ETAG, Check, DigestCheck, GunzipCheck, LineCheck
from edgekit.obs.transport import NETWORK_ERRORS, Presigner, Transport

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
LIST_WORKERS = 8

# -- listing ----------------------------------------------------------------------------------


@attrs.frozen
class Listed:
    key: str
    etag: str
    size: int


def etag_of(value: str) -> str:
    """An ETag as listing and GET may spell it differently: no quotes, no weak prefix."""
    return value.removeprefix("W/").strip('"')


_LISTED = threading.local()
"""Per thread: the pages the ``before-parse`` hook read (the hook runs in the caller's thread)."""


def _grab_listing(response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's generic XML parser costs about 1 ms per key (1 s per 1,000-key page on a
    busy machine), and a re-sync with nothing new is mostly listing. So each ListObjectsV2
    body is read here with ElementTree (expat); botocore parses only what is left: the
    pagination fields."""
    pages: list[list[Listed]] | None = getattr(_LISTED, "pages", None)
    if pages is None or response_dict.get("status_code") != 200:
        return
    try:
        root = ElementTree.fromstring(response_dict["body"])
    except ElementTree.ParseError:
        return  # botocore parses it (or reports it) as usual
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    encoded = root.findtext(f"{ns}EncodingType") == "url"
    items: list[Listed] = []
    for node in root.findall(f"{ns}Contents"):
        key = node.findtext(f"{ns}Key") or ""
        items.append(Listed(unquote_plus(key) if encoded else key,
                             etag_of(node.findtext(f"{ns}ETag") or ""),
                             int(node.findtext(f"{ns}Size") or 0)))
        root.remove(node)
    pages.append(items)
    response_dict["body"] = ElementTree.tostring(root)


def _list_pages(client: S3Client, bucket: str, prefix: str,
                delimiter: str = "") -> Iterator[tuple[list[Listed], list[str]]]:
    """(objects, common prefixes) of each page under `prefix`."""
    event = "before-parse.s3.ListObjectsV2"
    client.meta.events.register(event, _grab_listing, unique_id="edgekit-fast-list")
    pages: list[list[Listed]] = []
    _LISTED.pages = pages
    try:
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if delimiter:
                args["Delimiter"] = delimiter
            if token:
                args["ContinuationToken"] = token
            before = len(pages)
            page = client.list_objects_v2(**args)
            if len(pages) > before:
                items = pages.pop()
            else:  # the hook did not run: botocore's own parse
                items = [Listed(o.get("Key", ""), etag_of(o.get("ETag", "")), o.get("Size", 0))
                         for o in page.get("Contents", [])]
            subs = [str(p.get("Prefix", "")) for p in page.get("CommonPrefixes", [])]
            yield [i for i in items if not i.key.endswith("/")], subs  # "/": folder markers
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return
    finally:
        _LISTED.pages = None


def list_objects(client: S3Client, bucket: str, prefix: str,
          workers: int = LIST_WORKERS) -> Iterator[Listed]:
    """Every object under `prefix`: the objects right under it, then each sub-folder (a
    node) listed in parallel, sub-folders in key order. Pages of one folder follow each
    other (continuation tokens); folders do not wait for each other."""
    subs: list[str] = []
    for items, found in _list_pages(client, bucket, prefix, "/"):
        yield from items
        subs.extend(found)
    if len(subs) == 1:
        for items, _ in _list_pages(client, bucket, subs[0]):
            yield from items
        return

    def whole(sub: str) -> list[Listed]:
        return [item for items, _ in _list_pages(client, bucket, sub) for item in items]

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(subs)))) as pool:
        for listed in pool.map(whole, sorted(subs)):
            yield from listed


def other_prefixes(client: S3Client, bucket: str, prefix: str, limit: int = 5) -> list[str]:
    """Up to `limit` stack prefixes (``otel/<stack>/``) in the bucket other than `prefix`."""
    root = prefix.split("/", 1)[0] + "/"
    try:
        page = client.list_objects_v2(Bucket=bucket, Prefix=root, Delimiter="/", MaxKeys=100)
    except (ClientError, BotoCoreError):
        return []
    found = [str(p.get("Prefix", "")) for p in page.get("CommonPrefixes", [])]
    return [p for p in found if p and p != prefix][:limit]


# -- fetch and stage ------------------------------------------------------------------------------


@attrs.frozen
class Staged:
    key: str
    etag: str
    tmp: Path | None
    """The object written and fsynced beside its target, not yet renamed into place."""
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


class Fetcher:
    """Streams objects of one bucket into temp files beside their targets, checking them on
    the way (`edgekit.obs.checks`; ``full_check``: every line).

    One per sync; `fetch` runs in worker threads, so network waits, hashing and inflating
    (both release the GIL) and fsyncs of many objects overlap."""

    def __init__(self, client: S3Client, bucket: str, *, full_check: bool = False) -> None:
        self.client = client
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
        if decoded:
            check = LineCheck()
        elif self.full_check or not MD5_ETAG.fullmatch(etag):
            check = GunzipCheck()
        else:
            check = DigestCheck(etag)
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
                if check.problem is None and body.length:
                    # http.client's read(n) ends quietly at a connection closed early.
                    raise http.client.IncompleteRead(b"", body.length)
                problem = check.problem or check.finish()
                if problem is None and deflate is not None:
                    tail = deflate.flush()
                    fh.write(tail)
                    size += len(tail)
                if problem is None:
                    fh.flush()
                    os.fdatasync(fh.fileno())  # the data and its size; not the times
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if problem is not None:
            tmp.unlink(missing_ok=True)
            if decoded:
                problem = "not a gzip stream (nor decoded NDJSON)"
            return Staged(key, etag, None, 0, problem, refused=True)
        return Staged(key, etag, tmp, size)
