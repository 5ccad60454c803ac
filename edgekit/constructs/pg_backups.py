"""PgBackups: the Postgres primary's backups in an R2 bucket of its own (ADR 0011).

It adds: the bucket, a bucket lock on the keys pgBackRest writes once (WAL and backup
sets, for `edgekit.pg.lock.backup_lock_days`: shorter than pgBackRest's retention lets a file
live, ADR 0037), an API token that may read and write objects of that bucket only, and the
repository's cipher passphrase (``random_password``, 64 characters). The token's
S3 credentials and the passphrase reach the primary as sensitive values inside its boot
document (``pgbackrest_*`` secrets, written to ``/run/keys/edgekit`` and read by the
``edgekit-pgbackrest`` wrapper); none of them appears in the JSON. The passphrase also
leaves the stack as a sensitive output, so an operator can list and restore backups
(``edgekit pg backups`` / ``edgekit pg restore``) with ``tofu output -raw``. pgBackRest
itself (archive settings, timers) is NixOS configuration, generated from the same CUE
values (``nix/pgbackrest/<env>.json``).
"""

from __future__ import annotations

import json

from edgekit.constructs.node import VpsNode
from edgekit.constructs.r2 import R2_BUCKET_ITEM_WRITE, R2Bucket, bucket_lock, bucket_scope
from edgekit.core.construct import Construct
from edgekit.core.elements import Output, Resource, stack_of
from edgekit.core.errors import ConstructError
from edgekit.pg.backup import BackupSettings
from edgekit.pg.lock import backup_lock_days, lock_prefixes

# Cloudflare's permission group "Workers R2 Storage Bucket Item Read" (Write is in r2.py).
R2_BUCKET_ITEM_READ = "6a018a9f2fc74eb6b293b0c548f38b39"
CIPHER_OUTPUT = "pg_backup_cipher_pass"
BUCKET_OUTPUT = "pg_backup_bucket"


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
                "backups, or set postgres.backups.lock_days in cue/envs.cue (ADR 0037)")
        self.lock = bucket_lock(self, "lock", account_id=account_id,
                                bucket=self.bucket.name_ref,
                                prefixes=lock_prefixes(settings.stanza), days=days)
        scope_key = bucket_scope(account_id, settings.bucket)
        self.token = Resource(self, "token", type="cloudflare_api_token", config={
            "name": f"edgekit pg backups {settings.bucket}",
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
