"""The run folder's format, in one place: what each file holds and how it is written.

    runs/<task>/<date>_<time>/
        .hydra/          the composed config, Hydra's settings and the command-line overrides
        .lock            held (flock) by the one process running in the folder
        results.json     Results: config, versions, git, model hashes; metrics and cost when done
        samples.jsonl    Sample: one line an item, appended and synced as each item finishes
        trace.jsonl      TraceRow: one line a round, written just before its item's sample

Every file of a run folder is opened through `files.open_plain`: never through a symbolic
link, so a folder someone hands you cannot make a write land outside it.

rundir.py holds RunDir, the folder of one run (continuing it after a crash, checking a
continued run's config); provenance.py the versions and git commit a result records;
checks.py the types results.json's fields must have, which records.py's `Results` checks
when it is read (as `Sample` and `TraceRow` check their lines with adafuse.safe_read's
field types), so a damaged folder is one line naming the file and the field. The
runner, `adafuse.merge`, `adafuse.score`, the disk logger and the readers go through this
package; it needs neither torch nor the models, nor the runner.
"""

from adafuse.runfolder.files import (append_jsonl, check_folder, check_location, json_line,
                                     read_bytes, read_json, read_jsonl, refuse_link,
                                     remove_temporaries, write_json_atomic, write_jsonl_atomic,
                                     write_text_atomic)
from adafuse.runfolder.lock import LOCK, FolderInUse, hold
from adafuse.runfolder.records import (CostTotals, ModelTotals, Record, Results, Sample, TraceRow,
                                       complete_results, header, prefix_totals, totals)
from adafuse.runfolder.rundir import RESULTS, SAMPLES, TRACE, RunDir, config_differences

__all__ = ["LOCK", "RESULTS", "SAMPLES", "TRACE", "CostTotals", "FolderInUse", "ModelTotals",
           "Record", "Results", "RunDir", "Sample", "TraceRow", "append_jsonl", "complete_results", "header",
           "check_folder", "check_location", "config_differences", "hold", "json_line", "prefix_totals", "read_bytes",
           "read_json", "read_jsonl", "refuse_link", "remove_temporaries", "totals", "write_json_atomic",
           "write_jsonl_atomic", "write_text_atomic"]
