"""Metrics, registered by name; importing this package registers all of them."""

from adafuse.tasks.metrics.registry import (
    METRICS,
    MetricOutput,
    get_metric,
    register_item_metric,
    register_metric,
)
from adafuse.tasks.metrics import gsm8k, lenient_em, spbleu, squad_v11  # noqa: F401  (registers)

__all__ = ["METRICS", "MetricOutput", "get_metric", "register_item_metric", "register_metric"]
