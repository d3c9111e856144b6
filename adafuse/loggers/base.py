"""The logger protocol the runner talks to, and the fan-out to several loggers.

The runner never imports wandb: it calls these five methods on whatever `build_logger` gave
it. A logger that fails must not stop the run: `MultiLogger` hands each call to each logger.
"""

from __future__ import annotations

from typing import Any, Protocol


class Logger(Protocol):
    def log_config(self, config: dict[str, Any]) -> None:
        """Once, before the first item: the resolved config (and provenance)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Running numbers after `step` items are done."""

    def log_sample(self, sample: dict[str, Any], trace_rows: list[dict[str, Any]]) -> None:
        """One finished item and its rounds."""

    def log_results(self, results: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        """Once, at the end: final metrics and costs, and every item (those of an earlier,
        continued run included)."""

    def close(self) -> None:
        """Always called, also after an error."""


class MultiLogger:
    """Calls every logger in order."""

    def __init__(self, loggers: list[Logger]):
        self.loggers = list(loggers)

    def log_config(self, config):
        for lg in self.loggers:
            lg.log_config(config)

    def log_metrics(self, metrics, step):
        for lg in self.loggers:
            lg.log_metrics(metrics, step)

    def log_sample(self, sample, trace_rows):
        for lg in self.loggers:
            lg.log_sample(sample, trace_rows)

    def log_results(self, results, samples):
        for lg in self.loggers:
            lg.log_results(results, samples)

    def close(self):
        for lg in self.loggers:
            lg.close()
