"""Charts as inline SVG strings: lines, a scatter with its Pareto front, horizontal bars.

Drawn here rather than with a plotting library so the report is one file that opens with no
network and no JavaScript: every chart is a few hundred SVG elements, hover text in <title>.

    svg = line_chart([Series("w=3", [(0.0, 25.0), (0.7, 50.0)], colors=["#4e79a7"] * 2)],
                     title="triviaqa", x_label="θ_Δ", y_label="em")

Colours are the caller's (one a system, the same in every chart of a page: `colors_for`).
Nothing is drawn where another mark would hide it (layout.py places them): points at the same
place are spread on a small circle around it, reference lines at the same height a few pixels
apart, and a point's label goes where it touches its point and no other point or label (else
it is left to the legend and the hover text); an axis label too long for its axis is wrapped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from adafuse.compare.layout import clip, marker_box, place_labels, spread, spread_levels, text_width, wrap

# Tableau 10, then four darker hues for pages with more systems
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac", "#1f3b73", "#808000", "#7a1f1f", "#2f6f5f")
RAMP = ("#d4dce6", "#9fb1c6", "#637d9c", "#2e435c")  # ordered segments (1, 2, 3, 4+ words)
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"
MARGIN = {"left": 56, "right": 16, "top": 30, "bottom": 44}
LINE_H = 14  # one more line of a wrapped axis label


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def colors_for(keys: Sequence[str]) -> dict[str, str]:
    """One colour a key (a system), in the given order: the page's colour map."""
    out: dict[str, str] = {}
    for key in keys:
        out.setdefault(key, color(len(out)))
    return out


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
            f'font-weight="600">{escape(clip(title, width - 8, 13))}<title>{escape(title)}</title></text>')


def tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-9 else "0"


def tspans(lines: list[str], x: float, first_y: float) -> str:
    return "".join(f'<tspan x="{x:.1f}" y="{first_y + LINE_H * k:.1f}">{escape(line)}</tspan>'
                   for k, line in enumerate(lines))


@dataclass
class Frame:
    """Axes of one chart: data ranges mapped onto the pixel box inside the margins, which
    grow by a line for each extra line of a wrapped axis label."""

    x_ticks: list[float]
    y_ticks: list[float]
    width: int = 440
    height: int = 280
    x_lines: list[str] = field(default_factory=list)
    y_lines: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, xs: Sequence[float], ys: Sequence[float], x_label: str, y_label: str,
            width: int, height: int) -> Frame:
        frame = cls(nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys)), width, height)
        frame.x_lines = wrap(x_label, width - 8, 12)
        frame.y_lines = wrap(y_label, height - MARGIN["top"] - MARGIN["bottom"], 12)
        return frame

    @property
    def box(self) -> tuple[float, float, float, float]:
        left = MARGIN["left"] + LINE_H * (len(self.y_lines) - 1)
        bottom = self.height - MARGIN["bottom"] - LINE_H * (len(self.x_lines) - 1)
        return (left, MARGIN["top"], self.width - MARGIN["right"], bottom)

    def x(self, value: float) -> float:
        x0, _, x1, _ = self.box
        lo, hi = self.x_ticks[0], self.x_ticks[-1]
        return x0 + (value - lo) / (hi - lo) * (x1 - x0)

    def y(self, value: float) -> float:
        _, y0, _, y1 = self.box
        lo, hi = self.y_ticks[0], self.y_ticks[-1]
        return y1 - (value - lo) / (hi - lo) * (y1 - y0)

    def axes(self, title: str) -> list[str]:
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
        out.append(f'<text text-anchor="middle" font-size="12">{tspans(self.x_lines, (x0 + x1) / 2, y1 + 34)}</text>')
        middle = (y0 + y1) / 2
        out.append(f'<text transform="translate(14,{middle:.1f}) rotate(-90)" text-anchor="middle" '
                   f'font-size="12">{tspans(self.y_lines, 0, 0)}</text>')
        return out


