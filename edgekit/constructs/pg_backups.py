"""PgBackups: the Postgres primary's backups in an R2 bucket of its own (ADR 0011).

It adds: the bucket, a bucket lock on the keys pgBackRest writes once (WAL and backup sets,
for `edgekit.constructs.pg_lock.backup_lock_days`: shorter than pgBackRest's retention lets
a file live, ADR 0037), an account-owned API token that may read and write objects of that
bucket only, and the repository's cipher passphrase (``random_password``, 64 characters).
The token's S3 credentials and the passphrase reach the primary as sensitive values inside
its boot document (``pgbackrest_*`` secrets, written to ``/run/keys/edgekit`` and read by
the ``edgekit-pgbackrest`` wrapper); none of them appears in the JSON. The passphrase also
leaves the stack as a sensitive output, so an operator can list and restore backups
(``edgekit pg backups`` / ``edgekit pg restore``) with ``tofu output -raw``. pgBackRest
itself (archive settings, timers) is NixOS configuration, generated from the same CUE values
(``nix/pgbackrest/<env>.json``). `BackupSettings` is what it takes (the same settings
`edgekit.pg.backup` renders the configuration from).
"""

from __future__ import annotations

import json
import re

import attrs

from edgekit.constructs.facts import BucketFact, Where, record_bucket
from edgekit.constructs.node import VpsNode
from edgekit.constructs.pg_lock import backup_lock_days, lock_prefixes, longest_lock_days
from edgekit.constructs.r2 import (
    DAY,
    R2_BUCKET_ITEM_WRITE,
    R2Bucket,
    bucket_lock,
    bucket_scope,
)
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Resource, stack_of
from edgekit.core.errors import ConstructError

# Cloudflare's permission group "Workers R2 Storage Bucket Item Read" (Write is in r2.py).
R2_BUCKET_ITEM_READ = "6a018a9f2fc74eb6b293b0c548f38b39"
CIPHER_OUTPUT = "pg_backup_cipher_pass"
BUCKET_OUTPUT = "pg_backup_bucket"
_CALENDAR = re.compile(r"^[A-Za-z0-9 *:.,/~-]+$")


class BackupError(ValueError):
    """Backup settings that pgBackRest or systemd would refuse."""


@attrs.frozen(kw_only=True)
class BackupSettings:
    """Where and how often the primary of one environment is backed up (from CUE)."""

    stanza: str
    """The pgBackRest stanza: the environment's name."""
    bucket: str
    """The R2 bucket holding only this environment's backups."""
    endpoint: str
    """The S3 endpoint host, ``<account>.r2.cloudflarestorage.com`` (no scheme)."""
    region: str = "auto"
    retention_full: int = 4
    """Full backups kept; older ones, their differentials and WAL are expired."""
    full_calendar: str = "Sun *-*-* 03:00:00"
    """systemd OnCalendar of the full backup (default: weekly)."""
    diff_calendar: str = "Mon..Sat *-*-* 03:00:00"
    """systemd OnCalendar of the differential backups (default: the other days)."""
    archive_timeout_seconds: int = 60
    """Longest time a committed transaction waits before its WAL segment is switched and
    archived: the recovery point objective when writes are sparse."""
    process_max: int = 2
    lock_days: int | None = None
    """Days each backup and WAL file is locked in R2 (`edgekit.constructs.pg_lock`); None:
    derived from the retention."""
    archive_queue_max_mb: int = 4096
    """pgBackRest's ``archive-push-queue-max``: while R2 cannot be reached, WAL waits in
    pg_wal; past this much, pgBackRest drops it (with a warning in the server's log) so the
    data volume never fills up, and the backups lose continuity until the next full one
    (ADR 0026)."""
    pg_path: str = "/var/lib/postgresql/15"
    pg_port: int = 5432

    def __attrs_post_init__(self) -> None:
        problems = []
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", self.stanza):
            problems.append(f"stanza {self.stanza!r}: expected a name like 'prod'")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", self.bucket):
            problems.append(f"bucket {self.bucket!r}: expected 3-63 of a-z 0-9 -")
        if "://" in self.endpoint or "/" in self.endpoint:
            problems.append(f"endpoint {self.endpoint!r}: expected a host name, no scheme")
        if not 1 <= self.retention_full <= 9999999:
            problems.append(f"retention_full {self.retention_full}: expected 1..9999999")
        if not 64 <= self.archive_queue_max_mb <= 1048576:
            problems.append(f"archive_queue_max_mb {self.archive_queue_max_mb}: expected "
                            "64..1048576 (MiB; at least four WAL segments)")
        if not 1 <= self.archive_timeout_seconds <= 3600:
            problems.append(f"archive_timeout_seconds {self.archive_timeout_seconds}: "
                            "expected 1..3600")
        for name in ("full_calendar", "diff_calendar"):
            value = getattr(self, name)
            if not _CALENDAR.fullmatch(value):
                problems.append(f"{name} {value!r}: expected a systemd OnCalendar expression")
        if problems:
            raise BackupError("; ".join(problems))


