"""The Postgres primary as its evaluated units run it (the node harness, issue 22): cold start,
WAL archive lag under steady writes, and the recovery point after a kill -9.

    .venv/bin/python bench/pg_node.py [--rate 200] [--seconds 90]

prod's pg-tokyo in its own network namespace (mesh address on loopback), a loop device as
its data volume, "R2" as SeaweedFS over TLS behind R2's hostname (tests/node_harness/):

- cold start: boot document to "accepting service connections" (the api role logs in with
  its password over TLS on the mesh address), on a blank volume (formatted, initdb) and
  again on the same volume (a restart);
- archive lag: `--rate` single-row commits per second for `--seconds`; every second, the age
  of the newest commit whose WAL segment is in the repository (pg_stat_archiver);
- recovery point: after the writes, kill -9 of the postmaster; a point-in-time restore of
  the newest state onto a new node from the archive; how many seconds of acknowledged
  commits it lacks.

A printout, not a timed test. Needs root (namespaces, loop devices, mounts), like `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgekit.nix.evaluate import evaluate_node
from tests.conftest import ROOT
from tests.node_harness.node import NodeRun, node_namespace, running
from tests.node_harness.packages import (
    package_shims,
    read_only_extras,
    store_inventory,
)
from tests.node_harness.scenario import (
    conf_value,
    hyperdrive_probe,
    loop_device,
    mounted,
    postgres_ready,
    psql,
    r2_stand_in,
    restored_node,
    write_boot,
)

PRIMARY = "10.100.0.1"
CLIENT = "10.100.0.21"
"""edge-tokyo's mesh address, on the primary's loopback here (the mesh is test_node_scenario's)."""
SECRETS = {"pg_password_svc_api_rw": "bench-api", "pg_password_svc_web_ro": "bench-web",
           "pgbackrest_cipher_pass": "bench-cipher", "pg_tunnel_token": "t",
           "log_sink_access_key_id": "k", "log_sink_secret_access_key": "s"}
UNITS = ("postgresql", "postgresql-setup", "edgekit-pg-bootstrap", "edgekit-pgbackrest-stanza")


def node_for(base: Path, netns: str, report: dict[str, object],
             inventory: dict[str, object]) -> NodeRun:
    base.mkdir(parents=True)
    return NodeRun("pg-tokyo", dict(report), base, netns, packages=package_shims(base),
                   extra_ro=read_only_extras(ROOT), inventory=dict(inventory), repo=ROOT,
                   ready={"postgresql": postgres_ready})


def accepting(node: NodeRun) -> None:
    """Until the api role logs in with its password, over TLS verified against the node's
    authority, to the mesh address, from edge-tokyo's mesh address (where pg_hba admits it)."""
    ca = node.path("/var/lib/edgekit/pg-tls/ca.crt")
    deadline = time.monotonic() + 300
    while True:
        if ca.exists():
            answer = hyperdrive_probe(node.netns, ca, "pg-origin.edgekit.example", PRIMARY,
                                      source=CLIENT, user="svc_api_rw", db="api",
                                      password=SECRETS["pg_password_svc_api_rw"])
            if answer.get("ok"):
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"not accepting service connections after 300 s: {answer}")
        time.sleep(0.05)


