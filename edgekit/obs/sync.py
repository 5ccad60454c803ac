"""Mirror a stack's log objects from R2 into a local folder, resumably.

``sync(client, bucket, stack, dest)`` lists ``otel/<stack>/``, ``edge/<stack>/`` and the Logpush
dataset folders ``edge-logpush/<stack>/<dataset>/`` and downloads every object the folder does
not hold yet, to ``dest/<object key>`` (the bucket layout is kept, so
``dest/otel/<stack>/<node>/date=…/hour=…/….log.gz``, ``dest/edge-logpush/<stack>/<dataset>/
<YYYYMMDD>/….log.gz``).

Guarantees, whatever happens part way (an exception, Ctrl-C, a killed process):

- **No half files.** Each object is streamed (``edgekit.obs.fetch``) into a hidden temp file
  beside its target and checked on the way; batches of them are put on disk (one ``syncfs``
  per `PUT_IN_PLACE_BATCH`, an fdatasync per file where there is no syncfs), then renamed
  over their targets; the query side reads only ``*.log.gz``.
- **No duplicates.** The local path is a function of the key, so a download that is repeated
  (because it was not recorded yet) replaces the same file.
- **No gaps.** An object is recorded as held (key + ETag) only after its file is in place; a
  record is one appended line of a journal (``.edgekit-sync.json.journal``; a line lost in a
  crash means that object is fetched again), folded into ``.edgekit-sync.json`` (written to
  a temp file, fsynced and renamed) at the end of every sync.
  Appending a line makes each record O(1) however many objects are held; a torn last line
  (the process died mid-write) is ignored and that object is fetched again.
- **Validated** (`edgekit.obs.checks`, ADR 0022). An object's bytes must hash to its ETag
  (the MD5 of a single-part upload) and its first line must be a JSON object whose contract
  fields have the contract types (``timestamp`` an RFC 3339 string, ...); with
  ``verify=True`` (and for an ETag that is not an MD5) the gzip stream must inflate whole and
  every line must. A bad object is not written, not recorded, and listed in the report with
  the reason; the others still load.
- A changed ETag means the object was rewritten: it is downloaded again.
- **Incremental listing** (``edgekit.obs.listing``, ADR 0021): a re-sync lists only the
  recent hour folders of the node folders it listed before, and everything when the last
  full listing is older than a day, with ``full=True`` or ``verify=True``. The listing
  records are written only at the end of a sync that dealt with every listed object.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)

from edgekit.core.files import can_sync_filesystem, publish, sync_filesystem
from edgekit.core.stack import r2_endpoint
from edgekit.obs.checks import validate_ndjson as validate_ndjson  # re-exported
from edgekit.obs.checks import validate_object as validate_object  # re-exported
from edgekit.obs.contract import OBJECT_SUFFIX, LogsError, parse_key, stack_prefixes
from edgekit.obs.fetch import Fetcher, Staged
from edgekit.obs.listing import Listed, Mode, list_stack, worth_recording
from edgekit.obs.listing import other_prefixes as other_prefixes  # re-exported
from edgekit.obs.state import SyncState as SyncState  # re-exported
from edgekit.obs.state import files_under, prune_gone
from edgekit.obs.verify import recheck

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Progress = Callable[[int, int, int], None]
"""``progress(done, total, bytes_done)``: called once before the first download, then after
every object is dealt with (written and recorded, or skipped). An exception it raises stops the
sync; everything recorded so far stays recorded."""

ENDPOINT_ENV = "EDGEKIT_R2_ENDPOINT"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
CREDENTIALS_HELP = (
    "edgekit reads the R2 S3 credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "or from the profile named by --profile or AWS_PROFILE (~/.aws/credentials); "
    "create them under R2 > Manage API tokens with read access to the logs bucket"
)
CREDENTIAL_CODES = frozenset({
    "AccessDenied",
    "AuthorizationHeaderMalformed",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "Unauthorized",
    "403",
})
REFUSED = "!"
"""Recorded before an ETag: every line of the object at that ETag was checked (``--verify``)
and one breaks the contract. Later syncs do not fetch it again (nor let a default check take
it), and report it, until its ETag changes."""
REFUSED_REASON = ("refused by an earlier `logs sync --verify` (a line breaks the contract); "
                  "fetched again when its ETag changes, or with --verify")
DEFAULT_WORKERS = 8
KEY_LAYOUTS = ("key not laid out as <otel|edge>/<stack>/<node>/date=YYYY-MM-DD/hour=HH/"
               "<name>.log.gz, nor as edge-logpush/<stack>/<dataset>/YYYYMMDD/<name>.log.gz")
PUT_IN_PLACE_BATCH = 32
"""Downloaded files are put on disk with one syncfs per this many (where the system has it),
then renamed into place and recorded: a journal commit per batch, not per file (ADR 0022)."""


# -- client -----------------------------------------------------------------------------------


def resolve_endpoint(endpoint_url: str | None = None) -> str:
    """``endpoint_url``, else ``$EDGEKIT_R2_ENDPOINT``, else the account's R2 endpoint."""
    if endpoint_url:
        return endpoint_url
    if env := os.environ.get(ENDPOINT_ENV):
        return env
    if account := os.environ.get(ACCOUNT_ENV):
        return r2_endpoint(account)
    raise LogsError(
        f"no R2 endpoint: pass --endpoint, or set {ENDPOINT_ENV} "
        f"(e.g. {r2_endpoint('<account id>')}), or set {ACCOUNT_ENV}"
    )


