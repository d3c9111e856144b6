"""A run folder on disk, and how a run continues in it after a crash or a `kill -9`.

    runs/<task>/<date>_<time>/
        .hydra/          the composed config, Hydra's settings and the command-line overrides
        results.json     config, versions, git hash, model hashes; metrics and costs when done
        samples.jsonl    one line an item, appended and flushed as each item finishes
        trace.jsonl      one line a round: margins, proposals, every model's NLL, the winner

An item is finished when its line is in samples.jsonl; its trace lines are written just
before it. Reopening a folder keeps the finished items and drops what a killed run left
half-written: a truncated last line, and trace lines of an item with no sample line.
The records (records.py), the lock (lock.py) and the atomic writes (files.py) are this package's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from adafuse.errors import AdaFuseError
from adafuse.runfolder.files import append_jsonl, read_json, read_jsonl, write_json_atomic, write_jsonl_atomic
from adafuse.runfolder.lock import hold
from adafuse.runfolder.records import ModelTotals, Results, Sample

RESULTS = "results.json"
SAMPLES = "samples.jsonl"
TRACE = "trace.jsonl"

# settings that may change when a run is continued: they do not change its outputs
RESUMABLE_KEYS = ("resume", "progress", "batch_size", "decoder.batch_size", "logger", "runs_dir",
                  "threads", "engine", "ray")  # threads, engine, ray: they change speed, not outputs
# top-level shortcuts: compared where they are interpolated to (decoder.*, task.*, models.*),
# so a difference is reported once, and not at all where it has no effect (θ for greedy)
SHORTCUTS = ("theta_delta", "max_words", "num_candidates", "limit", "seed", "device", "dtype")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [x, y]} -> {"a.b": 1, "c.0": x, "c.1": y}"""
    if isinstance(data, dict):
        items: Iterable = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    if not out and prefix:
        out[prefix] = data  # an empty dict or list is a value too
    return out


def config_differences(stored: dict, current: dict, also_ignored: Iterable[str] = ()) -> list[str]:
    """The keys whose values differ, as "key: stored -> current", settings that do not change
    outputs, shortcuts and `also_ignored` aside."""
    old, new = flatten(stored), flatten(current)
    ignored = set(RESUMABLE_KEYS) | set(SHORTCUTS) | set(also_ignored)
    if stored.get("task") and current.get("task"):  # else prompt mode reads them directly
        ignored |= {"max_new_tokens", "stop"}

    def resumable(key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in ignored)

    out = []
    for key in sorted(set(old) | set(new)):
        if resumable(key):
            continue
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def _raised(old: Any, new: Any) -> bool:
    """A limit that selects at least the items `old` did: all of them (None), or more."""
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)
    return new is None or (count(old) and count(new) and new >= old)


class RunDir:
    """The files of one run folder."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.results = self.path / RESULTS
        self.samples = self.path / SAMPLES
        self.trace = self.path / TRACE

    @contextlib.contextmanager
    def lock(self) -> Iterator["RunDir"]:
        """Hold the folder for one run at a time: two processes appending to one
        samples.jsonl would decode items twice (adafuse.runfolder.lock)."""
        with hold(self.path):
            yield self

    def read_results(self) -> dict | None:
        data = read_json(self.results)
        return None if data is None else Results(data, str(self.results)).to_json()

    def check_config(self, config: dict) -> None:
        """Refuse to continue a run that was started with a different config. A raised
        `task.limit` is left to `check_inputs`, which checks the items it selects."""
        stored = self.read_results()
        if stored is None:
            if self.samples.is_file() and self.samples.stat().st_size:
                raise AdaFuseError(f"{self.path} holds samples but no {RESULTS}: cannot tell its config")
            return
        old = (stored.get("config") or {}).get("task") or {}
        new = config.get("task") or {}
        raised = isinstance(old, dict) and isinstance(new, dict) and _raised(old.get("limit"), new.get("limit"))
        digests = isinstance(stored.get("inputs"), dict)  # without them every limit is compared here
        diff = config_differences(stored.get("config", {}), config, ("task.limit",) if raised and digests else ())
        if diff:
            shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
            raise AdaFuseError(
                f"{self.path} was run with a different config ({shown}); rerun with its settings "
                "or start a new run"
            )

    def check_inputs(self, inputs: dict[str, str], names: dict[str, str],
                     first: Callable[[int], dict[str, str] | None] | None = None) -> None:
        """Refuse to continue a run whose inputs changed since it started: its items so far
        were decoded (and scored) from the old ones. Folders from before the digests pass.

        One change is a continuation: a complete run whose n items are the first n of a larger
        selection now (a raised `limit`, items added after the old ones), `first(n)` giving the
        digests of this selection's first n items (None when it has no more than n). Then the
        run goes on with the new items (the disk logger sees the new digests and writes the new
        header)."""
        results = self.read_results() or {}
        stored = results.get("inputs")
        changed = [k for k in inputs if k in stored and stored[k] != inputs[k]] if isinstance(stored, dict) else []
        if not changed:
            return
        n = results.get("n_items")
        if first is not None and results.get("status") == "complete" and isinstance(n, int) and n > 0 \
                and "prompt" not in changed:
            earlier = first(n)
            if earlier is not None and all(stored[k] == earlier[k] for k in changed):
                return
        what = "; ".join(names.get(k, k) for k in changed)
        raise AdaFuseError(f"{self.path}: {what} changed since this run started (digest in "
                           f"{RESULTS}); restore the old input or start a new run (a complete run "
                           "goes on to more items when its items are the first of those selected now)")

    def finished(self) -> dict[str, dict]:
        """The finished items by id, after repairing what a killed run left behind."""
        samples: dict[str, dict] = {}
        for n, record in enumerate(read_jsonl(self.samples, repair=True), 1):
            sample = Sample(record, f"{self.samples}:{n}")
            samples.setdefault(sample.key, record)  # never count an item twice
        # trace lines of unfinished items (written just before a kill) would be duplicated
        # when the item is decoded again: keep only those of finished items
        if self.trace.is_file():
            rows = read_jsonl(self.trace, repair=True)
            kept = [r for r in rows if str(r.get("id")) in samples]
            if len(kept) != len(rows):
                write_jsonl_atomic(self.trace, kept)
        return samples

    def append_item(self, sample: dict, trace_rows: list[dict]) -> None:
        """Trace lines, then the sample line (the mark of a finished item); each file written
        in one call, flushed and synced."""
        self.path.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.trace, trace_rows)
        append_jsonl(self.samples, [sample])

    def write_results(self, results: dict) -> None:
        write_json_atomic(self.results, results)

    def shared_prefix(self) -> dict | None:
        """The shared prefix's prefill cost recorded by an earlier sitting of this run, as
        {model: ModelTotals}; None when none was recorded."""
        stored = (self.read_results() or {}).get("cost")
        prefix = stored.get("shared_prefix") if isinstance(stored, dict) else None
        if not isinstance(prefix, dict):
            return None
        return {k: ModelTotals(v.get("forwards", 0), v.get("tokens_fed", 0),
                                         v.get("seconds", 0.0)) for k, v in prefix.items()}

    def record_shared_prefix(self, prefix: dict) -> None:
        """Keep the shared prefix's cost in results.json before the first item of a sitting is
        written, so a later sitting (which may prefill nothing) reports the same cost."""
        results = self.read_results() or {}
        cost = results.get("cost") if isinstance(results.get("cost"), dict) else {}
        results["cost"] = {**cost, "shared_prefix": {k: v.to_json() for k, v in prefix.items()}}
        self.write_results(results)