def archive_lag(now: float, samples: list[tuple[float, int]], archived: str) -> float:
    """Seconds since the WAL after the last archived segment began to be written (0 when
    everything written is archived). Segments are 16 MiB, timeline 1."""
    if not archived:
        return now - samples[0][0]
    segment_end = (int(archived[8:16], 16) * 256 + int(archived[16:24], 16) + 1) * (16 << 20)
    waiting = [when for when, lsn in samples if lsn > segment_end]
    return now - waiting[0] if waiting else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=200, help="commits per second")
    parser.add_argument("--seconds", type=int, default=90, help="length of the write load")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    report = evaluate_node("prod", "pg-tokyo")
    inventory = store_inventory(ROOT, "pg-tokyo")
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-node-"))
    with contextlib.ExitStack() as stack:
        netns = stack.enter_context(node_namespace("bench"))
        for address in (f"{PRIMARY}/24", f"{CLIENT}/32"):
            subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", address, "dev",
                            "lo"], check=True, timeout=30)
        device = stack.enter_context(loop_device(tmp / "volume.img", 1024))
        node = stack.enter_context(running(node_for(tmp / "pg", netns, report, inventory)))
        r2 = stack.enter_context(r2_stand_in(tmp / "r2", node,
                                             conf_value(report, "repo1-s3-endpoint"),
                                             conf_value(report, "repo1-s3-bucket")))
        secrets = {**SECRETS, "pgbackrest_s3_key": r2.s3.access_key,
                   "pgbackrest_s3_key_secret": r2.s3.secret_key}
        write_boot(node, secrets, postgres={"volume_device": device})
        start = time.monotonic()
        node.start("edgekit-keys", "edgekit-pg-volume")
        stack.enter_context(mounted(device, node.path("/var/lib/postgresql")))
        node.start(*UNITS)
        accepting(node)
        print(f"cold start, blank volume (format, initdb, TLS, bootstrap, stanza): "
              f"{time.monotonic() - start:.2f} s")
        node.stop()
        start = time.monotonic()
        node.start(*UNITS)
        accepting(node)
        print(f"restart on the same volume: {time.monotonic() - start:.2f} s")

        node.start("edgekit-pgbackrest-full")  # the base backup a restore starts from
        psql(node, "CREATE TABLE bench (id bigserial PRIMARY KEY, at timestamptz NOT NULL "
                   "DEFAULT clock_timestamp())", db="api")
        lags: list[float] = []
        samples: list[tuple[float, int]] = []  # (when, WAL position then)
        end = time.monotonic() + args.seconds
        batch = max(1, args.rate // 10)
        sql = "INSERT INTO bench DEFAULT VALUES; " * batch
        next_sample = time.monotonic()
        while time.monotonic() < end:
            started = time.monotonic()
            psql(node, sql, db="api")  # a tenth of a second's commits, each its own
            if time.monotonic() >= next_sample:
                now = time.monotonic()
                lsn, archived = psql(node, "SELECT (pg_current_wal_lsn() - '0/0')::bigint, "
                                           "coalesce(last_archived_wal, '') "
                                           "FROM pg_stat_archiver").split("|")
                samples.append((now, int(lsn)))
                lags.append(archive_lag(now, samples, archived))
                next_sample += 1
            time.sleep(max(0.0, batch / args.rate - (time.monotonic() - started)))
        total = int(psql(node, "SELECT count(*) FROM bench", db="api"))
        print(f"steady writes: {total} commits in {args.seconds} s ({total / args.seconds:.0f}/s); "
              f"archive lag (how long the oldest commit not yet in R2 has waited): median "
              f"{statistics.median(lags):.1f} s, max {max(lags):.1f} s over {len(lags)} samples")
        last = psql(node, "SELECT max(at) FROM bench", db="api")
        pid = int(node.path("/var/lib/postgresql/17/postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        print(f"kill -9 of the postmaster at {killed_at:.0f}; newest commit {last}")
        # the recovery point: the newest archived state, restored onto a new node
        start = time.monotonic()
        with restored_node(tmp, node, r2, None) as new:
            took = time.monotonic() - start
            restored = int(psql(new, "SELECT count(*) FROM bench", db="api"))
            newest = psql(new, "SELECT max(at) FROM bench", db="api")
        behind = (datetime.fromisoformat(last) - datetime.fromisoformat(newest)).total_seconds()
        print(f"restore onto a new node (newest archived state, promoted): {took:.1f} s; "
              f"{restored} of {total} commits; recovery point {behind:.1f} s before the "
              f"last acknowledged commit ({total - restored} commits lost)")
    print(f"load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
