"""pgBackRest throughput and recovery point, with the settings edgekit generates.

    .venv/bin/python bench/pg_backup.py [--scale 68] [--archive-timeout 60]

A PostgreSQL of the nodes' major version (tests/pg_server.py) archiving through the generated
wrapper and pgbackrest.conf into SeaweedFS over TLS on loopback (tests/pgbackrest_rig.py),
filled with `pgbench -i -s SCALE` (68 is about 1 GB), then: a full backup (MB/s of database
size), a restore into the emptied data directory (MB/s; and until the server is promoted), and
the recovery point: how long a lone commit waits until its WAL segment is in the repository
(archive_timeout + archive-push), plus the push latency of a forced segment switch.
A printout, not a timed test. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pg_server import pg_bin
from tests.pgbackrest_rig import backed_up_postgres


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=68)
    parser.add_argument("--archive-timeout", type=int, default=60)
    parser.add_argument("--data", choices=("pgbench", "random"), default="pgbench",
                        help="pgbench tables (compress ~20x) or random hex text (~2x)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-pg-") as tmp, \
            backed_up_postgres(Path(tmp), archive_timeout_seconds=args.archive_timeout) as rig:
        start = time.monotonic()
        if args.data == "pgbench":
            done = rig.pg.pg(str(pg_bin() / "pgbench"), "-i", "-q", "-s", str(args.scale),
                             "-h", str(rig.pg.run), "-p", str(rig.pg.port), "-U", "postgres",
                             "postgres")
            assert done.returncode == 0, done.stderr
        else:  # about 15 MB per scale unit, like pgbench
            with rig.pg.connect("postgres", autocommit=True) as conn:
                conn.execute("CREATE TABLE noise (v text)")
                for _ in range(args.scale):
                    conn.execute("INSERT INTO noise SELECT string_agg(md5(random()::text), '') "
                                 "FROM generate_series(1, 8) g, generate_series(1, 40000) r "
                                 "GROUP BY r")
        with rig.pg.connect("postgres") as conn:
            row = conn.execute("SELECT sum(pg_database_size(datname)) FROM pg_database"
                               ).fetchone()
        size_mb = int(row[0]) / 2**20 if row else 0.0
        print(f"database: {size_mb:.0f} MB ({args.data} -s {args.scale}, "
              f"loaded in {time.monotonic() - start:.0f} s)")
        rig.wait_archived()

        start = time.monotonic()
        rig.ok("--type=full", "backup", timeout=3600)
        backup_s = time.monotonic() - start
        print(f"full backup: {backup_s:.1f} s, {size_mb / backup_s:.1f} MB/s")
        repo = rig.ok("info")
        for line in repo.splitlines():
            if "backup set size" in line:
                print(f"repository: {line.strip()}")

        # recovery point: a lone commit, then wait for its segment to be archived
        with rig.pg.connect("postgres", autocommit=True) as conn:
            conn.execute("CREATE TABLE rpo (at timestamptz DEFAULT clock_timestamp())")
            row = conn.execute("INSERT INTO rpo DEFAULT VALUES "
                               "RETURNING pg_walfile_name(pg_current_wal_lsn())").fetchone()
            assert row is not None
            segment, committed = str(row[0]), time.monotonic()
            while True:
                last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                if last and last[0] and str(last[0]) >= segment:
                    break
                if time.monotonic() - committed > args.archive_timeout + 120:
                    raise SystemExit("lone commit not archived in time")
                time.sleep(0.05)
            lone = time.monotonic() - committed
        start = time.monotonic()
        rig.wait_archived()
        push = time.monotonic() - start
        print(f"recovery point: lone commit archived after {lone:.1f} s "
              f"(archive_timeout {args.archive_timeout} s); forced switch pushed in {push:.2f} s")

        rig.stop("immediate")
        rig.destroy_data()
        start = time.monotonic()
        rig.ok("--delta", "restore", timeout=3600)
        restore_s = time.monotonic() - start
        rig.start()
        rig.wait_promoted()
        total_s = time.monotonic() - start
        print(f"restore: {restore_s:.1f} s, {size_mb / restore_s:.1f} MB/s; "
              f"until promoted (WAL replayed): {total_s:.1f} s")


if __name__ == "__main__":
    main()
