"""The metric registry.

A metric scores a whole set at once: `fn(preds, golds) -> MetricOutput`, where `preds[i]` is
the filtered prediction of item i (None when the item has no prediction, which counts as
wrong) and `golds[i]` the item's reference answers (a prediction matching any gold is right).
It returns aggregate numbers and one dict of per-item numbers per item; the aggregate keys are
the names the numbers are reported under (a metric may report several, or other names when it
had to fall back to another computation).

Most metrics are a mean of per-item scores: register those with `@register_item_metric`.
Scales: accuracies / exact match / F1 are fractions in [0, 1]; BLEU and chrF are 0-100, as
sacrebleu reports them.
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


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def add(fn: Metric) -> Metric:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = fn
        return fn

    return add


def register_item_metric(name: str) -> Callable[[ItemMetric], ItemMetric]:
    """Register `fn(pred, golds) -> float` as a metric whose aggregate is the per-item mean."""

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
