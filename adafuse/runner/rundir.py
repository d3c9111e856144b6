"""A run folder on disk, and how a run continues in it after a crash or a `kill -9`.

    runs/<task>/<date>_<time>/
        .hydra/          the composed config, Hydra's settings and the command-line overrides
        results.json     config, versions, git hash, model hashes; metrics and costs when done
        samples.jsonl    one line an item, appended and flushed as each item finishes
        trace.jsonl      one line a round: margins, proposals, every model's NLL, the winner

An item is finished when its line is in samples.jsonl; its trace lines are written just
before it. Reopening a folder keeps the finished items and drops what a killed run left
half-written: a truncated last line, and trace lines of an item with no sample line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from adafuse.errors import AdaFuseError

RESULTS = "results.json"
SAMPLES = "samples.jsonl"
TRACE = "trace.jsonl"

# settings that may change when a run is continued: they do not change its outputs
RESUMABLE_KEYS = ("resume", "progress", "batch_size", "decoder.batch_size", "logger", "runs_dir")
# top-level shortcuts: compared where they are interpolated to (decoder.*, task.*, models.*),
# so a difference is reported once, and not at all where it has no effect (θ for greedy)
SHORTCUTS = ("theta_delta", "max_words", "num_candidates", "limit", "seed", "device", "dtype")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file beside `path`, then rename: a reader (or a crash) sees the old
    file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from the rest of a team
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: Path, repair: bool = False) -> list[dict]:
    """The records of a JSONL file. A last line cut short by a killed writer is dropped (and,
    with `repair`, cut from the file); a bad line anywhere else is an error."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, good_bytes = [], 0
    for number, line in enumerate(lines, 1):
        last = number == len(lines)
        if not line.strip():
            good_bytes += len(line) + (0 if last else 1)
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            # the last line, or the one before a final empty "line" after its newline
            if last or (number == len(lines) - 1 and not lines[-1].strip()):
                break
            raise AdaFuseError(f"{path}:{number}: not a JSON object; the file is damaged") from None
        records.append(record)
        good_bytes += len(line) + (0 if last else 1)
    if repair and good_bytes != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_bytes)
    if repair and good_bytes and not data[:good_bytes].endswith(b"\n"):
        with open(path, "ab") as fh:  # a complete last record whose newline was lost
            fh.write(b"\n")
    return records


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


def config_differences(stored: dict, current: dict) -> list[str]:
    """The keys whose values differ, as "key: stored -> current", settings that do not change
    outputs and shortcuts aside."""
    old, new = flatten(stored), flatten(current)
    ignored = set(RESUMABLE_KEYS) | set(SHORTCUTS)
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


class RunDir:
    """The files of one run folder."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.results = self.path / RESULTS
        self.samples = self.path / SAMPLES
        self.trace = self.path / TRACE

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder for one run at a time: two processes appending to one
        samples.jsonl would decode items twice. The OS drops the lock when the holder dies,
        `kill -9` included."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "?"
                raise AdaFuseError(f"{self.path} is in use by another run (pid {holder})") from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            try:
                yield self
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read_results(self) -> dict | None:
        if not self.results.is_file():
            return None
        try:
            return json.loads(self.results.read_text(encoding="utf-8"))
        except ValueError:
            raise AdaFuseError(f"{self.results}: not valid JSON; the file is damaged") from None

    def check_config(self, config: dict) -> None:
        """Refuse to continue a run that was started with a different config."""
        stored = self.read_results()
        if stored is None:
            if self.samples.is_file() and self.samples.stat().st_size:
                raise AdaFuseError(f"{self.path} holds samples but no {RESULTS}: cannot tell its config")
            return
        diff = config_differences(stored.get("config", {}), config)
        if diff:
            shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
            raise AdaFuseError(
                f"{self.path} was run with a different config ({shown}); rerun with its settings "
                "or start a new run"
            )

    def finished(self) -> dict[str, dict]:
        """The finished items by id, after repairing what a killed run left behind."""
        samples: dict[str, dict] = {}
        for record in read_jsonl(self.samples, repair=True):
            samples.setdefault(str(record["id"]), record)  # never count an item twice
        # trace lines of unfinished items (written just before a kill) would be duplicated
        # when the item is decoded again: keep only those of finished items
        if self.trace.is_file():
            rows = read_jsonl(self.trace, repair=True)
            kept = [r for r in rows if str(r.get("id")) in samples]
            if len(kept) != len(rows):
                self._rewrite_jsonl(self.trace, kept)
        return samples

    def _rewrite_jsonl(self, path: Path, records: list[dict]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def append_item(self, sample: dict, trace_rows: list[dict]) -> None:
        """Trace lines, then the sample line (the mark of a finished item); each file written
        in one call, flushed and synced."""
        self.path.mkdir(parents=True, exist_ok=True)
        if trace_rows:
            with open(self.trace, "a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in trace_rows))
                fh.flush()
                os.fsync(fh.fileno())
        with open(self.samples, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(sample, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def write_results(self, results: dict) -> None:
        write_json_atomic(self.results, results)
