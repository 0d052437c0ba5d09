"""Inline SVG line charts for the report: no script, no external reference.

A chart is a list of ``Series`` (points, with ``None`` for a gap) and ``Mark``s (vertical lines
at events, numbered on the chart and listed once under it)."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Series:
    """A line of a chart: (x seconds, y or None for a gap) points."""

    label: str
    points: list[tuple[float, float | None]]
    color: str
    dash: str = ""
    step: bool = False
    width: float = 2.0


def level(label: str, y: float, x_range: tuple[float, float], color: str) -> Series:
    """A dashed horizontal line across the chart (a bound or a target)."""
    return Series(label, [(x_range[0], y), (x_range[1], y)], color, dash="8 4", width=1)


@dataclass(frozen=True)
class Mark:
    """A vertical line at ``x`` (an event), numbered on the chart; the numbered list is
    rendered once per load run."""

    x: float
    label: str
    kind: str
    number: int = 0


_CLIP_IDS = itertools.count(1)
MARK_COLORS = {
    "marker": "#24292f",
    "scale": "#0969da",
    "replicaset": "#bf8700",
    "warning": "#cf222e",
}
PALETTE = ("#0969da", "#8250df", "#1a7f37", "#bc4c00", "#cf222e", "#57606a")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    value = math.floor(lo / step) * step
    ticks = [round(value, 10)]
    while value < hi - step * 0.001:
        value += step
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.2e}"


def svg_chart(
    series: Sequence[Series],
    *,
    marks: Sequence[Mark] = (),
    y_label: str = "",
    x_label: str = "seconds since load start",
    width: int = 880,
    height: int = 210,
    y_min: float = 0.0,
    y_max: float | None = None,
    x_range: tuple[float, float] | None = None,
) -> str:
    """An inline SVG line chart (no script, no external reference)."""
    left, right, top, bottom = 56, 14, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, y in s.points if y is not None] + [m.x for m in marks]
    ys = [y for s in series for _, y in s.points if y is not None]
    if x_range is None:
        x_range = (min(xs, default=0.0), max(xs, default=1.0))
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1
    top_value = max(ys, default=1.0) if y_max is None else y_max
    y_ticks = nice_ticks(y_min, max(top_value, y_min + 1e-9) * 1.05 if ys else 1.0)
    y0, y1 = y_ticks[0], y_ticks[-1]
    if y1 <= y0:
        y1 = y0 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    clip = f"clip{next(_CLIP_IDS)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" class="chart">',
        f'<defs><clipPath id="{clip}"><rect x="{left}" y="{top - 1}" width="{plot_w}" '
        f'height="{plot_h + 2}"/></clipPath></defs>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for tick in y_ticks:
        y = py(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{_fmt(tick)}</text>"
        )
    for tick in nice_ticks(x0, x1, 10):
        if not x0 <= tick <= x1:
            continue
        x = px(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" class="grid"/>')
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" class="tick">'
            f"{_fmt(tick)}</text>"
        )
    out.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" '
        f'class="axis">{html.escape(x_label)}</text>'
    )
    if y_label:
        out.append(
            f'<text x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle" class="axis" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">{html.escape(y_label)}</text>'
        )
    for index, mark in enumerate(marks, 1):
        number = mark.number or index
        if not x0 <= mark.x <= x1:
            continue
        x = px(mark.x)
        color = MARK_COLORS.get(mark.kind, "#57606a")
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="{color}" '
            f'stroke-width="1" stroke-dasharray="3 3"><title>{html.escape(mark.label)}</title>'
            "</line>"
        )
        out.append(
            f'<text x="{x + 2:.1f}" y="{top + 10 + (number % 3) * 10}" class="mark" '
            f'fill="{color}">{number}</text>'
        )
    for s in series:
        path = _path(s, px, py)
        if not path:
            continue
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(
            f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="{s.width}"{dash} '
            f'clip-path="url(#{clip})"><title>{html.escape(s.label)}</title></path>'
        )
    out.append("</svg>")
    return "".join(out)


def _path(series: Series, px: Any, py: Any) -> str:
    parts: list[str] = []
    pen_up = True
    last_y: float | None = None
    for x, y in series.points:
        if y is None:
            pen_up = True
            continue
        if pen_up:
            parts.append(f"M{px(x):.1f},{py(y):.1f}")
            pen_up = False
        else:
            if series.step and last_y is not None:
                parts.append(f"L{px(x):.1f},{py(last_y):.1f}")
            parts.append(f"L{px(x):.1f},{py(y):.1f}")
        last_y = y
    return "".join(parts)


def _legend(series: Sequence[Series]) -> str:
    items = []
    for s in series:
        style = "dashed" if s.dash else "solid"
        items.append(
            f'<span class="key"><i style="border-top:2px {style} {s.color}"></i>'
            f"{html.escape(s.label)}</span>"
        )
    return f'<div class="legend">{"".join(items)}</div>'


def marks_list(marks: Sequence[Mark]) -> str:
    """The numbered events of a load run (the numbers on its charts)."""
    if not marks:
        return ""
    items = "".join(
        f'<li value="{m.number}" style="color:{MARK_COLORS.get(m.kind, "#57606a")}">'
        f"<span>{m.x:+.0f}s</span> {html.escape(m.label)}</li>"
        for m in marks
    )
    return (
        f'<div class="evhead">Events (numbered on the charts)</div><ol class="marks">{items}</ol>'
    )


def figure(title: str, series: Sequence[Series], marks: Sequence[Mark], **kw: Any) -> str:
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>{_legend(series)}"
        f"{svg_chart(series, marks=marks, **kw)}</figure>"
    )
