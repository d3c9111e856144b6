"""Where the marks of a chart go so that none hides another: text widths (estimated
generously, so what fits here fits in a browser), wrapped and clipped text, markers at the
same place spread apart, reference lines at the same height moved apart, and label boxes
that touch their point and meet no other mark. Pixels only; svg.py draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def char_width(c: str) -> float:
    """A generous width of one character, in ems (wide fonts such as DejaVu Sans)."""
    if c in "mwMW@%…":
        return 1.0
    if c in "ijlt.,:;'|!()[] rf-":
        return 0.45
    return 0.76 if c.isupper() else 0.64


def text_width(text: str, size: float) -> float:
    """A generous estimate of a text's width in pixels."""
    return size * sum(map(char_width, text)) + 2


def wrap(text: str, width: float, size: float) -> list[str]:
    """The text cut at spaces into lines of at most `width` pixels (a word longer stays whole)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def clip(text: str, width: float, size: float) -> str:
    """The text, cut with an ellipsis to fit `width` pixels."""
    if text_width(text, size) <= width:
        return text
    while len(text) > 1 and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two boxes (x, y, width, height) overlap."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def spread(centres: Sequence[tuple[float, float]], r: float) -> list[tuple[float, float]]:
    """Centres closer than a radius to another (chained) are moved onto a circle around their
    mean, at least a radius apart, so that every marker shows."""
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(centres):
        near = [g for g in groups if any(math.dist((x, y), centres[j]) < r for j in g)]
        merged = [i] + [j for g in near for j in g]
        groups = [g for g in groups if g not in near] + [merged]
    out = list(centres)
    for group in groups:
        if len(group) < 2:
            continue
        mx = sum(centres[j][0] for j in group) / len(group)
        my = sum(centres[j][1] for j in group) / len(group)
        radius = max(r, 1.2 * r * len(group) / (2 * math.pi)) + 0.5
        for k, j in enumerate(sorted(group)):
            angle = math.pi / 2 + 2 * math.pi * k / len(group)
            out[j] = (mx + radius * math.cos(angle), my - radius * math.sin(angle))
    return out


def place_labels(items: Sequence[tuple[float, float, float, str]], obstacles: list[tuple],
                 bounds: tuple[float, float, float, float], size: float = 10) -> list[tuple | None]:
    """A box (x, y, width, height) beside each (x, y, radius, text) point: the first of eight
    places touching it (right, left, above, below, the corners) that stays in `bounds` and
    meets no obstacle (markers' boxes) and no box placed before; None where there is none (a
    label set farther away could be read as another point's)."""
    out, taken = [], list(obstacles)
    h = 1.3 * size
    for cx, cy, r, text in items:
        w, d = text_width(text, size), r + 1
        boxes = [(cx + d, cy - h / 2), (cx - d - w, cy - h / 2), (cx - w / 2, cy - d - h), (cx - w / 2, cy + d),
                 (cx + d * 0.7, cy - d * 0.7 - h), (cx - d * 0.7 - w, cy - d * 0.7 - h),
                 (cx + d * 0.7, cy + d * 0.7), (cx - d * 0.7 - w, cy + d * 0.7)]
        fits = [(x, y, w, h) for x, y in boxes
                if x >= bounds[0] and y >= bounds[1] and x + w <= bounds[2] and y + h <= bounds[3]]
        box = next((b for b in fits if text and not any(overlap(b, o) for o in taken)), None)
        if box:
            taken.append(box)
        out.append(box)
    return out


def marker_box(cx: float, cy: float, r: float) -> tuple[float, float, float, float]:
    return (cx - r - 1, cy - r - 1, 2 * r + 2, 2 * r + 2)


def spread_levels(levels: Sequence[float], gap: float) -> list[float]:
    """Heights closer than `gap` to another moved apart by `gap`, centred on where they were."""
    order = sorted(range(len(levels)), key=lambda i: levels[i])
    out = list(levels)
    k = 0
    while k < len(order):
        run = [order[k]]
        while k + len(run) < len(order) and levels[order[k + len(run)]] - levels[run[-1]] < gap:
            run.append(order[k + len(run)])
        middle = sum(levels[i] for i in run) / len(run)
        for j, i in enumerate(run):
            out[i] = middle + gap * (j - (len(run) - 1) / 2)
        k += len(run)
    return out