def make_client(endpoint_url: str | None = None, profile: str | None = None) -> S3Client:
    """An S3 client for R2: region ``auto``, path-style, checksums only when required.

    R2 rejects the CRC checksum headers newer botocore sends by default, hence
    ``request_checksum_calculation="when_required"``.
    """
    endpoint = resolve_endpoint(endpoint_url)
    try:
        session = boto3.session.Session(profile_name=profile)
    except ProfileNotFound as exc:
        raise LogsError(f"AWS profile {profile!r} not found; {CREDENTIALS_HELP}") from exc
    return session.client("s3", endpoint_url=endpoint, region_name="auto",
                          config=client_config(max_attempts=5, pool=DEFAULT_WORKERS * 2))


def client_config(*, max_attempts: int, pool: int) -> Config:
    """What R2 needs: path style, SigV4, and checksums only when required (R2 rejects the
    newer default checksum headers)."""
    return Config(
        region_name="auto",
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=pool,
    )


def refusal(exc: Exception, bucket: str, endpoint: str) -> LogsError:
    """Turn a botocore failure into a LogsError that says what to do: the one wording of a
    refused or unreachable bucket, for every command that reads the logs bucket
    (`logs sync`, `mesh import-keys`, `pg import-ca`, `status`/`deploy`)."""
    if isinstance(exc, NoCredentialsError):
        return LogsError(f"no credentials found for {endpoint}; {CREDENTIALS_HELP}")
    if isinstance(exc, EndpointConnectionError):
        return LogsError(f"cannot reach {endpoint}: {exc}; check --endpoint / {ENDPOINT_ENV}")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in CREDENTIAL_CODES:
            return LogsError(
                f"the credentials were refused by {endpoint} for bucket {bucket!r} ({code}); "
                f"{CREDENTIALS_HELP}"
            )
        if code == "NoSuchBucket":
            return LogsError(
                f"bucket {bucket!r} does not exist at {endpoint}; "
                "pass --bucket or set EDGEKIT_LOGS_BUCKET"
            )
    return LogsError(f"listing or reading bucket {bucket!r} at {endpoint} failed: {exc}")


# -- report -----------------------------------------------------------------------------------


