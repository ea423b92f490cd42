"""Small charts as inline SVG text (no plotting library): line charts for PR and F1 curves, bar charts."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape


@dataclass
class Series:
    name: str
    xs: list[float]
    ys: list[float]
    colour: str
    dashed: bool = False
    marks: list[tuple[float, float, str]] = field(default_factory=list)   # (x, y, tooltip) dots


def rgb(colour: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in colour)


def line_chart(series: list[Series], *, x_label: str, y_label: str, title: str, width: int = 460,
               height: int = 320, vline: tuple[float, str] | None = None) -> str:
    """A 0..1 × 0..1 chart with a grid, a legend below, optional vertical marker line."""
    left, right, top, bottom = 48, 14, 30, 44
    pw, ph = width - left - right, height - top - bottom
    legend_rows = (len(series) + 2) // 3
    total_h = height + 18 * legend_rows

    def px(x: float) -> float:
        return left + max(0.0, min(1.0, x)) * pw

    def py(y: float) -> float:
        return top + (1 - max(0.0, min(1.0, y))) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
             f'viewBox="0 0 {width} {total_h}" font-family="sans-serif" font-size="11">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for i in range(11):
        v = i / 10
        parts.append(f'<line x1="{px(v):.1f}" y1="{top}" x2="{px(v):.1f}" y2="{top + ph}" stroke="#eee"/>')
        parts.append(f'<line x1="{left}" y1="{py(v):.1f}" x2="{left + pw}" y2="{py(v):.1f}" stroke="#eee"/>')
        if i % 2 == 0:
            parts.append(f'<text x="{px(v):.1f}" y="{top + ph + 14}" text-anchor="middle">{v:.1f}</text>')
            parts.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{top + ph + 32}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + ph / 2})">{escape(y_label)}</text>')
    if vline is not None:
        x, label = vline
        parts.append(f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{top + ph}" stroke="#444" '
                     f'stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{px(x) + 3:.1f}" y="{top + 11}" fill="#444">{escape(label)}</text>')
    for s in series:
        if not s.xs:
            continue
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s.xs, s.ys))
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}>'
                     f'<title>{escape(s.name)}</title></polyline>')
        for x, y, tip in s.marks:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4.5" fill="{s.colour}" stroke="#000">'
                         f'<title>{escape(tip)}</title></circle>')
    for i, s in enumerate(series):
        lx = left + (i % 3) * (pw / 3)
        ly = height + 4 + 18 * (i // 3)
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(f'<line x1="{lx:.1f}" y1="{ly:.1f}" x2="{lx + 22:.1f}" y2="{ly:.1f}" stroke="{s.colour}" '
                     f'stroke-width="3"{dash}/>')
        parts.append(f'<text x="{lx + 27:.1f}" y="{ly + 4:.1f}">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(rows: list[tuple[str, int, str]], *, title: str, width: int = 460) -> str:
    """Horizontal bars: ``(label, value, colour)`` rows."""
    left, bar_h, gap, top = 110, 18, 6, 28
    height = top + len(rows) * (bar_h + gap) + 8
    top_value = max([v for _, v, _ in rows] + [1])
    scale = (width - left - 50) / top_value
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, colour) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = value * scale
        parts.append(f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 5:.1f}" y="{y + bar_h - 5}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)
