"""Batching policy: which rows share a padded forward, and scoring requests as flat rows."""

from __future__ import annotations

from collections.abc import Sequence

# On CPU each position a forward feeds costs compute, padding included, and a forward has a
# fixed cost of roughly this many positions' worth. On the 2-core VM Gemma 3's one-token step
# for 24 rows took 78 ms; a further position costs its ~0.2 GFLOP of linear layers, about 1.3 ms
# at the ~150 GFLOPS the packed products reach (an estimate from FLOPs, not a measurement).
# A padded forward that would waste more positions than this is split in two by width; A/B at
# batch 8 in bench/RESULTS.md (session 5). `EngineOptions.split_waste` sets it per engine.
SPLIT_WASTE = 48


def width_groups(widths: Sequence[int], device_type: str, split_waste: int = SPLIT_WASTE) -> list[list[int]]:
    """Row indices for padded forwards: one group (all rows, in order), or, on CPU, two
    groups (the shorter rows, the longer rows) where that saves more than `split_waste`
    padded positions. On a GPU positions are nearly free next to a forward's launch cost,
    so rows always share one forward."""
    everything = [list(range(len(widths)))]
    if device_type != "cpu" or len(widths) < 2:
        return everything
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    full = len(widths) * widths[order[-1]]
    saved, cut = max((full - i * widths[order[i - 1]] - (len(order) - i) * widths[order[-1]], i)
                     for i in range(1, len(order)))
    return [order[:cut], order[cut:]] if saved > split_waste else everything


def score_rows(requests) -> list[tuple]:
    """score() requests {key: (rows, starts)} as flat (key, row, s, p0) rows: a prompt's rows
    share the first fed position p0, one before its earliest scored token (position p
    predicts token p + 1, so a token at index 0 has nothing to condition on)."""
    flat = []
    for key, (rows, starts) in requests.items():
        starts = [max(1, s) for s in starts]
        p0 = min(starts) - 1
        flat += [(key, row, s, p0) for row, s in zip(rows, starts)]
    return flat


def by_key(flat, values) -> dict:
    """{key: [value per row of that key]} for rows (key, ...) and one value per row."""
    out: dict = {}
    for (key, *_), value in zip(flat, values):
        out.setdefault(key, []).append(value)
    return out