def svg(width: int, height: int, body: list[str], css_class: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">' + "".join(body) + "</svg>")


@dataclass
class Entry:
    """A legend line: a marker (circle, square, or a line, dashed or not) and its label."""

    label: str
    color: str
    shape: str = "circle"  # "circle", "square", "line", "dashed"


def marker(shape: str, cx: float, cy: float, fill: str, css: str = "", tip: str = "", r: float = 5) -> str:
    klass = f' class="{css}"' if css else ""
    title = f"<title>{escape(tip)}</title>" if tip else ""
    if shape == "square":
        return (f'<rect{klass} x="{cx - r + 0.5:.1f}" y="{cy - r + 0.5:.1f}" width="{2 * r - 1}" '
                f'height="{2 * r - 1}" fill="{fill}" stroke="#fff" stroke-width="1">{title}</rect>')
    return (f'<circle{klass} cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="{fill}" stroke="#fff" '
            f'stroke-width="1">{title}</circle>')


def legend(entries: Sequence[Entry], top: float, width: int, left: float = 12) -> tuple[list[str], float]:
    """Entries below the chart, flowing left to right and wrapping; the elements and the
    height they take."""
    out, x, y = [], left, top
    for e in entries:
        label = clip(e.label, width - 2 * left - 30, 11)
        w = 30 + text_width(label, 11) + 10
        if x > left and x + w > width - left:
            x, y = left, y + 16
        if e.shape in ("line", "dashed"):
            dash = ' stroke-dasharray="5,3"' if e.shape == "dashed" else ""
            out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" stroke="{e.color}" '
                       f'stroke-width="2.5"{dash}/>')
        else:
            out.append(marker(e.shape, x + 11, y - 4, e.color, r=4.5))
        out.append(f'<text x="{x + 28}" y="{y}" font-size="11">{escape(label)}</text>')
        x += w
    return out, (y - top + 16 if entries else 0)


# --- line chart ------------------------------------------------------------------------------


@dataclass
class Series:
    label: str  # hover text of its line
    points: list[tuple[float, float]]  # sorted by x
    tips: list[str] = field(default_factory=list)  # hover text per point
    dashed: bool = False  # a reference line (e.g. a single model), drawn flat across
    colors: list[str] = field(default_factory=list)  # per point (a dashed series: its line)
    square: bool = False  # single-model systems


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               legend_entries: Sequence[Entry] = (), width: int = 440, height: int = 280) -> str:
    """Lines (grey) through each series' points (each in its own colour); a dashed series with
    one point is a horizontal reference line across the chart in its colour."""
    xs = [x for s in series for x, _ in s.points if not s.dashed] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points]
    frame = Frame.fit(xs, ys, x_label, y_label, width, height)
    body = frame.axes(title)
    x0, _, x1, _ = frame.box
    refs = [s for s in series if s.dashed]
    levels = spread_levels([frame.y(s.points[0][1]) for s in refs], 3.0)
    for s, y in zip(refs, levels):
        tip = s.tips[0] if s.tips else s.label
        stroke = s.colors[0] if s.colors else "#888"
        body.append(f'<line class="ref" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{stroke}" '
                    f'stroke-width="2" stroke-dasharray="5,3"><title>{escape(tip)}</title></line>')
    lines = [s for s in series if not s.dashed]
    for s in lines:
        path = " ".join(f"{'M' if k == 0 else 'L'}{frame.x(x):.1f},{frame.y(y):.1f}"
                        for k, (x, y) in enumerate(s.points))
        body.append(f'<path class="series" d="{path}" fill="none" stroke="#9a9a9a" stroke-width="1.5">'
                    f"<title>{escape(s.label)}</title></path>")
    marks = [(s, k) for s in lines for k in range(len(s.points))]
    centres = spread([(frame.x(s.points[k][0]), frame.y(s.points[k][1])) for s, k in marks], 4.5)
    for (s, k), (cx, cy) in zip(marks, centres):
        x, y = s.points[k]
        tip = s.tips[k] if k < len(s.tips) else f"{x:g}, {y:g}"
        fill = s.colors[k] if k < len(s.colors) else "#555"
        body.append(marker("square" if s.square else "circle", cx, cy, fill, "point", tip, r=4.5))
    entries, used = legend(legend_entries, height + 10, width)
    return svg(width, int(height + used + 6), body + entries, "chart line-chart")


# --- scatter with Pareto front ---------------------------------------------------------------


@dataclass
class Point:
    x: float
    y: float
    label: str  # written beside the point where there is room
    tip: str  # hover text
    color: str = PALETTE[0]
    square: bool = False  # single-model systems