class PgBackups(Construct):
    def __init__(self, scope: Construct, id: str, *, account_id: str,
                 settings: BackupSettings, node: VpsNode) -> None:
        super().__init__(scope, id)
        self.settings = settings
        self.bucket = R2Bucket(self, "bucket", account_id=account_id, name=settings.bucket)
        days = backup_lock_days(settings)
        if days is None or days < 1:
            raise ConstructError(
                f"[{self.node.path}] backups of {settings.stanza}: cannot lock the backup "
                f"bucket: retention_full {settings.retention_full} with full_calendar "
                f"{settings.full_calendar!r} gives no lock of a day or more; keep more full "
                "backups, or set lock_days (BackupSettings(lock_days=...), or "
                "postgres.backups.lock_days in cue/envs.cue; ADR 0037)")
        self.lock = bucket_lock(self, "lock", account_id=account_id,
                                bucket=self.bucket.name_ref,
                                prefixes=lock_prefixes(settings.stanza), days=days)
        longest = longest_lock_days(settings)
        record_bucket(self, BucketFact(
            what="backup bucket", bucket=settings.bucket,
            prefixes=lock_prefixes(settings.stanza), lock_seconds=float(days * DAY),
            longest_lock_seconds=None if longest is None else float(longest * DAY),
            why_longest=f"with retention_full {settings.retention_full} and full_calendar "
            f"{settings.full_calendar!r} pgBackRest expires a file after {longest} days at "
            "the earliest", where=Where(path=self.node.path)))
        scope_key = bucket_scope(account_id, settings.bucket)
        self.token = Resource(self, "token", type="cloudflare_account_token", config={
            "account_id": account_id, "name": f"edgekit pg backups {settings.bucket}",
            "policies": [{"effect": "allow", "resources": json.dumps({scope_key: "*"}),
                          "permission_groups": [{"id": R2_BUCKET_ITEM_READ},
                                                {"id": R2_BUCKET_ITEM_WRITE}]}],
        })
        self.cipher = Resource(self, "cipher-pass", type="random_password",
                               config={"length": 64, "special": False})
        node.boot["pg_backups"] = {"stanza": settings.stanza, "bucket": settings.bucket,
                                   "endpoint": settings.endpoint,
                                   "retention_full": settings.retention_full}
        node.add_secret("pgbackrest_cipher_pass", self.cipher.attr("result"))
        node.add_secret("pgbackrest_s3_key",
                        f"${{sensitive({self.token.attr('id').expression})}}")
        node.add_secret("pgbackrest_s3_key_secret",
                        f"${{sha256({self.token.attr('value').expression})}}")
        stack = stack_of(self)
        Output(stack, CIPHER_OUTPUT, value=self.cipher.attr("result"), sensitive=True,
               description="pgBackRest repository cipher passphrase (edgekit pg backups).")
        Output(stack, BUCKET_OUTPUT, value=self.bucket.name_ref,
               description="R2 bucket of the Postgres backups.")
