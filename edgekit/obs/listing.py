"""Listing a stack's objects for `edgekit.obs.sync`: in full, or only what can have changed.

* Fast pages: each ListObjectsV2 page is read with ElementTree in botocore's ``before-parse``
  hook (botocore's generic parser costs about 1 ms per key).
* Incremental (ADR 0021): ``otel/<stack>/`` is listed once with the delimiter ``/`` (the
  objects right under it and the node folders, so a new node shows up at once). A node
  folder listed before, at ``L`` (the client's clock, UTC, read before that listing
  started), is listed from its hour folder ``floor(L - SETTLE)`` on (``StartAfter``; hour
  folders sort by time, future-dated ones from a skewed clock after them). Vector writes an
  object into the folder of its events' hour and within minutes (batch timeout 300 s), so
  an object that lands no later than SETTLE after its hour ends is seen by the first
  listing after it landed. A disk buffer flushing after a longer R2 outage breaks that, so
  a node folder without a record, a sync without records, a last full listing older than
  FULL_EVERY, and ``full=True`` list everything.
* Logpush's dataset folders (``edge-logpush/<stack>/<dataset>/``) are listed the same way;
  their sub-folders are days (``YYYYMMDD``, the job's ``{DATE}``), so an incremental listing
  starts at the day folder of ``L - SETTLE``.
* Node folders are listed in parallel (at most ``workers`` at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from edgekit.obs.contract import LOGPUSH_ROOT, folder_synced

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

LIST_WORKERS = 8
SETTLE = timedelta(hours=6)
"""How late after its hour ends an object may still land in that hour's folder."""
FULL_EVERY = timedelta(hours=24)
"""A full listing runs when the last one is older than this."""
RECORD_EVERY = timedelta(hours=1)
"""Listing records younger than this are kept as they are (see `worth_recording`)."""

Mode = Literal["full", "incremental"]


@attrs.frozen
class Listed:
    key: str
    etag: str
    size: int


def etag_of(value: str) -> str:
    """An ETag as listing and GET may spell it differently: no quotes, no weak prefix."""
    return value.removeprefix("W/").strip('"')


# -- pages ------------------------------------------------------------------------------------

_LISTED = threading.local()
"""Per thread: the pages the ``before-parse`` hook read (the hook runs in the caller's thread)."""


