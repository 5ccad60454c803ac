"""`edgekit logs chart`: requests, errors and latency per service over a window, as numbers
(`Chart`), drawn in the terminal (rich) or to a file (`edgekit.obs.plot`: SVG, PNG) from the
same query.

A request is a log line with an ``http.response.status_code`` attribute: the services' request
lines and the edge Worker's records (service ``edge-worker``). An error is a status of 500 or
more. Latency is ``http.server.request.duration`` (OpenTelemetry, seconds) or the edge's
``edge.duration_ms``, in milliseconds; percentiles are DuckDB's ``quantile_cont``. The window
``[until - since, until)`` is cut into equal buckets counted from its start, so the same
window gives the same buckets whatever day the command runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import attrs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgekit.obs.query import query
from edgekit.obs.sandbox import QueryRefused

PERCENTILES = (0.5, 0.95, 0.99)
BLOCKS = " ▁▂▃▄▅▆▇█"
MAX_BUCKETS = 240


@attrs.frozen
class Series:
    """One service over the window: per bucket, and percentiles of the whole window."""

    service: str
    requests: tuple[int, ...]
    errors: tuple[int, ...]
    p95: tuple[float | None, ...]
    """The 95th percentile latency (ms) of each bucket; None where it had no request."""
    latency: tuple[float | None, float | None, float | None]
    """p50, p95, p99 (ms) over the whole window."""

    @property
    def total(self) -> int:
        return sum(self.requests)

    @property
    def total_errors(self) -> int:
        return sum(self.errors)


@attrs.frozen
class Chart:
    start: datetime
    end: datetime
    step: timedelta
    series: tuple[Series, ...]

    @property
    def buckets(self) -> list[datetime]:
        count = len(self.series[0].requests) if self.series else bucket_count(self)
        return [self.start + self.step * i for i in range(count)]


def bucket_count(chart: Chart | tuple[datetime, datetime, timedelta]) -> int:
    start, end, step = ((chart.start, chart.end, chart.step) if isinstance(chart, Chart)
                        else chart)
    return max(1, math.ceil((end - start) / step))


def window_step(since: timedelta, step: timedelta | None, buckets: int = 30) -> timedelta:
    """`step`, or the window cut into `buckets` whole seconds."""
    if since <= timedelta(0):
        raise QueryRefused("--since must be a positive duration, e.g. 1h")
    chosen = step or timedelta(seconds=max(1, math.ceil(since.total_seconds() / buckets)))
    if chosen <= timedelta(0):
        raise QueryRefused("--step must be a positive duration, e.g. 5m")
    if since / chosen > MAX_BUCKETS:
        raise QueryRefused(f"--step {chosen} cuts --since {since} into more than "
                           f"{MAX_BUCKETS} buckets; choose a longer step")
    return chosen


def chart_sql() -> str:
    """Per service and bucket: requests, errors, p95; parameters start, end, step (s)."""
    status = "TRY_CAST(attributes->>'$.\"http.response.status_code\"' AS INTEGER)"
    duration = ("COALESCE(TRY_CAST(attributes->>'$.\"http.server.request.duration\"' AS DOUBLE)"
                " * 1000, TRY_CAST(attributes->>'$.\"edge.duration_ms\"' AS DOUBLE))")
    return (
        f"SELECT service, CAST(floor((epoch(timestamp) - epoch(?::TIMESTAMPTZ)) / ?) AS BIGINT)"
        f" AS bucket, count(*) AS requests, count(*) FILTER (WHERE status >= 500) AS errors, "
        f"quantile_cont(duration_ms, 0.95) AS p95 "
        f"FROM (SELECT service, timestamp, {status} AS status, {duration} AS duration_ms "
        "FROM logs WHERE timestamp >= ? AND timestamp < ?) "
        "WHERE status IS NOT NULL AND service IS NOT NULL "
        "AND (? IS NULL OR service = ?) GROUP BY ALL ORDER BY service, bucket"
    )


def percentiles_sql() -> str:
    duration = ("COALESCE(TRY_CAST(attributes->>'$.\"http.server.request.duration\"' AS DOUBLE)"
                " * 1000, TRY_CAST(attributes->>'$.\"edge.duration_ms\"' AS DOUBLE))")
    status = "attributes->>'$.\"http.response.status_code\"'"
    quantiles = ", ".join(f"quantile_cont({duration}, {q})" for q in PERCENTILES)
    return (f"SELECT service, {quantiles} FROM logs WHERE timestamp >= ? AND timestamp < ? "
            f"AND {status} IS NOT NULL AND service IS NOT NULL AND (? IS NULL OR service = ?) "
            "GROUP BY ALL ORDER BY service")


def chart(dest: Path, *, until: datetime, since: timedelta, step: timedelta | None = None,
          service: str | None = None) -> Chart:
    """The numbers of the window ``[until - since, until)`` in `dest`."""
    width = window_step(since, step)
    start = until - since
    count = bucket_count((start, until, width))
    seconds = width.total_seconds()
    _, rows = query(dest, chart_sql(), [start, seconds, start, until, service, service])
    _, overall = query(dest, percentiles_sql(), [start, until, service, service])
    latency = {str(r[0]): (r[1], r[2], r[3]) for r in overall}
    by_service: dict[str, list[list[float | int | None]]] = {}
    for name, bucket, requests, errors, p95 in rows:
        columns = by_service.setdefault(str(name), [[0] * count, [0] * count, [None] * count])
        index = int(bucket)
        if 0 <= index < count:
            columns[0][index] = int(requests)
            columns[1][index] = int(errors)
            columns[2][index] = None if p95 is None else float(p95)
    series = tuple(
        Series(service=name, requests=tuple(int(v or 0) for v in cols[0]),
               errors=tuple(int(v or 0) for v in cols[1]),
               p95=tuple(None if v is None else float(v) for v in cols[2]),
               latency=_floats(latency.get(name, (None, None, None))))
        for name, cols in sorted(by_service.items()))
    return Chart(start=start, end=until, step=width, series=series)


def _floats(values: Sequence[object]) -> tuple[float | None, float | None, float | None]:
    out = [None if v is None else float(v) for v in values]  # type: ignore[arg-type]
    return out[0], out[1], out[2]


# -- the terminal ------------------------------------------------------------------------------


def spark(values: Sequence[float | int | None], top: float) -> str:
    """One block character per value, scaled to `top` (a space for 0 or no value)."""
    out = []
    for value in values:
        if not value or top <= 0:
            out.append(" " if not value else BLOCKS[1])
            continue
        out.append(BLOCKS[max(1, min(8, round(value / top * 8)))])
    return "".join(out)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render_terminal(data: Chart, console: Console) -> None:
    """A table of each service's requests, errors and the window's p50/p95/p99 (ms), then
    per service its requests, errors and p95 per bucket as block bars, oldest first."""
    span = f"{data.start:%Y-%m-%d %H:%M}Z to {data.end:%Y-%m-%d %H:%M}Z"
    console.print(Text(f"requests per {duration_text(data.step)} bucket, {span}", style="bold"))
    if not data.series:
        console.print("no request lines in the window (lines with an "
                      "http.response.status_code attribute)")
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("service", no_wrap=True)
    for column in ("requests", "errors", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in data.series:
        table.add_row(s.service, str(s.total), str(s.total_errors),
                      *(_ms(v) for v in s.latency))
    console.print(table)
    top = max(max(s.requests) for s in data.series)
    slowest = max((v for s in data.series for v in s.p95 if v is not None), default=0.0)
    width = max(len(s.service) for s in data.series)
    for s in data.series:
        rows = (("req", spark(s.requests, top), "cyan"), ("err", spark(s.errors, top), "red"),
                ("p95", spark(s.p95, slowest), "yellow"))
        for index, (label, bars, style) in enumerate(rows):
            name = s.service if index == 0 else ""
            console.print(Text(f"{name:<{width}} {label} ", style="dim") +
                          Text(bars, style=style), crop=False)
    console.print(Text(f"bars scaled to {top} requests per bucket and {_ms(slowest)} ms",
                       style="dim"))


def duration_text(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
