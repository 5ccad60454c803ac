"""`edgekit logs chart`: requests, errors and latency per service over a window, in the
terminal and as SVG/PNG from the same numbers (issue 26). On the fixture data of
tests/test_logs.py, synced from SeaweedFS; the numbers are recomputed here from the events
themselves. The window is the fixtures' own (--until), never the day the test runs."""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from edgekit.obs.chart import Chart, chart, spark
from edgekit.obs.cli import add_logs_parser
from edgekit.obs.plot import HEIGHT, WIDTH, panels, png, svg
from edgekit.obs.sync import sync
from edgekit.obs.testing import SeaweedS3, gzip_ndjson, upload
from tests.test_logs import END, START, Events, dataset, of_stack

STEP = timedelta(minutes=30)
BUCKETS = 6  # START .. END is 3 hours


@pytest.fixture(scope="module")
def events() -> Events:
    return of_stack(dataset(), "prod")


@pytest.fixture(scope="module")
def synced(s3: SeaweedS3, events: Events, tmp_path_factory: pytest.TempPathFactory) -> Path:
    client = s3.client()
    client.create_bucket(Bucket="chart")
    upload(client, "chart", {k: gzip_ndjson(v) for k, v in events.items()})
    dest = tmp_path_factory.mktemp("chart") / "prod"
    assert sync(client, "chart", "prod", dest).ok
    return dest


def moment(text: str) -> datetime:
    """An RFC 3339 time with nanoseconds, to microseconds (enough: buckets are minutes)."""
    return datetime.fromisoformat(text[:26]).replace(tzinfo=UTC)


def quantile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected(events: Events, start: datetime, step: timedelta) -> dict[str, dict[str, Any]]:
    """service -> requests, errors, p95 per bucket and the window's p50/p95/p99."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "requests": [0] * BUCKETS, "errors": [0] * BUCKETS,
        "durations": [[] for _ in range(BUCKETS)]})
    for lines in events.values():
        for event in lines:
            attributes = event["attributes"]
            status = attributes.get("http.response.status_code")
            at = moment(event["timestamp"])
            if status is None or not start <= at < start + step * BUCKETS:
                continue
            index = int((at - start) / step)
            row = out[event["resources"]["service.name"]]
            row["requests"][index] += 1
            row["errors"][index] += status >= 500
            if "http.server.request.duration" in attributes:
                row["durations"][index].append(attributes["http.server.request.duration"] * 1000)
    for row in out.values():
        row["p95"] = [quantile_cont(d, 0.95) if d else None for d in row["durations"]]
        every = [v for d in row["durations"] for v in d]
        row["latency"] = tuple(quantile_cont(every, q) for q in (0.5, 0.95, 0.99))
    return dict(out)


@pytest.fixture(scope="module")
def data(synced: Path) -> Chart:
    return chart(synced, until=END, since=END - START, step=STEP)


def test_the_numbers_are_the_events_counted_per_service_and_bucket(
        data: Chart, events: Events) -> None:
    want = expected(events, START, STEP)
    assert [s.service for s in data.series] == sorted(want)
    assert data.buckets == [START + STEP * i for i in range(BUCKETS)]
    for series in data.series:
        row = want[series.service]
        assert list(series.requests) == row["requests"], series.service
        assert list(series.errors) == row["errors"], series.service
        assert series.p95 == pytest.approx(row["p95"]), series.service
        assert series.latency == pytest.approx(row["latency"]), series.service
    # the whole fixture is in the window: every request line counted once
    assert sum(s.total for s in data.series) == sum(len(v) for v in events.values())
    assert sum(s.total_errors for s in data.series) > 0


def test_a_window_counts_only_its_own_events(synced: Path, events: Events) -> None:
    later = chart(synced, until=END, since=timedelta(hours=1), step=STEP)
    assert later.start == END - timedelta(hours=1) and len(later.buckets) == 2
    counted = sum(1 for lines in events.values() for e in lines
                  if END - timedelta(hours=1) <= moment(e["timestamp"]) < END)
    assert sum(s.total for s in later.series) == counted
    only = chart(synced, until=END, since=END - START, step=STEP, service="api")
    assert [s.service for s in only.series] == ["api"]
    empty = chart(synced, until=START, since=timedelta(hours=1))
    assert empty.series == ()


def test_the_terminal_chart(synced: Path, data: Chart,
                            capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="edgekit")
    add_logs_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["logs", "chart", "--dest", str(synced), "--since", "3h",
                              "--step", "30m", "--until", END.isoformat()])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "requests per 30m bucket, 2026-11-29 06:00Z to 2026-11-29 09:00Z" in out
    top = max(max(s.requests) for s in data.series)
    lines = out.splitlines()
    for series in data.series:
        p50, p95, p99 = (f"{v:.0f}" for v in series.latency)
        assert [series.service, str(series.total), str(series.total_errors), p50, p95,
                p99] in [x.split() for x in lines]
        bars = next(x for x in lines if x.startswith(series.service) and " req " in x)
        assert bars.endswith(f" req {spark(series.requests, top)}".rstrip())
        assert lines[lines.index(bars) + 1].lstrip().startswith(
            f"err {spark(series.errors, top)}".rstrip())


def test_svg_and_png_draw_the_same_numbers(data: Chart, tmp_path: Path,
                                           events: Events) -> None:
    from PIL import Image

    root = ElementTree.fromstring(svg(data))
    drawn = {(line.get("data-service"), index): line.get("data-values")
             for index, group in enumerate(_by_panel(root)) for line in group}
    want = expected(events, START, STEP)
    for service, row in want.items():
        assert drawn[(service, 0)] == ",".join(str(v) for v in row["requests"])
        assert drawn[(service, 1)] == ",".join(str(v) for v in row["errors"])
        values = [float(v) for v in (drawn[(service, 2)] or "").split(",")]
        assert values == pytest.approx(row["p95"], rel=1e-5)
    assert svg(data) == svg(data)

    image = Image.open(_write(tmp_path / "c.png", png(data)))
    assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
    pixels = {colour for _, colour in image.getcolors(maxcolors=WIDTH * HEIGHT) or []}
    for line in panels(data)[0].lines:  # each service's colour is drawn
        colour = tuple(int(line.colour[i:i + 2], 16) for i in (1, 3, 5))
        assert colour in pixels, line.service
    assert png(data) == png(data)


def _by_panel(root: ElementTree.Element) -> Iterator[list[ElementTree.Element]]:
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    per = len(lines) // 3
    for index in range(3):
        yield lines[index * per:(index + 1) * per]


def _write(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


def test_plot_writes_the_file_and_refuses_other_formats(
        synced: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="edgekit")
    add_logs_parser(parser.add_subparsers(dest="command"))
    base = ["logs", "chart", "--dest", str(synced), "--since", "3h", "--until", END.isoformat()]
    for name in ("traffic.svg", "traffic.png"):
        args = parser.parse_args([*base, "--plot", str(tmp_path / name)])
        assert args.func(args) == 0
        assert (tmp_path / name).stat().st_size > 1000
    capsys.readouterr()
    args = parser.parse_args([*base, "--plot", str(tmp_path / "traffic.gif")])
    assert args.func(args) == 2
    assert "expected a file name ending in .svg or .png" in capsys.readouterr().err
    assert not (tmp_path / "traffic.gif").exists()
    args = parser.parse_args([*base, "--step", "10s"])
    assert args.func(args) == 2
    assert "more than 240 buckets" in capsys.readouterr().err
