"""Inline SVG charts for the status page: no script, no library, no network.

Pure functions from numbers to SVG text. Each chart is an ``<svg role="img">`` with a title
and a description that states the numbers in words, so a screen reader gets the data too.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

__all__ = ["bar_chart", "line_chart"]

_W: Final = 640
_H: Final = 200
_PAD_L: Final = 40
_PAD_B: Final = 24
_PAD_T: Final = 10


def _scale_max(values: Sequence[float]) -> float:
    top = max(values, default=0.0)
    return top if top > 0 else 1.0


def _axis(labels: Sequence[str], top: float, unit: str) -> list[str]:
    plot_h = _H - _PAD_B - _PAD_T
    parts = [
        f'<line x1="{_PAD_L}" y1="{_H - _PAD_B}" x2="{_W}" y2="{_H - _PAD_B}" class="axis"/>',
        f'<text x="{_PAD_L - 4}" y="{_PAD_T + 4}" text-anchor="end" class="tick">'
        f"{escape(_fmt(top))}{escape(unit)}</text>",
        f'<text x="{_PAD_L - 4}" y="{_PAD_T + plot_h}" text-anchor="end" class="tick">0</text>',
    ]
    step = max(len(labels) // 6, 1)
    slot = (_W - _PAD_L) / max(len(labels), 1)
    for i in range(0, len(labels), step):
        x = _PAD_L + slot * (i + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{_H - 6}" text-anchor="middle" class="tick">'
            f"{escape(labels[i])}</text>"
        )
    return parts


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _svg(chart_id: str, title: str, description: str, body: list[str]) -> str:
    return (
        f'<svg id="{escape(chart_id)}" role="img" viewBox="0 0 {_W} {_H}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'preserveAspectRatio="xMidYMid meet">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
) -> str:
    """Stacked bars per label; `series` = (name, CSS class, values per label)."""
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    top = _scale_max(totals)
    plot_h = _H - _PAD_B - _PAD_T
    slot = (_W - _PAD_L) / max(len(labels), 1)
    body = _axis(labels, top, "")
    for i in range(len(labels)):
        base = 0.0
        for name, css, values in series:
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y = _H - _PAD_B - plot_h * base / top - h
            body.append(
                f'<rect x="{_PAD_L + slot * i + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
                f'height="{h:.1f}" class="{escape(css)}"><title>{escape(labels[i])}: '
                f"{_fmt(value)} {escape(name)}</title></rect>"
            )
            base += value
    described = "; ".join(f"{name} {_fmt(sum(values))} in total" for name, _, values in series)
    return _svg(chart_id, title, f"{described}, over {len(labels)} hours.", body)


def line_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    unit: str,
) -> str:
    """One polyline per series (gaps where a value is None), with a dot per point."""
    known = [v for _, _, values in series for v in values if v is not None]
    top = _scale_max(known)
    plot_h = _H - _PAD_B - _PAD_T
    slot = (_W - _PAD_L) / max(len(labels), 1)
    body = _axis(labels, top, unit)
    for name, css, values in series:
        points = [
            (_PAD_L + slot * (i + 0.5), _H - _PAD_B - plot_h * v / top, v)
            for i, v in enumerate(values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            body.append(f'<polyline points="{path}" class="{escape(css)}" fill="none"/>')
        body.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="{escape(css)}">'
            f"<title>{escape(name)}: {_fmt(v)}{escape(unit)}</title></circle>"
            for x, y, v in points
        )
    if known:
        described = "; ".join(
            f"{name} up to {_fmt(max(v for v in values if v is not None))}{unit}"
            for name, _, values in series
            if any(v is not None for v in values)
        )
    else:
        described = "no job finished in this window"
    return _svg(chart_id, title, f"{described}.", body)
