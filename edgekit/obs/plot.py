"""`edgekit logs chart --plot FILE`: the `Chart` drawn to SVG (written here, no dependency) or
PNG (Pillow), three panels over the same buckets: requests, errors and p95 latency per service.

Both are drawn from one layout (`panels`): the same points, scaled the same way, so the two
files show the same picture. The SVG carries each line's numbers (``data-values``) so a reader
(or a test) can check what was drawn. Output is deterministic: the same chart gives the same
bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import attrs

from edgekit.core.files import write_atomic
from edgekit.obs.chart import Chart, duration_text
from edgekit.obs.sandbox import QueryRefused

WIDTH, PANEL, TOP, LEFT, RIGHT, GAP = 960, 170, 48, 70, 170, 40
HEIGHT = TOP + 3 * (PANEL + GAP)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FORMATS = (".svg", ".png")


@attrs.frozen
class Line:
    service: str
    colour: str
    values: tuple[float | None, ...]
    points: tuple[tuple[float, float] | None, ...]


@attrs.frozen
class Panel:
    title: str
    top: float
    """The largest value, which the panel's height stands for."""
    y: float
    """The panel's top edge in the picture."""
    lines: tuple[Line, ...]


def _scale(values: Sequence[float | None], top: float, y: float,
           count: int) -> tuple[tuple[float, float] | None, ...]:
    inner = WIDTH - LEFT - RIGHT
    step = inner / max(1, count - 1)
    return tuple(None if v is None else (round(LEFT + i * step, 2),
                                         round(y + PANEL - (v / top if top else 0) * PANEL, 2))
                 for i, v in enumerate(values))


def panels(data: Chart) -> list[Panel]:
    """The three panels as points in the picture's coordinates."""
    count = len(data.buckets)
    kinds: list[tuple[str, list[tuple[str, Sequence[float | None]]]]] = [
        ("requests per bucket", [(s.service, s.requests) for s in data.series]),
        ("errors (status >= 500) per bucket", [(s.service, s.errors) for s in data.series]),
        ("p95 latency per bucket (ms)", [(s.service, s.p95) for s in data.series]),
    ]
    out = []
    for index, (title, rows) in enumerate(kinds):
        top = max((float(v) for _, values in rows for v in values if v is not None),
                  default=0.0)
        y = TOP + index * (PANEL + GAP)
        lines = tuple(
            Line(service, COLOURS[n % len(COLOURS)],
                 tuple(None if v is None else float(v) for v in values),
                 _scale([None if v is None else float(v) for v in values], top, y, count))
            for n, (service, values) in enumerate(rows))
        out.append(Panel(title, top, y, lines))
    return out


def _label(data: Chart) -> str:
    return (f"{data.start:%Y-%m-%d %H:%M}Z to {data.end:%Y-%m-%d %H:%M}Z, one point per "
            f"{duration_text(data.step)} (UTC)")


def _ticks(data: Chart) -> list[tuple[float, str]]:
    """(x, HH:MM) under the first, middle and last bucket."""
    buckets = data.buckets
    inner = WIDTH - LEFT - RIGHT
    step = inner / max(1, len(buckets) - 1)
    picks = sorted({0, (len(buckets) - 1) // 2, len(buckets) - 1})
    return [(round(LEFT + i * step, 2), f"{buckets[i]:%H:%M}") for i in picks]


def svg(data: Chart) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{LEFT}" y="24" font-size="15">{escape(_label(data))}</text>']
    right = WIDTH - RIGHT
    for panel in panels(data):
        y0, y1 = panel.y, panel.y + PANEL
        parts += [f'<text x="{LEFT}" y="{y0 - 8}">{escape(panel.title)}</text>',
                  f'<line x1="{LEFT}" y1="{y1}" x2="{right}" y2="{y1}" stroke="#888"/>',
                  f'<line x1="{LEFT}" y1="{y0}" x2="{LEFT}" y2="{y1}" stroke="#888"/>',
                  f'<text x="{LEFT - 6}" y="{y0 + 4}" text-anchor="end">{panel.top:g}</text>',
                  f'<text x="{LEFT - 6}" y="{y1}" text-anchor="end">0</text>']
        parts += [f'<text x="{x}" y="{y1 + 16}" text-anchor="middle">{t}</text>'
                  for x, t in _ticks(data)]
        for n, line in enumerate(panel.lines):
            values = ",".join("" if v is None else f"{v:g}" for v in line.values)
            points = " ".join(f"{x},{y}" for p in line.points if p is not None for x, y in [p])
            parts.append(f'<polyline data-service="{escape(line.service)}" data-values='
                         f'"{values}" fill="none" stroke="{line.colour}" stroke-width="2" '
                         f'points="{points}"/>')
            parts.append(f'<text x="{right + 12}" y="{y0 + 14 + 16 * n}" fill="{line.colour}">'
                         f'{escape(line.service)}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def png(data: Chart) -> bytes:
    """The same picture through Pillow (imported only here: a PNG is its only use)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:  # pragma: no cover - Pillow is a dependency of edgekit
        raise QueryRefused("writing a PNG needs Pillow (pip install pillow); --plot "
                           "FILE.svg needs nothing") from None
    import io

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    right = WIDTH - RIGHT
    draw.text((LEFT, 10), _label(data), fill="black", font=font)
    for panel in panels(data):
        y0, y1 = panel.y, panel.y + PANEL
        draw.text((LEFT, y0 - 20), panel.title, fill="black", font=font)
        draw.line([(LEFT, y1), (right, y1)], fill="#888888")
        draw.line([(LEFT, y0), (LEFT, y1)], fill="#888888")
        draw.text((4, y0 - 6), f"{panel.top:g}", fill="black", font=font)
        draw.text((4, y1 - 12), "0", fill="black", font=font)
        for x, tick in _ticks(data):
            draw.text((x - 14, y1 + 4), tick, fill="black", font=font)
        for n, line in enumerate(panel.lines):
            points = [p for p in line.points if p is not None]
            if len(points) > 1:
                draw.line(points, fill=line.colour, width=2)
            for x, y in points:
                draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=line.colour)
            draw.text((right + 12, y0 + 4 + 16 * n), line.service, fill=line.colour, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def write(data: Chart, target: Path) -> None:
    """Write `data` to `target` (.svg or .png), atomically."""
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise QueryRefused(f"--plot {target}: expected a file name ending in .svg or .png")
    write_atomic(target, svg(data).encode() if suffix == ".svg" else png(data))
