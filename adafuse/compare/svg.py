"""Charts as inline SVG strings: lines, a scatter with its Pareto front, horizontal bars.

Drawn here rather than with a plotting library so the report is one file that opens with no
network and no JavaScript: every chart is a few hundred SVG elements, hover text in <title>.

    svg = line_chart([Series("w=3", [(0.0, 0.25), (0.7, 0.5)])], title="triviaqa",
                     x_label="θ_Δ", y_label="em")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

# Tableau 10: distinct in print and for the common colour-vision deficiencies
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
GREY = "#888888"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"
MARGIN = {"left": 56, "right": 16, "top": 30, "bottom": 44}


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if hi <= lo:
        pad = abs(lo) * 0.1 or 0.5
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks


def title_text(width: float, title: str) -> str:
    return (f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13" '
            f'font-weight="600">{escape(title)}</text>')


def tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-9 else "0"


@dataclass
class Frame:
    """Axes of one chart: data ranges mapped onto the pixel box inside the margins."""

    x_ticks: list[float]
    y_ticks: list[float]
    width: int = 440
    height: int = 280

    @classmethod
    def fit(cls, xs: Sequence[float], ys: Sequence[float], **size) -> Frame:
        return cls(nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys)), **size)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (MARGIN["left"], MARGIN["top"], self.width - MARGIN["right"], self.height - MARGIN["bottom"])

    def x(self, value: float) -> float:
        x0, _, x1, _ = self.box
        lo, hi = self.x_ticks[0], self.x_ticks[-1]
        return x0 + (value - lo) / (hi - lo) * (x1 - x0)

    def y(self, value: float) -> float:
        _, y0, _, y1 = self.box
        lo, hi = self.y_ticks[0], self.y_ticks[-1]
        return y1 - (value - lo) / (hi - lo) * (y1 - y0)

    def axes(self, title: str, x_label: str, y_label: str) -> list[str]:
        x0, y0, x1, y1 = self.box
        out = [title_text(self.width, title)]
        for t in self.y_ticks:
            y = self.y(t)
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e6e6e6"/>')
            out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{tick_text(t)}</text>')
        for t in self.x_ticks:
            x = self.x(t)
            out.append(f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 4}" stroke="#555"/>')
            out.append(f'<text x="{x:.1f}" y="{y1 + 17}" text-anchor="middle" font-size="11">{tick_text(t)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#555"/>')
        out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{self.height - 8}" text-anchor="middle" '
                   f'font-size="12">{escape(x_label)}</text>')
        out.append(f'<text transform="translate(14,{(y0 + y1) / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle" font-size="12">{escape(y_label)}</text>')
        return out


def svg(width: int, height: int, body: list[str], css_class: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">' + "".join(body) + "</svg>")


def legend(entries: list[tuple[str, str, bool]], top: float, left: float = MARGIN["left"]) -> list[str]:
    """One entry a line below the chart: (label, colour, dashed)."""
    out = []
    for i, (label, stroke, dashed) in enumerate(entries):
        y = top + 16 * i
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        out.append(f'<line x1="{left}" y1="{y - 4}" x2="{left + 22}" y2="{y - 4}" stroke="{stroke}" '
                   f'stroke-width="2.5"{dash}/>')
        out.append(f'<text x="{left + 28}" y="{y}" font-size="11">{escape(label)}</text>')
    return out


# --- line chart ------------------------------------------------------------------------------


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # sorted by x
    tips: list[str] = field(default_factory=list)  # hover text per point
    dashed: bool = False  # a reference line (e.g. a single model), drawn flat across
    color: str | None = None


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               width: int = 440, height: int = 280) -> str:
    """Lines through each series' points; a dashed series with one point is a horizontal
    reference line across the chart."""
    xs = [x for s in series for x, _ in s.points if not s.dashed] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points]
    frame = Frame.fit(xs, ys, width=width, height=height)
    body = frame.axes(title, x_label, y_label)
    entries = []
    for i, s in enumerate(series):
        stroke = s.color or color(i)
        entries.append((s.label, stroke, s.dashed))
        if s.dashed:
            y = frame.y(s.points[0][1])
            x0, _, x1, _ = frame.box
            tip = s.tips[0] if s.tips else s.label
            body.append(f'<line class="ref" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{stroke}" '
                        f'stroke-width="2" stroke-dasharray="5,3"><title>{escape(tip)}</title></line>')
            continue
        path = " ".join(f"{'M' if k == 0 else 'L'}{frame.x(x):.1f},{frame.y(y):.1f}"
                        for k, (x, y) in enumerate(s.points))
        body.append(f'<path class="series" d="{path}" fill="none" stroke="{stroke}" stroke-width="2.5"/>')
        for k, (x, y) in enumerate(s.points):
            tip = s.tips[k] if k < len(s.tips) else f"{x:g}, {y:g}"
            body.append(f'<circle class="point" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="4" '
                        f'fill="{stroke}"><title>{escape(tip)}</title></circle>')
    full = height + 16 * len(entries) + 6
    body += legend(entries, height + 10)
    return svg(width, full, body, "chart line-chart")


# --- scatter with Pareto front ---------------------------------------------------------------


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two boxes (x, y, width, height) overlap."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@dataclass
class Point:
    x: float
    y: float
    label: str  # written beside the point
    tip: str  # hover text
    group: int = 0  # colour index
    square: bool = False  # single-model systems


def scatter_chart(points: Sequence[Point], front: Sequence[int], *, title: str, x_label: str,
                  y_label: str, groups: Sequence[str] = (), width: int = 440, height: int = 300) -> str:
    """The points, with the Pareto front (indices into `points`, by cost) drawn as a step line
    and its points ringed."""
    frame = Frame.fit([p.x for p in points], [p.y for p in points], width=width, height=height)
    body = frame.axes(title, x_label, y_label)
    on_front = set(front)
    placed: list[tuple[float, float, float, float]] = []  # label boxes drawn so far
    if front:
        # best-so-far staircase: from each front point right at its level, then up to the next
        steps = []
        for k, i in enumerate(front):
            p = points[i]
            steps.append(f"{'M' if k == 0 else 'L'}{frame.x(p.x):.1f},{frame.y(p.y):.1f}")
            if k + 1 < len(front):
                steps.append(f"L{frame.x(points[front[k + 1]].x):.1f},{frame.y(p.y):.1f}")
        body.append(f'<path class="pareto" d="{" ".join(steps)}" fill="none" stroke="#333" '
                    f'stroke-width="1.5" stroke-dasharray="4,3"/>')
    for i, p in enumerate(points):
        cx, cy, fill = frame.x(p.x), frame.y(p.y), color(p.group)
        tip = escape(p.tip + ("  [Pareto front]" if i in on_front else ""))
        if p.square:
            body.append(f'<rect class="point" x="{cx - 4.5:.1f}" y="{cy - 4.5:.1f}" width="9" height="9" '
                        f'fill="{fill}"><title>{tip}</title></rect>')
        else:
            body.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}">'
                        f'<title>{tip}</title></circle>')
        if i in on_front:
            body.append(f'<circle class="front" cx="{cx:.1f}" cy="{cy:.1f}" r="9" fill="none" '
                        f'stroke="#333" stroke-width="1.5"/>')
    # labels: the front's first; one that would overlap a label already drawn is left to the
    # hover text
    for i in sorted(range(len(points)), key=lambda i: i not in on_front):
        p = points[i]
        cx, cy = frame.x(p.x), frame.y(p.y)
        anchor = "end" if cx > (frame.box[0] + frame.box[2]) / 2 else "start"
        dx = -11 if anchor == "end" else 11
        w = 5.6 * len(p.label)
        box = (cx + dx - (w if anchor == "end" else 0), cy - 15, w, 11)
        if not any(overlap(box, other) for other in placed):
            placed.append(box)
            body.append(f'<text x="{cx + dx:.1f}" y="{cy - 6:.1f}" text-anchor="{anchor}" font-size="10" '
                        f'fill="#333">{escape(p.label)}</text>')
    entries = [(g, color(k), False) for k, g in enumerate(groups)]
    entries.append(("Pareto front (ringed): nothing cheaper is as good", "#333", True))
    body += legend(entries, height + 10)
    return svg(width, height + 16 * len(entries) + 6, body, "chart scatter")


# --- horizontal bars -------------------------------------------------------------------------


def bar_chart(rows: Sequence[tuple[str, Sequence[float], str]], *, title: str, x_label: str,
              segments: Sequence[str] = (), x_max: float | None = None, width: int = 560) -> str:
    """One horizontal bar a row, stacked from its segments: (label, segment values, text
    written after the bar). Segment k has colour k; `segments` names them in a legend."""
    label_width = min(300, 12 + 6.2 * max((len(r[0]) for r in rows), default=10))
    top, bar_h, gap = 30, 16, 6
    right = width - 70
    total = x_max or max((sum(v) for _, v, _ in rows), default=1.0) or 1.0
    body = [title_text(width, title)]
    axis_y = top + len(rows) * (bar_h + gap) + 2
    for t in nice_ticks(0, total, 5):  # grid first, so the bars lie over it
        if t > total + 1e-9:
            break
        x = label_width + t / total * (right - label_width)
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#e6e6e6"/>')
        body.append(f'<text x="{x:.1f}" y="{axis_y + 13}" text-anchor="middle" font-size="11">{tick_text(t)}</text>')
    for i, (label, values, note) in enumerate(rows):
        y = top + i * (bar_h + gap)
        body.append(f'<text x="{label_width - 8:.1f}" y="{y + 12}" text-anchor="end" font-size="11">'
                    f'{escape(label)}</text>')
        x = label_width
        for k, v in enumerate(values):
            w = max(v, 0) / total * (right - label_width)
            name = segments[k] if k < len(segments) else ""
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                        f'fill="{color(k)}"><title>{escape(f"{label}: {name} {v:.3g}".strip())}</title></rect>')
            x += w
        body.append(f'<text x="{x + 5:.1f}" y="{y + 12}" font-size="11">{escape(note)}</text>')
    body.append(f'<text x="{(label_width + right) / 2:.1f}" y="{axis_y + 30}" text-anchor="middle" '
                f'font-size="12">{escape(x_label)}</text>')
    height = axis_y + 40
    if segments:
        x = label_width
        for k, name in enumerate(segments):
            body.append(f'<rect x="{x:.1f}" y="{height - 8}" width="10" height="10" fill="{color(k)}"/>')
            body.append(f'<text x="{x + 14:.1f}" y="{height + 1}" font-size="11">{escape(name)}</text>')
            x += 24 + 6.5 * len(name)
        height += 14
    return svg(width, height, body, "chart bars")
