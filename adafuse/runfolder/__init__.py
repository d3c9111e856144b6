"""The run folder's format, in one place: what each file holds and how it is written.

    runs/<task>/<date>_<time>/
        .hydra/          the composed config, Hydra's settings and the command-line overrides
        .lock            held (flock) by the one process running in the folder
        results.json     Results: config, versions, git, model hashes; metrics and cost when done
        samples.jsonl    Sample: one line an item, appended and synced as each item finishes
        trace.jsonl      TraceRow: one line a round, written just before its item's sample

The runner (adafuse.runner.rundir), `adafuse.merge`, the disk logger and readers go through
this package; it needs neither torch nor the models.
"""

from adafuse.runfolder.files import (append_jsonl, json_line, read_json, read_jsonl,
                                     write_json_atomic, write_jsonl_atomic)
from adafuse.runfolder.lock import LOCK, FolderInUse, hold
from adafuse.runfolder.records import (CostTotals, ModelTotals, Record, Results, Sample, TraceRow,
                                       complete_results, header, prefix_totals, totals)

RESULTS = "results.json"
SAMPLES = "samples.jsonl"
TRACE = "trace.jsonl"

__all__ = ["LOCK", "RESULTS", "SAMPLES", "TRACE", "CostTotals", "FolderInUse", "ModelTotals",
           "Record", "Results", "Sample", "TraceRow", "append_jsonl", "complete_results", "header",
           "hold", "json_line", "prefix_totals", "read_json", "read_jsonl", "totals",
           "write_json_atomic", "write_jsonl_atomic"]
