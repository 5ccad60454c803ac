"""``edgekit pg``: the environment's Postgres backups, from the operator's machine.

    edgekit pg backups --stack prod                 list backups and the WAL archive (R2)
    edgekit pg restore --stack prod --to TIME       print the restore onto a fresh primary
    tofu output -json | edgekit pg bootstrap --stack prod
                                                    roles and grants on a managed Postgres
    edgekit pg import-ca --stack prod [--rotate]    the primary's TLS authority -> CUE

``backups`` runs the real pgBackRest (``pgbackrest info``) against the stack's repository
with the settings generated from CUE; the secrets come from the environment, never from a
file: ``EDGEKIT_PG_CIPHER_PASS`` (``tofu output -raw pg_backup_cipher_pass``) and an R2 token
as ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``. Any ``PGBACKREST_*`` variable set by the
caller overrides the generated settings (pgBackRest reads its environment before its file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgekit.constructs.pg_tls import CA_OUTPUT
from edgekit.core.errors import EdgekitError
from edgekit.pg.backup import (
    BackupError,
    BackupSettings,
    pgbackrest_conf,
    restore_commands,
    settings_for,
)

EXIT_OK, EXIT_PROBLEMS = 0, 1
Regenerate = Callable[[Path], list[Path]]
"""Re-export CUE and rewrite the generated files; returns the files written."""
CIPHER_ENV = "EDGEKIT_PG_CIPHER_PASS"
TIMEOUT = 300


class PgError(EdgekitError):
    """A backup listing or restore the operator asked for cannot be done."""


def _settings(stack: str) -> BackupSettings:
    from edgekit.cue.model import Estate

    root = Path.cwd()
    names = Estate.env_names(root)
    if stack not in names:
        raise PgError(f"no environment {stack!r} in cue/ (have: {', '.join(names)})")
    env = Estate.load(root, stack).env
    if not any("postgres" in n.roles for n in env.nodes.values()):
        raise PgError(f"environment {stack!r} has no node with role 'postgres': no backups")
    try:
        return settings_for(env)
    except BackupError as err:
        raise PgError(f"cue/envs.cue envs.{stack}.postgres.backups: {err}") from err


def _secrets_env() -> dict[str, str]:
    missing = [v for v in (CIPHER_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
               if not os.environ.get(v)]
    if missing:
        raise PgError(f"set {', '.join(missing)}: the repository passphrase "
                      f"({CIPHER_ENV}=$(tofu output -raw pg_backup_cipher_pass)) and an R2 "
                      "token that may read the backup bucket")
    return {
        "PGBACKREST_REPO1_CIPHER_PASS": os.environ[CIPHER_ENV],
        "PGBACKREST_REPO1_S3_KEY": os.environ["AWS_ACCESS_KEY_ID"],
        "PGBACKREST_REPO1_S3_KEY_SECRET": os.environ["AWS_SECRET_ACCESS_KEY"],
    }


def backup_info(settings: BackupSettings) -> list[dict[str, Any]]:
    """``pgbackrest info --output=json`` of the stack's repository."""
    binary = shutil.which("pgbackrest")
    if binary is None:
        raise PgError("pgbackrest is not installed (apt-get install pgbackrest)")
    with tempfile.TemporaryDirectory(prefix="edgekit-pg-") as tmp:
        conf = Path(tmp) / "pgbackrest.conf"
        conf.write_text(pgbackrest_conf(settings, extra_global={
            "log-path": tmp, "lock-path": tmp, "spool-path": tmp, "log-level-file": "off",
            "log-level-console": "warn"}))
        env = {**os.environ, **_secrets_env(), "PGBACKREST_CONFIG": str(conf)}
        env = {**env, **{k: v for k, v in os.environ.items() if k.startswith("PGBACKREST_")}}
        done = subprocess.run([binary, f"--stanza={settings.stanza}", "--output=json", "info"],
                              capture_output=True, encoding="utf-8", errors="replace",
                              env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise PgError(f"pgbackrest info failed ({done.returncode}): "
                      f"{(done.stderr or done.stdout).strip()}")
    try:
        result: list[dict[str, Any]] = json.loads(done.stdout)
    except ValueError as err:
        raise PgError("pgbackrest info returned unreadable output; a wrong "
                      f"{CIPHER_ENV} decrypts the repository's info files to garbage") from err
    return result


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_info(info: list[dict[str, Any]]) -> str:
    lines = []
    for stanza in info:
        status = stanza.get("status", {})
        lines.append(f"stanza {stanza.get('name')}: {status.get('message', '?')}"
                     f" (cipher {stanza.get('cipher', '?')})")
        for repo in stanza.get("repo", []):
            repo_status = repo.get("status", {})
            if repo_status.get("code", 0) != 0:
                lines.append(f"  repo{repo.get('key', '?')}: {repo_status.get('message', '?')}")
        for archive in stanza.get("archive", []):
            lines.append(f"  WAL archive {archive.get('min')} .. {archive.get('max')}")
        lines.append(f"  {'label':<36} {'type':<5} {'started (UTC)':<20} "
                     f"{'stopped (UTC)':<20} {'db MB':>9} {'repo MB':>9}")
        for backup in stanza.get("backup", []):
            stamp = backup.get("timestamp", {})
            size = backup.get("info", {})
            repo = size.get("repository", {})
            lines.append(
                f"  {backup.get('label', '?'):<36} {backup.get('type', '?'):<5} "
                f"{_when(stamp.get('start', 0)):<20} {_when(stamp.get('stop', 0)):<20} "
                f"{size.get('size', 0) / 2**20:>9.1f} {repo.get('size', 0) / 2**20:>9.1f}")
        if not stanza.get("backup"):
            lines.append("  (no backup yet)")
    return "\n".join(lines)


def parse_target(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise PgError(f"--to {text!r}: expected an ISO 8601 time with a zone, e.g. "
                      "2026-11-30T12:00:00Z") from err
    if moment.tzinfo is None:
        raise PgError(f"--to {text!r} has no time zone; add one, e.g. {text}Z or {text}+09:00")
    return moment


def restore_procedure(settings: BackupSettings, target: datetime | None) -> str:
    """The documented restore onto a fresh primary (ADR 0011), as shell commands."""
    try:
        (argv,) = restore_commands(settings, target)
    except BackupError as err:
        raise PgError(str(err)) from err
    quoted = " ".join(f"'{a}'" if " " in a else a for a in argv)
    aim = f"to {target.isoformat()}" if target else "to the end of the archived WAL"
    return "\n".join([
        f"# Restore the Postgres of {settings.stanza!r} {aim} (ADR 0011).",
        "# 1. A fresh primary: replace the node (tofu apply -replace=...) or use the current",
        "#    one; it boots with the same keys (/run/keys/edgekit/pgbackrest_*) and",
        "#    /etc/pgbackrest/pgbackrest.conf. Then on the primary, as root:",
        "systemctl stop edgekit-pgbackrest-full.timer edgekit-pgbackrest-diff.timer",
        "systemctl stop edgekit-pg-bootstrap.service postgresql.service",
        f"runuser -u postgres -- {quoted}",
        "systemctl start postgresql.service   # replays WAL up to the target, then promotes",
        "runuser -u postgres -- psql -Atc 'select pg_is_in_recovery()'   # expect: f",
        "# 2. A new timeline began: take a full backup now, then re-enable the timers.",
        "systemctl start edgekit-pgbackrest-full.service",
        "systemctl start edgekit-pgbackrest-full.timer edgekit-pgbackrest-diff.timer",
    ])


def cmd_pg_backups(args: argparse.Namespace) -> int:
    settings = _settings(args.stack)
    info = backup_info(settings)
    print(json.dumps(info, indent=2, sort_keys=True) if args.json else format_info(info))
    ok = all(s.get("status", {}).get("code") == 0 for s in info)
    return EXIT_OK if ok else EXIT_PROBLEMS


def cmd_pg_restore(args: argparse.Namespace) -> int:
    settings = _settings(args.stack)
    target = parse_target(args.to) if args.to else None
    print(restore_procedure(settings, target))
    return EXIT_OK


def cmd_pg_bootstrap(args: argparse.Namespace) -> int:
    """Apply the roles, databases and grants to a managed Postgres (ADR 0012) as its admin,
    with the admin URL and the role passwords from `tofu output -json` on standard input."""
    from urllib.parse import unquote, urlsplit

    from edgekit.cue.model import Estate
    from edgekit.pg.managed_bootstrap import managed_bootstrap_sql, password_script

    root = Path.cwd()
    if args.stack not in Estate.env_names(root):
        raise PgError(f"no environment {args.stack!r} in cue/")
    estate = Estate.load(root, args.stack)
    try:
        outputs = json.loads(sys.stdin.read())
        url = str(outputs["pg_admin_url"]["value"])
    except (ValueError, KeyError, TypeError) as err:
        raise PgError("expected `tofu output -json` of the stack on standard input, with the "
                      "sensitive output pg_admin_url (a stack whose postgres.kind is "
                      "\"managed\")") from err
    passwords = {}
    for service in estate.services.values():
        role = service.pg_role
        entry = outputs.get(f"pg_password_{role}") if role else None
        if role and isinstance(entry, dict) and isinstance(entry.get("value"), str):
            passwords[role] = entry["value"]
    admin = unquote(urlsplit(url).username or "")
    psql = shutil.which("psql")
    if psql is None:
        raise PgError("psql is not installed (apt-get install postgresql-client)")
    try:
        script = managed_bootstrap_sql(estate.services, admin) + password_script(passwords)
    except ValueError as err:
        raise PgError(str(err)) from err
    done = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                          input=script, capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        detail = done.stderr.replace(url, "<pg_admin_url>").strip()
        raise PgError(f"the bootstrap failed as {admin!r}: {detail}")
    print(f"edgekit: roles, databases and grants of {args.stack} applied as {admin!r}; "
          f"passwords set for {', '.join(sorted(passwords)) or 'no role'}", file=sys.stderr)
    return EXIT_OK


def cmd_pg_import_ca(args: argparse.Namespace) -> int:
    """The authority the primary published (pg-tls/<stack>/<node>.crt in the logs bucket)
    into ``cue/outputs/<stack>.pg-tls.cue`` as ``pg_tls_ca``, trust on first use (ADR 0025),
    then re-export and regenerate."""
    from botocore.exceptions import BotoCoreError, ClientError

    from edgekit.cue.model import Estate
    from edgekit.cue.pg_ca import file_name, import_published, object_key
    from edgekit.obs.cli import resolve_sink
    from edgekit.obs.sync import make_client, refusal, resolve_endpoint

    root = Path.cwd()
    if args.stack not in Estate.env_names(root):
        raise PgError(f"no environment {args.stack!r} in cue/ (have: "
                      f"{', '.join(Estate.env_names(root))})")
    env = Estate.load(root, args.stack).env
    primary = env.primary
    if primary is None:
        raise PgError(f"environment {args.stack!r} has no self-hosted Postgres primary (a node "
                      "with role 'postgres' and postgres.kind \"self\"): there is no node "
                      "authority to import")
    bucket, endpoint = resolve_sink(args, root)
    client = make_client(endpoint_url=endpoint, profile=args.profile)
    current = env.observed_value(CA_OUTPUT)
    try:
        done = import_published(root, client, bucket, args.stack, primary,
                                current if isinstance(current, str) else None,
                                rotate=args.rotate)
    except (BotoCoreError, ClientError) as exc:  # said the way `logs sync` says them
        raise refusal(exc, bucket, resolve_endpoint(endpoint)) from exc
    target = f"cue/outputs/{file_name(args.stack)}"
    if done is None:
        print(f"edgekit: nothing published at s3://{bucket}/{object_key(args.stack, primary)} "
              f"yet: has {primary} booted (its edgekit-pg-tls-publish unit puts its authority "
              "there after edgekit-pg-tls)? Nothing written", file=sys.stderr)
        return EXIT_PROBLEMS
    published = done.authority
    if not done.written:
        print(f"edgekit: pg_tls_ca of {args.stack} is already {primary}'s authority "
              f"({published.short}); {target} left as it was", file=sys.stderr)
        return EXIT_OK
    change = done.change
    said = "rotated to" if change == "rotated" else "took"
    print(f"edgekit: {said} {primary}'s authority ({published.short}, {published.subject}, "
          f"valid until {published.not_after}) into {target}", file=sys.stderr)
    for path in args.regenerate(root):
        print(f"edgekit: regenerated {path.relative_to(root)}", file=sys.stderr)
    print(f"edgekit: next: `edgekit synth {args.stack}` and apply (Hyperdrive pins it), or "
          f"`edgekit up {args.stack}`", file=sys.stderr)
    return EXIT_OK


def add_pg_parser(sub: Any, regenerate: Regenerate) -> None:
    """Register ``pg``; `regenerate` (re-export CUE, rewrite the generated files) runs after
    ``import-ca`` wrote into cue/outputs/."""
    from edgekit.obs.cli import add_sink_arguments

    pg = sub.add_parser("pg", help="the environment's Postgres: backups, restore, its TLS "
                        "authority")
    pg_sub = pg.add_subparsers(dest="pg_command", required=True, metavar="COMMAND")
    backups = pg_sub.add_parser(
        "backups", help="list the backups in the stack's R2 repository (pgbackrest info)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    backups.add_argument("--stack", required=True, help="the environment, e.g. prod")
    backups.add_argument("--json", action="store_true", help="pgBackRest's JSON as is")
    backups.set_defaults(func=cmd_pg_backups)
    restore = pg_sub.add_parser(
        "restore", help="print the restore of the stack's Postgres to a point in time",
        description="Print the commands that restore the primary, onto a fresh node, to "
        "--to (ISO 8601 with a zone), or to the end of the archived WAL without --to.")
    restore.add_argument("--stack", required=True, help="the environment, e.g. prod")
    restore.add_argument("--to", help="target time, e.g. 2026-11-30T12:00:00Z")
    restore.set_defaults(func=cmd_pg_restore)
    boot = pg_sub.add_parser(
        "bootstrap", help="apply roles, databases and grants to a managed Postgres",
        description="Read `tofu output -json` of the stack on standard input (its sensitive "
        "pg_admin_url and pg_password_<role> outputs) and apply the idempotent bootstrap of "
        "ADR 0004 as the managed database's admin role (ADR 0012). Example: "
        "tofu output -json | edgekit pg bootstrap --stack prod")
    boot.add_argument("--stack", required=True, help="the environment, e.g. prod")
    boot.set_defaults(func=cmd_pg_bootstrap)
    ca = pg_sub.add_parser(
        "import-ca", help="import the primary's TLS authority (public) into cue/outputs/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read pg-tls/<stack>/<primary>.crt from the stack's logs bucket (the\n"
        "primary's edgekit-pg-tls-publish unit puts its certificate authority there, ADR\n"
        "0025), check it is one PEM certificate authority, write it as the output pg_tls_ca\n"
        "into cue/outputs/<stack>.pg-tls.cue (checked with cue vet first), then re-export and\n"
        "regenerate. Hyperdrive pins it (verify-full) on the next synth and apply; without it\n"
        "no Hyperdrive config is made. `edgekit up` runs this itself before its Hyperdrive\n"
        "step.\n\n"
        "Trust on first use: an authority that differs from the one in CUE is refused unless\n"
        "--rotate says it was replaced on purpose. Exit 0: imported, or nothing new; 1:\n"
        "nothing published yet, a changed authority without --rotate, or an object that is\n"
        "not a certificate authority (nothing written).\n\n"
        "Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (an R2 token that can read\n"
        "the logs bucket), or --profile / AWS_PROFILE.")
    ca.add_argument("--stack", required=True, help="the environment, e.g. prod")
    ca.add_argument("--rotate", action="store_true",
                    help="accept an authority that differs from the one in CUE (it was "
                    "replaced on the primary on purpose)")
    add_sink_arguments(ca)
    ca.set_defaults(func=cmd_pg_import_ca, regenerate=regenerate)


