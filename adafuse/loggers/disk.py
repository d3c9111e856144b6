"""The run folder as a logger: always on, and the record a continued run starts from."""

from __future__ import annotations

from typing import Any

from adafuse.runner.rundir import RunDir


class DiskLogger:
    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def log_config(self, config: dict[str, Any]) -> None:
        # results.json holds the config from the start, so a killed run can be continued;
        # a continued run keeps its file (and metrics) until it has new ones
        if self.run_dir.read_results() is None:
            self.run_dir.write_results({"status": "running", **config})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass  # the progress bar shows them; results.json gets the final ones

    def log_sample(self, sample: dict[str, Any], trace_rows: list[dict[str, Any]]) -> None:
        self.run_dir.append_item(sample, trace_rows)

    def log_results(self, results: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        self.run_dir.write_results(results)

    def close(self) -> None:
        pass