def scatter_chart(points: Sequence[Point], front: Sequence[int], *, title: str, x_label: str,
                  y_label: str, legend_entries: Sequence[Entry] = (), width: int = 440,
                  height: int = 300) -> str:
    """The points, with the Pareto front (indices into `points`, by cost) drawn as a step line
    and its points ringed."""
    frame = Frame.fit([p.x for p in points], [p.y for p in points], x_label, y_label, width, height)
    body = frame.axes(title)
    on_front = set(front)
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
    centres = spread([(frame.x(p.x), frame.y(p.y)) for p in points], 5)
    for i, (p, (cx, cy)) in enumerate(zip(points, centres)):
        if i in on_front:
            body.append(f'<circle class="front" cx="{cx:.1f}" cy="{cy:.1f}" r="8.5" fill="none" '
                        f'stroke="#333" stroke-width="1.5"/>')
    for i, (p, (cx, cy)) in enumerate(zip(points, centres)):
        tip = p.tip + ("  [Pareto front]" if i in on_front else "")
        body.append(marker("square" if p.square else "circle", cx, cy, p.color, "point", tip))
    # labels: the front's first; each where it meets no point, ring or other label
    obstacles = [marker_box(cx, cy, 9.5 if i in on_front else 5.5) for i, (cx, cy) in enumerate(centres)]
    order = sorted(range(len(points)), key=lambda i: i not in on_front)
    x0, y0, x1, y1 = frame.box
    boxes = place_labels([(*centres[i], 9.5 if i in on_front else 5.5, points[i].label) for i in order],
                         obstacles, (x0 + 1, y0 + 1, x1 - 1, y1 - 1))
    for i, box in zip(order, boxes):
        if box:  # a white halo keeps it readable over the Pareto line and the grid
            body.append(f'<text class="label" x="{box[0] + 1:.1f}" y="{box[1] + 9.8:.1f}" font-size="10" '
                        f'fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke">'
                        f"{escape(points[i].label)}</text>")
    entries = [*legend_entries, Entry("Pareto front (ringed): nothing cheaper is as good", "#333", "dashed")]
    drawn, used = legend(entries, height + 10, width)
    return svg(width, int(height + used + 6), body + drawn, "chart scatter")


# --- horizontal bars -------------------------------------------------------------------------


@dataclass
class Bar:
    label: str
    values: Sequence[float] | None  # one a segment; None: not applicable (written "n/a")
    note: str  # written after the bar
    color: str = PALETTE[0]  # the bar's, or (stacked) the swatch before its label
    tip: str = ""


def bar_chart(rows: Sequence[Bar], *, title: str, x_label: str, segments: Sequence[str] = (),
              x_max: float | None = None, width: int = 560) -> str:
    """One horizontal bar a row. Without segments a row's bar is its colour; with them it is
    stacked from its values in RAMP's colours (named in a legend) and its colour is a swatch."""
    label_width = min(260, 24 + max((text_width(r.label, 11) for r in rows), default=60))
    top, bar_h, gap = 30, 16, 6
    right = width - 80
    total = x_max or max((sum(r.values or ()) for r in rows), default=1.0) or 1.0
    body = [title_text(width, title)]
    axis_y = top + len(rows) * (bar_h + gap) + 2
    for t in nice_ticks(0, total, 5):  # grid first, so the bars lie over it
        if t > total + 1e-9:
            break
        x = label_width + t / total * (right - label_width)
        body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#e6e6e6"/>')
        body.append(f'<text x="{x:.1f}" y="{axis_y + 13}" text-anchor="middle" font-size="11">{tick_text(t)}</text>')
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        label = clip(row.label, label_width - 24, 11)
        body.append(f'<text x="{label_width - 8:.1f}" y="{y + 12}" text-anchor="end" font-size="11">'
                    f'{escape(label)}<title>{escape(row.tip or row.label)}</title></text>')
        if segments:
            body.append(f'<rect x="4" y="{y + 3}" width="10" height="10" fill="{row.color}"/>')
        x = label_width
        for k, v in enumerate(row.values or ()):
            w = max(v, 0) / total * (right - label_width)
            name = segments[k] if k < len(segments) else ""
            fill = RAMP[k % len(RAMP)] if segments else row.color
            body.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                        f'fill="{fill}"><title>{escape(f"{row.label}: {name} {v:.3g}".strip())}</title></rect>')
            x += w
        note, ink = (row.note, "#222") if row.values is not None else ("n/a", "#777")
        body.append(f'<text x="{x + 5:.1f}" y="{y + 12}" font-size="11" fill="{ink}">{escape(note)}</text>')
    lines = wrap(x_label, width - 16, 12)
    body.append(f'<text text-anchor="middle" font-size="12">{tspans(lines, width / 2, axis_y + 30)}</text>')
    height = axis_y + 30 + LINE_H * (len(lines) - 1) + 10
    if segments:
        drawn, used = legend([Entry(name, RAMP[k % len(RAMP)], "square") for k, name in enumerate(segments)],
                             height + 8, width)
        body += drawn
        height += used + 4
    return svg(width, int(height), body, "chart bars")
