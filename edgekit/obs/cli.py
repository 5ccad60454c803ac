"""``edgekit logs``: sync the logs of a stack from R2, then query them with DuckDB.

    edgekit logs sync --stack prod             R2 otel/prod/ -> .edgekit/logs/prod/
    edgekit logs query "select service, count(*) from logs group by all"
    edgekit logs query "select * from logs where trace_id = 'ab12'" --csv out.csv
    edgekit logs tail --service api --since 1h
    edgekit logs trace 4bf92f3577b34da6a3ce929d0e0e4736     one request, edge to database
    edgekit logs chart --since 6h --plot traffic.svg          requests, errors, latency

``add_logs_parser(subparsers)`` registers the command; each handler takes the parsed
``argparse.Namespace`` and returns the exit code (0 ok, 1 problems, 2 a query the sandbox or
the statement check refused). boto3 and DuckDB are imported only when a logs command runs.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from edgekit.core.stack import r2_endpoint
from edgekit.obs.contract import LogsError

EXIT_OK, EXIT_PROBLEMS, EXIT_REFUSED = 0, 1, 2
LOGS_ROOT = Path(".edgekit") / "logs"
BUCKET_ENV = "EDGEKIT_LOGS_BUCKET"
DEFAULT_BUCKET = "edgekit-logs"

_VIEW_HELP = """\
the view `logs` has the columns:
  timestamp TIMESTAMPTZ (UTC), stack, node, service, severity, severity_number, body,
  trace_id, span_id, attributes JSON, resources JSON, observed_timestamp, record_id,
  source ('otel': a node's service, 'edge': the edge Worker)
one row per record id (a record delivered twice is counted once); `logs_all` is every
stored line. Cloudflare's Logpush files (logs.edge "logpush", logs.http_requests) are the
views `logpush_http_requests` (timestamp, ray_id, parent_ray_id, worker_subrequest, host,
method, uri, status, origin_status, cache, colo, ...) and `logpush_workers_trace_events`
(timestamp, ray_id, trace_id, span_id, request_id, outcome, status, message, record JSON,
...). The query can read only the synced files (exit code 2 otherwise).
e.g.
  edgekit logs query "select service, severity, count(*) from logs group by all order by all"
  edgekit logs query "select timestamp, body from logs where trace_id = '4bf92f35'"
  edgekit logs query "select attributes->>'$.\\"http.route\\"' route, count(*) from logs
                      where timestamp > now() - interval 1 day group by all" --csv routes.csv
"""


def default_bucket() -> str:
    return os.environ.get(BUCKET_ENV) or DEFAULT_BUCKET


def _dest(args: argparse.Namespace) -> Path:
    if args.dest:
        return Path(args.dest)
    stack: str | None = getattr(args, "stack", None)
    return LOGS_ROOT / stack if stack else LOGS_ROOT


def log_sink(stack: str, root: Path) -> tuple[str, str]:
    """(bucket, R2 endpoint) of `stack`'s log sink, from the environment's CUE export."""
    from edgekit.cue.model import Estate

    names = Estate.env_names(root)
    if stack not in names:
        raise LogsError(
            f"stack {stack!r} has no log sink: only environments ship logs (cue/envs.cue "
            f"`cloudflare.logs_bucket`; environments: {', '.join(names) or 'none'}); pass "
            "--bucket and --endpoint to read another bucket")
    side = Estate.load(root, stack).env.cloudflare  # refuses stale exports
    return side.logs_bucket, f"https://{side.account_id}.r2.cloudflarestorage.com"


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    """--bucket, --endpoint and --profile: where a stack's logs bucket is and the keys to read
    it (`resolve_sink` reads them back)."""
    parser.add_argument("--bucket", help="the logs bucket (default: the stack's "
                        "`cloudflare.logs_bucket` in cue/export/<stack>.json)")
    parser.add_argument("--endpoint", metavar="URL",
                        help="S3 endpoint (default: $EDGEKIT_R2_ENDPOINT, else the R2 of the "
                        "stack's `cloudflare.account_id` in the CUE export)")
    parser.add_argument("--profile", metavar="P", help="AWS profile holding the R2 keys")


def resolve_sink(args: argparse.Namespace, root: Path) -> tuple[str, str | None]:
    """--bucket/--endpoint when given; else the stack's sink in the CUE export; without a
    CUE project, $EDGEKIT_LOGS_BUCKET (or edgekit-logs) and the usual endpoint lookup."""
    from edgekit.obs.sync import ENDPOINT_ENV

    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
    if args.bucket:
        return args.bucket, endpoint
    if (root / "cue" / "export").is_dir():
        bucket, r2 = log_sink(args.stack, root)
        return bucket, endpoint or r2
    return default_bucket(), endpoint


def cmd_logs_sync(args: argparse.Namespace) -> int:
    from edgekit.obs.sync import make_client, sync
    from edgekit.ops.progress import Progress

    bucket, endpoint = resolve_sink(args, Path.cwd())
    client = make_client(endpoint_url=endpoint, profile=args.profile)
    with Progress().counting(args.stack, "logs sync") as progress:
        report = sync(client, bucket, args.stack, _dest(args), progress=progress,
                      full=getattr(args, "full", False),
                      verify=getattr(args, "verify", False),
                      prune=getattr(args, "prune", False))
    print(report.summary())
    if report.listed == 0:
        from edgekit.obs.sync import other_prefixes

        others = other_prefixes(client, bucket, report.prefix)
        hint = (f"the bucket holds {', '.join(others)}: is --stack or the bucket wrong?"
                if others else "have the nodes shipped any logs yet?")
        print(f"edgekit: no objects under s3://{bucket}/{report.prefix}; {hint}",
              file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _warn_if_empty(dest: Path) -> None:
    from edgekit.obs.query import has_log_files

    if not has_log_files(dest):
        print(f"edgekit: no log files under {dest}; run `edgekit logs sync --stack <stack>` "
              "first (or pass --dest)", file=sys.stderr)


def refused_exits_2(handler: Callable[[argparse.Namespace], int],
                    ) -> Callable[[argparse.Namespace], int]:
    """A query the sandbox or the statement check refused exits 2 (a usage error: the
    query asked for something a logs query may not do), not 1."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from edgekit.obs.sandbox import QueryRefused

        try:
            return handler(args)
        except QueryRefused as err:
            print(f"edgekit: {err}", file=sys.stderr)
            return EXIT_REFUSED

    return run


@refused_exits_2
def cmd_logs_query(args: argparse.Namespace) -> int:
    from edgekit.obs.query import export, format_table, query

    dest = _dest(args)
    _warn_if_empty(dest)
    if args.csv or args.parquet:
        out = Path(args.csv or args.parquet)
        export(dest, args.sql, out, "csv" if args.csv else "parquet")
        print(f"wrote {out}")
        return EXIT_OK
    columns, rows = query(dest, args.sql)
    if columns:
        print(format_table(columns, rows))
    return EXIT_OK


@refused_exits_2
def cmd_logs_tail(args: argparse.Namespace) -> int:
    from edgekit.obs.query import format_table, parse_duration, parse_instant, tail

    if args.limit <= 0:
        raise LogsError("--limit must be a positive number of events")
    dest = _dest(args)
    _warn_if_empty(dest)
    until = parse_instant(args.until) if args.until is not None else None
    columns, rows = tail(dest, args.service, parse_duration(args.since), args.limit,
                         until=until)
    print(format_table(columns, rows))
    return EXIT_OK


@refused_exits_2
def cmd_logs_trace(args: argparse.Namespace) -> int:
    from edgekit.obs.query import format_table
    from edgekit.obs.trace import trace

    dest = _dest(args)
    _warn_if_empty(dest)
    columns, rows = trace(dest, args.id)
    if not rows:
        print(f"edgekit: no line of request or trace {args.id} in {dest}; run `edgekit logs "
              "sync --stack <stack>` if it is recent", file=sys.stderr)
        return EXIT_PROBLEMS
    print(format_table(columns, rows))
    return EXIT_OK


@refused_exits_2
def cmd_logs_chart(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from rich.console import Console

    from edgekit.obs.chart import chart, render_terminal
    from edgekit.obs.query import parse_duration, parse_instant

    dest = _dest(args)
    _warn_if_empty(dest)
    until = parse_instant(args.until) if args.until is not None else datetime.now(UTC)
    step = parse_duration(args.step) if args.step else None
    data = chart(dest, until=until, since=parse_duration(args.since), step=step,
                 service=args.service)
    render_terminal(data, Console(highlight=False, soft_wrap=True))
    if args.plot:
        from edgekit.obs.plot import write

        write(data, Path(args.plot))
        print(f"wrote {args.plot}")
    return EXIT_OK


def _add_dest(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--dest", metavar="DIR",
                        help=f"local logs folder {what}")


def add_logs_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``logs sync|query|tail`` on the main parser's subparsers."""
    logs = subparsers.add_parser(
        "logs", help="sync service logs from R2 and query them with DuckDB",
        description="Services send OpenTelemetry logs to Vector on each node; Vector writes "
        "gzip NDJSON objects to the R2 logs bucket under otel/<stack>/<node>/date=/hour=/. "
        "`sync` mirrors a stack's objects into a local folder; `query` and `tail` read them "
        "with DuckDB as the view `logs`.")
    sub = logs.add_subparsers(dest="logs_command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "sync", help="download a stack's new log objects from R2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Download the objects under otel/<stack>/ (the nodes) and edge/<stack>/\n"
        "(the edge Worker) that the local folder does not hold yet (a changed ETag\n"
        "counts as new); status/ and mesh/ keys are never read. Safe to interrupt and\n"
        "run again: nothing is duplicated or missed. Each object must be the bucket's bytes (its\n"
        "MD5 is its ETag) and open with a contract event; objects that are not are\n"
        "skipped and listed, and the exit code is then 1. --verify checks every line\n"
        "of every object, downloaded or already held, replaces broken held files and\n"
        "keeps objects that are bad in the bucket out (use it when a query fails on a\n"
        "malformed file).\n\n"
        "A re-sync lists only the last hours of each node folder (an object lands\n"
        "within minutes of its hour); a full listing runs once a day or with --full.\n\n"
        "Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (an R2 API token), or\n"
        "--profile / AWS_PROFILE. Endpoint: --endpoint, $EDGEKIT_R2_ENDPOINT, or\n"
        f"{r2_endpoint('$CLOUDFLARE_ACCOUNT_ID')}.")
    s.add_argument("--stack", required=True, help="the stack whose logs to fetch, e.g. prod")
    add_sink_arguments(s)
    _add_dest(s, "(default: .edgekit/logs/<stack>)")
    s.add_argument("--full", action="store_true",
                   help="list every object, not only the recent hour folders of each node: "
                   "after a node could not reach R2 for more than 6 hours (its Vector then "
                   "ships the held logs into old hour folders), or to re-check old objects "
                   "and local files (a full listing also runs by itself once a day)")
    s.add_argument("--verify", action="store_true",
                   help="check every line of every object, including those already held "
                   "(slower: bound by parsing, not the network)")
    s.add_argument("--prune", action="store_true",
                   help="remove from the local folder the objects the bucket no longer holds "
                   "(deleted by its retention rule after logs.retention_days); lists in full, "
                   "and touches only files this folder's syncs recorded")
    s.set_defaults(func=cmd_logs_sync)

    q = sub.add_parser(
        "query", help="run SQL over the synced logs (view `logs`)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run DuckDB SQL over the synced logs and print an aligned table, or "
        "write the result\nwith --csv / --parquet.\n\n" + _VIEW_HELP)
    q.add_argument("sql", metavar="SQL", help="a DuckDB query over the view `logs`")
    out = q.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="FILE", help="write the result as CSV with a header")
    out.add_argument("--parquet", metavar="FILE", help="write the result as Parquet")
    q.add_argument("--stack", help="read only this stack's folder (.edgekit/logs/<stack>)")
    _add_dest(q, "(default: .edgekit/logs, every synced stack)")
    q.set_defaults(func=cmd_logs_query)

    t = sub.add_parser(
        "tail", help="show the latest events of a service",
        description="Show the latest events (oldest first) newer than --since from the "
        "synced logs; with --until, the events of the window of length --since that ends "
        "then (an incident's window). Run `edgekit logs sync` first to fetch new objects.")
    t.add_argument("--service", help="service name (resources.service.name), e.g. api "
                   "(default: every service)")
    t.add_argument("--since", default="1h",
                   help="how far back: 30s, 15m, 1h, 1h30m, 2d, 1w (default: 1h)")
    t.add_argument("--until", metavar="TIME",
                   help="end of the window, ISO 8601 (2026-11-29T09:00Z; UTC when no offset "
                   "is given; default: now, and no upper bound)")
    t.add_argument("-n", "--limit", type=int, default=100,
                   help="at most this many events (default: 100)")
    t.add_argument("--stack", help="read only this stack's folder (.edgekit/logs/<stack>)")
    _add_dest(t, "(default: .edgekit/logs, every synced stack)")
    t.set_defaults(func=cmd_logs_tail)

    r = sub.add_parser(
        "trace", help="every line of one request, edge to database, in time order",
        description="Every line of one request from the synced logs, oldest first: the edge "
        "Worker's record, then the services' lines (they continue the Worker's W3C trace); "
        "with Logpush, also Cloudflare's lines of the client's request and of the Worker's "
        "request to the origin (joined by ray id). ID is a trace id (32 hex digits) or a "
        "request id (the x-request-id every response carries).")
    r.add_argument("id", metavar="ID", help="a trace id or an x-request-id")
    r.add_argument("--stack", help="read only this stack's folder (.edgekit/logs/<stack>)")
    _add_dest(r, "(default: .edgekit/logs, every synced stack)")
    r.set_defaults(func=cmd_logs_trace)

    c = sub.add_parser(
        "chart", help="requests, errors and latency per service over time",
        description="Requests and errors per service in equal time buckets, and latency "
        "percentiles (p50/p95/p99, from http.server.request.duration or the edge's "
        "edge.duration_ms), over the window of length --since that ends at --until; drawn in "
        "the terminal, and with --plot to an SVG or PNG from the same numbers.")
    c.add_argument("--service", help="only this service (default: every service)")
    c.add_argument("--since", default="1h", help="length of the window (default: 1h)")
    c.add_argument("--until", metavar="TIME",
                   help="end of the window, ISO 8601 (UTC when no offset; default: now)")
    c.add_argument("--step", help="bucket width, e.g. 1m, 5m (default: the window / 30)")
    c.add_argument("--plot", metavar="FILE", help="also draw it to FILE (.svg or .png)")
    c.add_argument("--stack", help="read only this stack's folder (.edgekit/logs/<stack>)")
    _add_dest(c, "(default: .edgekit/logs, every synced stack)")
    c.set_defaults(func=cmd_logs_chart)
    return logs
