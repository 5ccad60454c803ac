"""What `edgekit logs sync` checks in an object before it enters the mirror (ADR 0022).

One streaming interface (`Check`: ``feed(bytes)`` in pieces of any size, then ``finish()``
returning why the object is refused, or None), two depths:

* `DigestCheck`, the default when the object's ETag is an MD5 (every single-part upload, so
  everything Vector writes): the bytes must hash to the ETag, which proves they are the
  bucket's bytes, whole; and the gzip stream must open with a line that is a contract event,
  which catches a non-gzip object and a writer whose events are not shaped as the contract
  says (every line of one object comes from the same encoder). Only that first line is
  inflated, so the check costs an MD5 (hashlib releases the GIL): the sync runs at the
  speed of the network and the disk.
* `GunzipCheck` (``--verify``, and any object whose ETag is not an MD5): the whole stream is
  inflated (its CRC-32 and length trailers checked) and every line is parsed and checked, as
  `validate_object` does for a whole object in memory. About ten times the CPU per byte.

A line is checked against the nodes' contract, or, for a Logpush file (``dataset`` given, from
its key), against the fields edgekit's job writes for that dataset
(`edgekit.obs.logpush.check_record`).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from datetime import datetime
from typing import Any, Protocol

import orjson

from edgekit.obs.logpush import check_record

_STRING_FIELDS = ("observed_timestamp", "severity_text", "trace_id", "span_id", "source_type")
_OBJECT_FIELDS = ("attributes", "resources")
HEAD_LIMIT = 1 << 16
"""Bytes of a first line the default check reads at most (a longer line is checked cut)."""
HEAD_STEP = 4096


def check_event(event: Any) -> str | None:
    """Why ``event`` (one parsed line) breaks the contract, or None when it keeps it."""
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


def check_line(line: bytes, number: int, dataset: str | None = None) -> str | None:
    """Why NDJSON line ``number`` is not a contract event, or not a `dataset` record of
    edgekit's Logpush job (blank lines are allowed)."""
    if not line.strip():
        return None
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"line {number}: not JSON ({exc})"
    problem = check_event(event) if dataset is None else check_record(dataset, event)
    return None if problem is None else f"line {number}: {problem}"


def validate_object(data: bytes, dataset: str | None = None) -> str | None:
    """Why ``data`` is not a valid log object (gzip NDJSON of events, or of `dataset`
    records), or None when it is. Every line is checked."""
    if not data:
        return "not a gzip stream (an empty object)"
    try:
        raw = gzip.decompress(data)  # handles multi-member streams too
    except (OSError, EOFError, zlib.error) as exc:
        return f"not a gzip stream ({exc})"
    return validate_ndjson(raw, dataset)


def validate_ndjson(raw: bytes, dataset: str | None = None) -> str | None:
    """Why ``raw`` is not NDJSON of contract events (or `dataset` records), or None when it
    is (every line)."""
    for number, line in enumerate(raw.split(b"\n"), 1):
        if (problem := check_line(line, number, dataset)) is not None:
            return problem
    return None


class Check(Protocol):
    """Bytes fed in pieces; ``finish`` says why the object is refused, or None."""

    problem: str | None

    def feed(self, data: bytes) -> None: ...

    def finish(self) -> str | None: ...


class LineCheck:
    """Every complete line checked as `validate_ndjson` does."""

    def __init__(self, dataset: str | None = None) -> None:
        self.dataset = dataset
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
            if (problem := check_line(line, self.number, self.dataset)) is not None:
                self.problem = problem
                return


class GunzipCheck:
    """Gzip (one or more members) fed in pieces, inflated whole (its CRC-32 and length
    trailers checked) and every line of its NDJSON checked by a `LineCheck`."""

    def __init__(self, dataset: str | None = None) -> None:
        self.inflate = zlib.decompressobj(31)
        self.lines = LineCheck(dataset)
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


MD5_ETAG = re.compile(r"[0-9a-f]{32}")
"""An ETag that is the MD5 of the object's bytes: S3 and R2 give one to every single-part
upload (Vector's sink uploads single-part); multipart ETags end in ``-<parts>``."""


class DigestCheck:
    """The bytes hash to the object's ETag (`MD5_ETAG`), and the gzip stream opens with a
    contract line: only that first line is inflated."""

    def __init__(self, etag: str, dataset: str | None = None) -> None:
        self.etag = etag
        self.dataset = dataset
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.inflate = zlib.decompressobj(31)
        self.head = b""
        self.head_done = False
        self.fed = False
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        if self.problem is not None or not data:
            return
        self.fed = True
        self.md5.update(data)
        if self.head_done:
            return
        step = HEAD_STEP  # inflate a few kB at a time: a line is rarely longer
        try:
            while True:
                self.head += self.inflate.decompress(data, step)
                data = self.inflate.unconsumed_tail
                nl = self.head.find(b"\n")
                if nl >= 0 or len(self.head) >= HEAD_LIMIT or not data:
                    break
                step = min(step * 4, HEAD_LIMIT)
        except zlib.error as exc:
            self.problem = f"not a gzip stream ({exc})"
            return
        if nl >= 0 or len(self.head) >= HEAD_LIMIT:
            self.head_done = True
            self.problem = check_line(self.head[:nl] if nl >= 0 else self.head, 1,
                                      self.dataset)

    def finish(self) -> str | None:
        if self.problem is None and not self.head_done:  # no newline in the whole object
            if not self.fed:
                self.problem = "not a gzip stream (an empty object)"
            else:
                self.problem = check_line(self.head, 1, self.dataset)
        if self.problem is None and self.md5.hexdigest() != self.etag:
            self.problem = (
                f"its bytes do not match its ETag {self.etag} (their MD5 is "
                f"{self.md5.hexdigest()}); if this server's ETags are not MD5s, sync with "
                "--verify (checks the gzip CRC and every line instead)"
            )
        return self.problem