def _grab_listing(response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's generic XML parser costs about 1 ms per key (1 s per 1,000-key page on a
    busy machine). So each ListObjectsV2 body is read here with ElementTree (expat);
    botocore parses only what is left: the pagination fields."""
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


def _list_pages(client: S3Client, bucket: str, prefix: str, delimiter: str = "",
                start_after: str = "") -> Iterator[tuple[list[Listed], list[str]]]:
    """(objects, common prefixes) of each page under `prefix`, keys after `start_after`."""
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
            if start_after:
                args["StartAfter"] = start_after
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


def _folder(client: S3Client, bucket: str, folder: str, start_after: str) -> list[Listed]:
    return [item for items, _ in _list_pages(client, bucket, folder, start_after=start_after)
            for item in items]


def list_objects(client: S3Client, bucket: str, prefix: str,
                 workers: int = LIST_WORKERS) -> Iterator[Listed]:
    """Every object under `prefix` (a full listing): the objects right under it, then each
    sub-folder, listed in parallel and yielded in key order."""
    yield from list_stack(client, bucket, (prefix,), ListingRecords(), now=datetime.now(UTC),
                          full=True, workers=workers).items


def folder_of(key: str) -> str | None:
    """The node folder of a key, ``<root>/<stack>/<node>/`` (None above that depth)."""
    parts = key.split("/", 3)
    return "/".join(parts[:3]) + "/" if len(parts) == 4 else None


def other_prefixes(client: S3Client, bucket: str, prefix: str, limit: int = 5) -> list[str]:
    """Up to `limit` stack prefixes (``otel/<stack>/``) in the bucket other than `prefix`."""
    root = prefix.split("/", 1)[0] + "/"
    try:
        page = client.list_objects_v2(Bucket=bucket, Prefix=root, Delimiter="/", MaxKeys=100)
    except (ClientError, BotoCoreError):
        return []
    found = [str(p.get("Prefix", "")) for p in page.get("CommonPrefixes", [])]
    return [p for p in found if p and p != prefix][:limit]


# -- records and plan -------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


@attrs.define
class ListingRecords:
    """When the last full listing started and when each node folder was last listed (the
    client's clock, UTC, read before the listing started), as kept in the sync state."""

    full: datetime | None = None
    nodes: dict[str, datetime] = attrs.Factory(dict)

    @classmethod
    def from_json(cls, value: Any) -> ListingRecords:
        """Lenient: whatever is missing or unreadable is simply not recorded (so listed)."""
        if not isinstance(value, dict):
            return cls()
        nodes = value.get("nodes")
        found = {str(k): t for k, v in nodes.items() if (t := _time(v)) is not None} \
            if isinstance(nodes, dict) else {}
        return cls(_time(value.get("full")), found)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": {k: v.isoformat() for k, v in sorted(self.nodes.items())}}
        if self.full is not None:
            out["full"] = self.full.isoformat()
        return out


def worth_recording(before: ListingRecords, after: ListingRecords) -> bool:
    """Whether `after` must replace `before` in the state file. Keeping an older listing time
    is always safe (the next window is only wider), so a re-sync within RECORD_EVERY of the
    recorded times rewrites nothing; a new or dropped folder, a full listing and a record
    from a clock ahead of ours are always written."""
    if after.full != before.full or after.nodes.keys() != before.nodes.keys():
        return True
    return not all(timedelta(0) <= after.nodes[f] - before.nodes[f] < RECORD_EVERY
                   for f in after.nodes)


HOUR_FOLDERS = "date=%Y-%m-%d/hour=%H/"
DAY_FOLDERS = "%Y%m%d/"
"""Below a node folder, Vector's (and the Worker's) hour folders; below a Logpush dataset
folder, Logpush's day folders."""


def time_folders(folder: str) -> str:
    """How the folders below `folder` are named (a strftime format ending in ``/``)."""
    return DAY_FOLDERS if folder.startswith(f"{LOGPUSH_ROOT}/") else HOUR_FOLDERS


def start_after(folder: str, listed_at: datetime) -> str:
    """The StartAfter of an incremental listing of `folder` last listed at `listed_at`: its
    hour (or, for Logpush, day) folder of ``floor(listed_at - SETTLE)``, which sorts before
    that folder's keys."""
    hour = (listed_at.astimezone(UTC) - SETTLE).replace(minute=0, second=0, microsecond=0)
    return f"{folder}{hour:{time_folders(folder)}}"


def wants_full(records: ListingRecords, now: datetime) -> bool:
    """No full listing recorded, the last one older than FULL_EVERY, or one from a clock
    ahead of ours (a record we cannot trust)."""
    return records.full is None or not now - FULL_EVERY < records.full <= now


def plan(records: ListingRecords, folders: Iterable[str], now: datetime,
         full: bool) -> dict[str, str]:
    """Node folder -> StartAfter ("" lists the whole folder). A folder without a record, or
    whose record is later than `now` (the clock went back), is listed whole."""
    full = full or wants_full(records, now)
    out: dict[str, str] = {}
    for folder in folders:
        last = records.nodes.get(folder)
        out[folder] = "" if full or last is None or last > now else start_after(folder, last)
    return out


@attrs.define
class Listing:
    """What one listing returned, and how it was done."""

    prefixes: tuple[str, ...]
    started: datetime
    items: list[Listed]
    since: dict[str, str]
    """Node folder -> the StartAfter it was listed with ("" for a whole folder)."""

    @property
    def mode(self) -> Mode:
        return "incremental" if any(self.since.values()) else "full"

    def hours(self) -> int:
        """How many hours back the incremental folders were listed (the widest)."""
        starts = [datetime.strptime(s[len(f):], time_folders(f)).replace(tzinfo=UTC)
                  for f, s in self.since.items() if s]
        return -(-int((self.started - min(starts)).total_seconds()) // 3600) if starts else 0

    def settled(self, held: Iterable[str]) -> list[str]:
        """The `held` keys that lie in folders this listing skipped as settled."""
        if not any(self.since.values()):
            return []
        since, found = self.since, []
        for key in held:
            folder = folder_of(key)
            after = since.get(folder) if folder is not None else None
            if after and key <= after:
                found.append(key)
        return found

    def records(self, before: ListingRecords, troubled: Iterable[str]) -> ListingRecords:
        """The records once every listed object was dealt with: every node folder listed at
        `started`, except those holding an object that could not be loaded (`troubled`
        keys): they get no record, so the next sync lists them whole and tries again."""
        bad = {folder for key in troubled if (folder := folder_of(key)) is not None}
        return ListingRecords(
            self.started if self.mode == "full" else before.full,
            {folder: self.started for folder in self.since if folder not in bad},
        )


def list_stack(client: S3Client, bucket: str, prefixes: tuple[str, ...],
               records: ListingRecords, *, now: datetime, full: bool = False,
               workers: int = LIST_WORKERS) -> Listing:
    """List each of `prefixes` (``<root>/<stack>/``) as `records` allow (see the module's
    doc); `now` is the client's clock read before this listing started, recorded as the time
    of this listing."""
    items: list[Listed] = []
    folders: list[str] = []
    for prefix in prefixes:
        for found, subs in _list_pages(client, bucket, prefix, "/"):
            items.extend(found)
            folders.extend(sub for sub in subs if folder_synced(sub))
    since = plan(records, sorted(folders), now, full)
    jobs = list(since.items())
    if len(jobs) <= 1:
        lists = [_folder(client, bucket, folder, after) for folder, after in jobs]
    else:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
            lists = list(pool.map(lambda job: _folder(client, bucket, *job), jobs))
    for listed in lists:
        items.extend(listed)
    return Listing(prefixes, now, items, since)

