"""The run folder as a logger: always on, and the record a continued run starts from."""

from __future__ import annotations

import contextlib
from typing import Any

from adafuse.errors import AdaFuseError
from adafuse.runfolder.rundir import RunDir


@contextlib.contextmanager
def _writing(run_dir: RunDir):
    """A failed write (a full disk, a read-only folder) as one line naming the file or folder:
    write() and fsync() errors carry no file name."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or run_dir.path
        raise AdaFuseError(f"cannot write {where}: {exc.strerror or exc}") from None


class DiskLogger:
    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def log_config(self, config: dict[str, Any]) -> None:
        # results.json holds the config from the start, so a killed run can be continued;
        # a continued run keeps its file (and metrics) until it has new ones, unless it goes on
        # to more items (RunDir.check_inputs): its old file describes fewer
        current = self.run_dir.read_results()
        with _writing(self.run_dir):
            if current is None or ("inputs" in current and current["inputs"] != config.get("inputs")):
                self.run_dir.write_results({"status": "running", **config})
            elif current.get("status") == "interrupted":  # continued after Ctrl-C: running again
                current.pop("interrupted", None)
                self.run_dir.write_results({**current, "status": "running"})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass  # the progress bar shows them; results.json gets the final ones

    def log_sample(self, sample: dict[str, Any], trace_rows: list[dict[str, Any]]) -> None:
        with _writing(self.run_dir):
            self.run_dir.append_item(sample, trace_rows)

    def log_results(self, results: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        with _writing(self.run_dir):
            self.run_dir.write_results(results)

    def close(self) -> None:
        pass
