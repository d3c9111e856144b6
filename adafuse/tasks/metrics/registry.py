"""The metric registry.

A metric scores a whole set at once: `fn(preds, golds) -> MetricOutput`, where `preds[i]` is
the filtered prediction of item i (None when the item has no prediction, which counts as
wrong) and `golds[i]` the item's reference answers (a prediction matching any gold is right).
It returns aggregate numbers and one dict of per-item numbers per item; the aggregate keys are
the names the numbers are reported under (a metric may report several, or other names when it
had to fall back to another computation).

Most metrics are a mean of per-item scores: register those with `@register_item_metric`.
Each metric declares its scale when it is registered: `scale=1` (the default) for fractions in
[0, 1] (accuracy, exact match, F1), `scale=100` for numbers already on 0-100 (BLEU and chrF, as
sacrebleu reports them), for its name and each other name it may report under (`reports`).
Results files keep each number on its own scale; every report prints them on one 0-100 scale
through `percent`, the one place that rule lives (torch-free: compare and score both use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from adafuse.tasks.errors import TaskError


@dataclass
class MetricOutput:
    aggregate: dict[str, float]
    per_item: list[dict[str, float]]


Preds = Sequence[Optional[str]]
Golds = Sequence[Sequence[str]]
Metric = Callable[[Preds, Golds], MetricOutput]
ItemMetric = Callable[[str, Sequence[str]], float]

METRICS: dict[str, Metric] = {}
SCALES: dict[str, float] = {}  # each name a metric reports under: the top of its range, 1 or 100


def register_metric(name: str, *, scale: float = 1.0, reports: Sequence[str] = ()) -> Callable[[Metric], Metric]:
    """Register `fn(preds, golds) -> MetricOutput` under `name`. scale: the top of the range
    its numbers are on (1: a fraction; 100: BLEU, chrF); reports: the other aggregate names
    it may return (a fallback computation), on the same scale."""
    if scale not in (1, 100):
        raise ValueError(f"metric {name!r}: scale must be 1 or 100, got {scale!r}")

    def add(fn: Metric) -> Metric:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = fn
        for reported in (name, *reports):
            SCALES[reported] = float(scale)
        return fn

    return add


def percent(name: str | None, value: float | None) -> float | None:
    """A metric's number on the 0-100 scale every report prints: a fraction times 100, a
    0-100 metric as it is. A name no metric reports (an older or foreign results file) is
    taken as a fraction, the default scale."""
    import adafuse.tasks.metrics  # noqa: F401  registers every metric (and its scale)

    if value is None:
        return None
    return value * 100.0 / SCALES.get(name or "", 1.0)


def register_item_metric(name: str) -> Callable[[ItemMetric], ItemMetric]:
    """Register `fn(pred, golds) -> float` as a metric whose aggregate is the per-item mean
    (a fraction when each item's score is in [0, 1]: scale 1)."""

    def add(fn: ItemMetric) -> ItemMetric:
        def metric(preds: Preds, golds: Golds) -> MetricOutput:
            scores = [0.0 if p is None else float(fn(p, g)) for p, g in zip(preds, golds, strict=True)]
            mean = sum(scores) / len(scores) if scores else 0.0
            return MetricOutput({name: mean}, [{name: s} for s in scores])

        metric.__doc__ = fn.__doc__
        register_metric(name)(metric)
        return fn

    return add


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise TaskError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}") from None
