"""Small server-drawn SVG charts for staff pages: readable at a glance, no JavaScript, and each
shown next to a table of its numbers."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def bar_chart(items: list[tuple[str, float]], *, width: int = 640, height: int = 180, colour: str = "#0f766e",
              title: str = "") -> SafeString:
    """Vertical bars, one per (label, value), with the value above each bar."""
    if not items:
        return mark_safe("")
    top = max((value for _, value in items), default=0) or 1
    gap, left, bottom = 6, 8, 22
    slot = (width - left * 2) / len(items)
    bars = []
    for index, (label, value) in enumerate(items):
        bar_height = (height - bottom - 18) * (value / top)
        x = left + index * slot + gap / 2
        y = height - bottom - bar_height
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" height="{bar_height:.1f}" fill="{colour}" rx="2">'
            f"<title>{escape(label)}: {escape(_number(value))}</title></rect>"
            f'<text x="{x + (slot - gap) / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{escape(_number(value))}</text>'
            f'<text x="{x + (slot - gap) / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>')
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        + "".join(bars) + "</svg>")


def line_chart(points: list[tuple[str, float]], *, width: int = 640, height: int = 180, low: float | None = None,
               high: float | None = None, colour: str = "#b45309", title: str = "") -> SafeString:
    """A line through (label, value) points, with a dot and its value at each."""
    if not points:
        return mark_safe("")
    values = [value for _, value in points]
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    span = (high - low) or 1
    left, right, top, bottom = 30, 16, 18, 24
    step = (width - left - right) / max(len(points) - 1, 1)

    def y_of(value):
        return top + (height - top - bottom) * (1 - (value - low) / span)

    coords = [(left + index * step, y_of(value)) for index, (_, value) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    marks = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{escape(label)}: {escape(_number(value))}'
        f'</title></circle><text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle">{escape(_number(value))}</text>'
        f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>'
        for (x, y), (label, value) in zip(coords, points, strict=True))
    zero = f'<line x1="{left}" x2="{width - right}" y1="{y_of(0):.1f}" y2="{y_of(0):.1f}" stroke="#d1d5db"/>' \
        if low <= 0 <= high else ""
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">{zero}'
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>{marks}</svg>')


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
