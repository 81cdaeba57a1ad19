"""Small inline SVG charts, drawn in Python: no script, no font or file to fetch.

Each function returns one ``<svg class="chart">`` element with a ``<title>``
(screen readers, hover) and plain presentation attributes, so the page's
Content-Security-Policy can forbid inline ``style`` attributes. Text goes
through :func:`esc`, which also writes ``/`` as a character reference so no
value can put ``//`` (a URL) into the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PALETTE", "Series", "column_chart", "esc", "hbar_chart", "line_chart"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")

_FONT = 12


def esc(value: object) -> str:
    """Text or attribute value, HTML-escaped; ``/`` as ``&#47;`` so no ``//`` survives."""
    return html.escape(str(value), quote=True).replace("/", "&#47;")


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: tuple[int | None, ...]


def _num(value: float) -> str:
    """Coordinates with at most one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ticks(maximum: int, count: int = 4) -> list[int]:
    """0 and round steps (1, 2, 5 x 10^k) up to at least ``maximum``."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    top = step * math.ceil(maximum / step)
    return list(range(0, top + 1, step))


def _open(width: int, height: int, title: str, chart_id: str) -> list[str]:
    return [
        f'<svg class="chart" id="{esc(chart_id)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{esc(chart_id)}-t">',
        f'<title id="{esc(chart_id)}-t">{esc(title)}</title>',
    ]


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts: list[str] = []
    for s in series:
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10" fill="{s.color}"/>'
        )
        parts.append(f'<text x="{_num(x + 14)}" y="{_num(y)}">{esc(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return parts


def hbar_chart(
    chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series], width: int = 700
) -> str:
    """Horizontal stacked bars, one row per label, the total written at the end of the bar."""
    label_w, right, top, row_h, bar_h = 280, 70, 28, 30, 18
    height = top + row_h * len(labels) + 10
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    scale = (width - label_w - right) / max(1, max(totals, default=0))
    parts = _open(width, height, title, chart_id)
    parts += _legend(series, label_w, 14)
    for i, label in enumerate(labels):
        y = top + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{_num(y + bar_h - 4)}" text-anchor="end">'
            f"{esc(label)}</text>"
        )
        x = float(label_w)
        for s in series:
            value = s.values[i] or 0
            w = value * scale
            if value:
                parts.append(
                    f'<rect x="{_num(x)}" y="{y}" width="{_num(max(w, 1))}" height="{bar_h}" '
                    f'fill="{s.color}"><title>{esc(label)}: {value:,} {esc(s.name)}</title></rect>'
                )
            x += w
        parts.append(f'<text x="{_num(x + 6)}" y="{_num(y + bar_h - 4)}">{totals[i]:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_title: str,
    width: int | None = None,
    height: int = 230,
) -> str:
    """Vertical stacked columns (a histogram when the labels are buckets)."""
    left, right, top, bottom = 48, 10, 26, 46
    width = width or max(420, left + right + 60 * len(labels))
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    ticks = nice_ticks(max(totals, default=0))
    scale = plot_h / ticks[-1]
    slot = plot_w / max(1, len(labels))
    bar_w = slot * 0.72
    parts = _open(width, height, title, chart_id)
    parts += _legend(series, left, 14)
    parts += _y_axis(ticks, left, top, plot_w, plot_h)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for s in series:
            value = s.values[i] or 0
            h = value * scale
            if value:
                parts.append(
                    f'<rect x="{_num(x)}" y="{_num(y - h)}" width="{_num(bar_w)}" '
                    f'height="{_num(max(h, 0.5))}" fill="{s.color}">'
                    f"<title>{esc(label)}: {value:,} {esc(s.name)}</title></rect>"
                )
            y -= h
        parts.append(
            f'<text x="{_num(x + bar_w / 2)}" y="{top + plot_h + 14}" '
            f'text-anchor="middle">{esc(label)}</text>'
        )
    parts.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{height - 6}" text-anchor="middle" '
        f'class="axis-title">{esc(x_title)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _y_axis(ticks: Sequence[int], left: int, top: int, plot_w: float, plot_h: float) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + plot_h - tick * plot_h / ticks[-1]
        parts.append(
            f'<line x1="{left}" x2="{_num(left + plot_w)}" y1="{_num(y)}" y2="{_num(y)}" '
            f'class="grid"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">{tick:,}</text>')
    return parts


def line_chart(
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    point_labels: Sequence[str] | None = None,
    width: int = 420,
    height: int = 200,
) -> str:
    """Lines over runs; ``None`` values (rule not evaluated in a run) leave a gap.

    ``point_labels`` name each x position in the points' tooltips (default: ``x_labels``).
    """
    left, right, top, bottom = 48, 14, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(max(values, default=0))
    n = len(x_labels)
    names = list(point_labels) if point_labels is not None else list(x_labels)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n <= 1 else i * plot_w / (n - 1))

    def y_at(v: int) -> float:
        return top + plot_h - v * plot_h / ticks[-1]

    parts = _open(width, height, title, chart_id)
    parts += _legend(series, left, 14)
    parts += _y_axis(ticks, left, top, plot_w, plot_h)
    shown = sorted({0, n - 1, (n - 1) // 2}) if n else []
    for i in shown:
        anchor = "start" if i == 0 and n > 1 else ("end" if i == n - 1 and n > 1 else "middle")
        parts.append(
            f'<text x="{_num(x_at(i))}" y="{top + plot_h + 16}" text-anchor="{anchor}">'
            f"{esc(x_labels[i])}</text>"
        )
    for s in series:
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, value in enumerate(s.values):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{_num(x_at(i))},{_num(y_at(value))}")
        if segment:
            segments.append(segment)
        for points in segments:
            if len(points) > 1:
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.color}" '
                    f'stroke-width="2"/>'
                )
        for i, value in enumerate(s.values):
            if value is not None:
                parts.append(
                    f'<circle cx="{_num(x_at(i))}" cy="{_num(y_at(value))}" r="2.5" '
                    f'fill="{s.color}"><title>{esc(names[i])}: {value:,} '
                    f"{esc(s.name)}</title></circle>"
                )
    parts.append("</svg>")
    return "".join(parts)
