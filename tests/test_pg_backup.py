"""Backups that restore: pgBackRest settings as data, and the restore drill with the real
PostgreSQL of the nodes' major (17), the pgBackRest they run (2.57) and SeaweedFS
(signatures checked, over TLS)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.pg.backup import (
    SECRETS,
    BackupError,
    BackupSettings,
    archive_settings,
    nixos_pgbackrest,
    pgbackrest_conf,
    restore_commands,
    wrapper_script,
)
from tests.pg_server import tool_path
from tests.pgbackrest_rig import Rig, backed_up_postgres

SETTINGS = BackupSettings(stanza="prod", bucket="edgekit-pg-prod",
                          endpoint="0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com")


# -- settings as data ------------------------------------------------------------------------

def test_conf_is_encrypted_r2_with_retention_and_no_secret() -> None:
    conf = pgbackrest_conf(SETTINGS)
    lines = conf.splitlines()
    assert lines[0] == "[global]" and "[prod]" in lines
    for line in ("repo1-type=s3", "repo1-cipher-type=aes-256-cbc", "repo1-retention-full=4",
                 "repo1-s3-bucket=edgekit-pg-prod", "repo1-s3-uri-style=path",
                 "archive-async=y", "pg1-path=/var/lib/postgresql/15"):
        assert line in lines
    assert not any(k in conf for k in ("cipher-pass", "s3-key"))


def test_a_secret_in_the_conf_is_refused() -> None:
    with pytest.raises(BackupError, match=r"repo1-cipher-pass.*environment"):
        pgbackrest_conf(SETTINGS, extra_global={"repo1-cipher-pass": "x"})


def test_bad_settings_are_reported_together() -> None:
    with pytest.raises(BackupError) as err:
        BackupSettings(stanza="Prod", bucket="x", endpoint="https://r2", retention_full=0,
                       full_calendar="weekly; rm -rf /")
    text = str(err.value)
    for part in ("stanza 'Prod'", "bucket 'x'", "endpoint 'https://r2'", "retention_full 0",
                 "full_calendar"):
        assert part in text


def test_wrapper_reads_every_secret_from_its_file() -> None:
    script = wrapper_script(key_dir="/run/keys/edgekit")
    for name, variable in SECRETS.items():
        assert f'{variable}="$(cat /run/keys/edgekit/{name})"' in script
    assert "export PGBACKREST_CONFIG=/etc/pgbackrest/pgbackrest.conf" in script
    assert script.rstrip().endswith('exec pgbackrest "$@"')


def test_archive_settings_and_nixos_side() -> None:
    archive = archive_settings(SETTINGS)
    assert archive["archive_mode"] == "on" and archive["archive_timeout"] == 60
    assert archive["archive_command"] == "edgekit-pgbackrest --stanza=prod archive-push %p"
    nixos = nixos_pgbackrest(SETTINGS)
    assert nixos["backups"]["full"]["calendar"] == "Sun *-*-* 03:00:00"
    assert nixos["backups"]["diff"]["command"][-2:] == ["--type=diff", "backup"]
    # everything but pg1-path, which nix/pgbackrest.nix appends from the evaluated
    # services.postgresql.dataDir (tests/test_nix_nodes.py)
    assert pgbackrest_conf(SETTINGS).replace(f"pg1-path={SETTINGS.pg_path}\n", "") == \
        nixos["conf"]
    assert "pg1-path" not in nixos["conf"]
    assert nixos["directories"] == ["/var/spool/pgbackrest", "/var/log/pgbackrest",
                                    "/run/pgbackrest"]


def test_cli_prints_the_restore(project_cwd: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pg", "restore", "--stack", "prod", "--to", "2026-11-30T12:00:00+09:00"]) == 0
    out = capsys.readouterr().out
    assert ("runuser -u postgres -- edgekit-pgbackrest --stanza=prod --delta --type=time "
            "'--target=2026-11-30 12:00:00.000000+0900' --target-action=promote restore") in out
    assert main(["pg", "restore", "--stack", "prod", "--to", "2026-11-30 12:00"]) == 1
    assert "has no time zone" in capsys.readouterr().err
    assert main(["pg", "backups", "--stack", "nope"]) == 1
    assert "no environment 'nope'" in capsys.readouterr().err


def test_restore_needs_a_time_zone() -> None:
    with pytest.raises(BackupError, match="no time zone"):
        restore_commands(SETTINGS, datetime(2026, 11, 30, 12, 0))
    argv = restore_commands(SETTINGS, datetime(2026, 11, 30, 12, 0, 1, 5, tzinfo=UTC))[0]
    assert "--target=2026-11-30 12:00:01.000005+0000" in argv
    assert argv[-1] == "restore" and "--target-action=promote" in argv


# -- the drill -------------------------------------------------------------------------------

def _insert(rig: Rig, batch: str, count: int) -> None:
    with rig.pg.connect("postgres", autocommit=True) as conn:
        conn.execute("INSERT INTO drill (batch, n) SELECT %s, g FROM generate_series(1, %s) g",
                     (batch, count))


def _batches(rig: Rig) -> dict[str, int]:
    with rig.pg.connect("postgres") as conn:
        rows = conn.execute("SELECT batch, count(*) FROM drill GROUP BY batch").fetchall()
    return {str(b): int(n) for b, n in rows}


def _restore(rig: Rig, target: datetime | None) -> None:
    rig.stop("immediate")
    rig.destroy_data()
    assert list(rig.pg.data.iterdir()) == []
    for argv in restore_commands(rig.settings, target, command=str(rig.wrapper)):
        done = subprocess.run(rig.pg.as_postgres(*argv), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL, cwd=rig.pg.run)
        assert done.returncode == 0, done.stdout + done.stderr
    rig.start()
    rig.wait_promoted()


def test_point_in_time_restore_drill(project_cwd: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    # stanza and bucket as CUE gives them for staging, so `edgekit pg backups` finds them
    with backed_up_postgres(tmp_path, stanza="staging", bucket="edgekit-pg-staging") as rig:
        with rig.pg.connect("postgres", autocommit=True) as conn:
            conn.execute("CREATE TABLE drill (batch text NOT NULL, n int NOT NULL)")
        _insert(rig, "before-backup", 1000)
        rig.ok("--type=full", "backup", timeout=120)
        time.sleep(2.0)  # pgBackRest keeps a backup's stop time in whole seconds
        _insert(rig, "after-backup", 500)
        noted = rig.server_time()
        time.sleep(1.0)  # commits after the noted time are clearly after it
        _insert(rig, "too-late", 250)
        rig.wait_archived()

        _restore(rig, noted)

        assert _batches(rig) == {"before-backup": 1000, "after-backup": 500}
        info = rig.ok("info")
        assert "full backup" in info and "status: ok" in info

        # the operator's view: `edgekit pg backups` with the real pgbackrest, CUE settings
        monkeypatch.setenv("PATH", tool_path())  # the pinned pgbackrest, not another one
        for name, value in {**rig.repo_env, "EDGEKIT_PG_CIPHER_PASS": rig.cipher_pass,
                            "AWS_ACCESS_KEY_ID": rig.s3.access_key,
                            "AWS_SECRET_ACCESS_KEY": rig.s3.secret_key}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert main(["pg", "backups", "--stack", "staging"]) == 0
        listing = capsys.readouterr().out
        assert "stanza staging: ok (cipher aes-256-cbc)" in listing
        assert len(re.findall(r"^  \d{8}-\d{6}F +full ", listing, re.MULTILINE)) == 1, listing

        monkeypatch.setenv("EDGEKIT_PG_CIPHER_PASS", "not-the-passphrase")
        assert main(["pg", "backups", "--stack", "staging"]) == 1
        wrong = capsys.readouterr()
        assert "20261" not in wrong.out  # no backup listed without the right passphrase


def test_an_interrupted_backup_leaves_the_previous_one_restorable(tmp_path: Path) -> None:
    with backed_up_postgres(tmp_path) as rig:
        with rig.pg.connect("postgres", autocommit=True) as conn:
            conn.execute("CREATE TABLE drill (batch text NOT NULL, n int NOT NULL)")
            # ~60 MB that compresses badly, so the second backup takes long enough to cut
            conn.execute("CREATE TABLE bulk AS SELECT md5(g::text) || md5((g * 7)::text) AS v "
                         "FROM generate_series(1, 600000) g")
        _insert(rig, "first", 100)
        rig.ok("--type=full", "backup", timeout=120)
        first = rig.ok("info")
        _insert(rig, "second", 100)

        argv = rig.pg.as_postgres(str(rig.wrapper), f"--stanza={rig.settings.stanza}",
                                  "--type=full", "--log-level-console=detail", "backup")
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True, cwd=rig.pg.run) as proc:
            assert proc.stdout is not None
            seen = []
            deadline = time.monotonic() + 60
            for line in proc.stdout:  # cut it once it is copying files
                seen.append(line)
                if "backup file" in line or time.monotonic() > deadline:
                    break
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert any("backup file" in line for line in seen), "".join(seen)
        assert proc.returncode != 0

        after = rig.ok("info")
        assert after.count("full backup:") == first.count("full backup:") == 1
        assert "status: ok" in after

        _restore(rig, None)  # the newest complete backup, then all archived WAL

        assert _batches(rig) == {"first": 100, "second": 100}
        # and the repository takes the next backup (on the restore's new timeline)
        rig.ok("--type=full", "backup", timeout=180)
        assert rig.ok("info").count("full backup:") == 2


# -- the stack side: bucket, scoped token, secrets as references --------------------------------

def test_pg_backups_in_the_stack() -> None:
    import json as _json

    from stacks import make_app

    (result,) = make_app().synth_results(["prod"])
    document = result.document
    buckets = {b["name"] for b in document["resource"]["cloudflare_r2_bucket"].values()}
    assert "edgekit-pg-prod" in buckets
    token = document["resource"]["cloudflare_account_token"]["edge_pg_backups_token"]
    assert token["account_id"] == "0123456789abcdef0123456789abcdef"  # ADR 0032
    (policy,) = token["policies"]
    assert _json.loads(policy["resources"]) == {
        "com.cloudflare.edge.r2.bucket.0123456789abcdef0123456789abcdef_default_edgekit-pg-prod":
            "*"}
    assert document["resource"]["random_password"]["edge_pg_backups_cipher_pass"] == {
        "length": 64, "special": False}
    secrets = document["locals"]["nodes_pg_tokyo_boot"]["secrets"]
    assert secrets["pgbackrest_cipher_pass"] == \
        "${random_password.edge_pg_backups_cipher_pass.result}"
    assert secrets["pgbackrest_s3_key_secret"].startswith("${sha256(")
    assert document["output"]["pg_backup_cipher_pass"]["sensitive"] is True
    boot = document["locals"]["nodes_pg_tokyo_boot"]["pg_backups"]
    assert boot == {"stanza": "prod", "bucket": "edgekit-pg-prod", "retention_full": 4,
                    "endpoint": "0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"}
    # only the primary gets the backup secrets
    edge = document["locals"]["nodes_edge_1_boot"]["secrets"]
    assert not any(name.startswith("pgbackrest") for name in edge)