@attrs.frozen
class Skipped:
    """An object that was not loaded, and why."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


@attrs.define
class SyncReport:
    bucket: str
    prefix: str
    dest: Path
    listed: int = 0
    """Objects under the prefix: those the listing returned, plus the held ones an
    incremental listing skipped as settled."""
    held: int = 0
    """Objects already held with the same ETag: not downloaded."""
    listing: Mode = "full"
    keys_listed: int = 0
    """Keys the listing returned (all of them when ``listing == "full"``)."""
    hours: int = 0
    """An incremental listing: how many hours back each node folder was re-listed."""
    downloaded: list[str] = attrs.Factory(list)
    bytes_downloaded: int = 0
    skipped: list[Skipped] = attrs.Factory(list)
    seconds: float = 0.0
    rechecked: int = 0
    """Held files ``--verify`` found broken and removed (fetched again in the same sync)."""
    pruned: list[str] = attrs.Factory(list)
    """``prune``: mirrored objects the bucket no longer holds, removed from the mirror."""
    prefixes: tuple[str, ...] = ()
    """Every prefix listed (``otel/<stack>/``, ``edge/<stack>/``); `prefix` is the first."""

    @property
    def ok(self) -> bool:
        return not self.skipped

    def summary(self) -> str:
        mb = self.bytes_downloaded / 1e6
        lines = [
            f"s3://{self.bucket}/{{{','.join(self.prefixes)}}} -> {self.dest}: "
            f"{self.listed} objects, "
            f"{len(self.downloaded)} downloaded ({mb:.1f} MB), {self.held} already held, "
            f"{len(self.skipped)} skipped, {self.seconds:.1f}s"
        ]
        if self.listing == "incremental":
            lines.append(f"  re-listed the last {self.hours} hours of each node "
                         f"({self.keys_listed} keys); a full listing runs daily or with --full")
        else:
            lines.append(f"  full listing ({self.keys_listed} keys)")
        if self.pruned:
            lines.append(f"  --prune removed {len(self.pruned)} file(s) the bucket no longer "
                         "holds (expired by its lifecycle rule)")
        if self.rechecked:
            lines.append(f"  --verify removed {self.rechecked} broken held file(s) and fetched "
                         "them again (a bad object in the bucket is listed as skipped)")
        lines += [f"  skipped {s}" for s in self.skipped]
        return "\n".join(lines)


# -- sync -------------------------------------------------------------------------------------


def sync(
    client: S3Client,
    bucket: str,
    stack: str,
    dest: Path,
    progress: Progress | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
    verify: bool = False,
    full: bool = False,
    prune: bool = False,
    now: datetime | None = None,
) -> SyncReport:
    """Download the objects of ``otel/<stack>/`` that ``dest`` does not hold yet.

    Each object's bytes are checked against its ETag (an MD5) and its first line against the
    contract; ``verify`` checks every line of every object, downloaded or already held,
    fetches a broken held file again and records an object that is bad in the bucket as
    refused (ADR 0022).

    The listing is incremental unless ``full``, ``verify``, ``prune`` or a full listing is
    due (ADR 0021); ``now`` stands for the clock read before listing (tests inject it).

    ``prune`` removes from ``dest`` the files of objects this mirror recorded as synced that
    the (full) listing no longer shows, e.g. expired by the bucket's lifecycle rule, and
    forgets them; nothing else (a file the state does not record, or outside the synced
    prefixes, is never touched). A listing with no object at all while the mirror holds some
    is refused rather than pruned to nothing (a wrong bucket or endpoint).

    Raises LogsError when the bucket cannot be listed or read (refused credentials, no such
    bucket, endpoint unreachable); nothing is written then. Invalid objects do not raise: they
    are in ``report.skipped``.
    """
    started = time.monotonic()
    prefixes = stack_prefixes(stack)
    endpoint = str(client.meta.endpoint_url)
    report = SyncReport(bucket=bucket, prefix=prefixes[0], dest=dest, prefixes=prefixes)
    state = SyncState(dest)
    listed_at = (now or datetime.now(UTC)).astimezone(UTC)  # before the listing starts
    try:
        listing = list_stack(client, bucket, prefixes, state.listings, now=listed_at,
                             full=full or verify or prune, workers=workers)
    except (ClientError, BotoCoreError) as exc:
        raise refusal(exc, bucket, endpoint) from exc
    if prune:
        report.pruned = prune_gone(state, dest, prefixes, {i.key for i in listing.items})
    listed = listing.items
    held = state.held
    settled = listing.settled(held)  # not listed: held, or refused and named again
    refused = [key for key in settled if held[key].startswith(REFUSED)]
    report.skipped += [Skipped(key, REFUSED_REASON) for key in refused]
    report.listing, report.hours = listing.mode, listing.hours()
    report.keys_listed, report.listed = len(listed), len(listed) + len(settled)
    report.held = len(settled) - len(refused)

    dest.mkdir(parents=True, exist_ok=True)
    # A full listing checks every file with one directory walk; an incremental one stats
    # the few keys it lists and trusts the state for the settled ones.
    present: set[str] | None = None
    if listing.mode == "full":
        present = set().union(*(files_under(dest, p) for p in prefixes)) if held else set()
    todo: list[Listed] = []
    if verify and present is not None:  # (verify lists in full) bad held files are removed
        damaged = recheck(dest, (k for k in held if k in present), workers)
        present.difference_update(damaged)
        listed_keys = {item.key for item in listed}
        todo.extend(Listed(key, held[key], 0) for key in damaged if key not in listed_keys)
        report.rechecked = len(damaged)
    for item in listed:
        # Held at this ETag with its file in place: its key was checked when it was recorded.
        recorded = held.get(item.key)
        if recorded == item.etag and present is not None and item.key in present:
            report.held += 1
            continue
        if recorded == REFUSED + item.etag and not verify:
            report.skipped.append(Skipped(item.key, REFUSED_REASON))
            continue
        parsed = parse_key(item.key)
        if parsed is None or parsed.stack != stack or not item.key.endswith(OBJECT_SUFFIX):
            report.skipped.append(Skipped(item.key, KEY_LAYOUTS))
        elif state.holds(item.key, item.etag, dest, present):
            report.held += 1
        else:
            todo.append(item)

    total = len(todo)
    done = 0
    if progress is not None:
        progress(0, total, 0)
    batched = can_sync_filesystem()
    fetcher = Fetcher(client, bucket, full_check=verify, sync_each=not batched)
    ready: list[Staged] = []
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="edgekit-sync")
    pending: set[Future[Staged]] = set()
    queue = iter(todo)
    recorded_listing = False
    try:

        def fill() -> None:
            while len(pending) < 2 * max(1, workers):
                item = next(queue, None)
                if item is None:
                    return
                pending.add(pool.submit(fetcher.fetch, item, dest))

        def dealt_with() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, report.bytes_downloaded)

        def put_in_place() -> None:
            """On disk (one syncfs for the batch), then renamed into place, then recorded."""
            if ready and batched:
                sync_filesystem(dest)
            while ready:
                staged = ready.pop(0)
                assert staged.tmp is not None
                publish(staged.tmp, dest / staged.key)
                state.record(staged.key, staged.etag)
                report.downloaded.append(staged.key)
                report.bytes_downloaded += staged.size
                dealt_with()

        fill()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                pending.discard(future)
                try:
                    staged = future.result()
                except (ClientError, BotoCoreError) as exc:
                    raise refusal(exc, bucket, endpoint) from exc
                if staged.problem is not None or staged.tmp is None:
                    report.skipped.append(Skipped(staged.key, staged.problem or "not written"))
                    if verify and staged.refused:  # every line was checked: keep it out
                        state.record(staged.key, REFUSED + staged.etag)
                    dealt_with()
                else:
                    ready.append(staged)
            fill()
            if len(ready) >= PUT_IN_PLACE_BATCH or not pending:
                put_in_place()
        # Every listed object dealt with: the listing may be recorded (never half of it).
        # A node folder with an object skipped and not refused gets no record: the next
        # sync lists it whole and tries that object again.
        retry = [s.key for s in report.skipped if not held.get(s.key, "").startswith(REFUSED)]
        after = listing.records(state.listings, retry)
        if report.downloaded or worth_recording(state.listings, after):
            state.listings, recorded_listing = after, True
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        fetcher.close()
        for staged in ready:  # written but not put in place: no temp file stays behind
            if staged.tmp is not None:
                staged.tmp.unlink(missing_ok=True)
        for future in pending:
            if future.done() and not future.cancelled() and future.exception() is None:
                tmp = future.result().tmp
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
        state.compact(listed=recorded_listing or bool(report.pruned))
    report.seconds = time.monotonic() - started
    return report

