"""Reading run folders: one `Run` per folder written by `adafuse.run` (or `adafuse.merge`).

    runs, notes = load_runs([Path("runs/triviaqa/2026-11-27_21-06-39"), Path("runs/gsm8k")])

A path may be a run folder, a sweep folder or any folder above them: run folders are found
below it. A run that was stopped early (results.json without metrics, or missing, while
samples.jsonl holds finished items) is read as a partial run, scored over its finished items.
Whatever cannot be read becomes a one-line note instead of an error, and so does a field an
older folder lacks (its value is then None, never a guess).

A run folder is read as data: JSON and plain YAML only. `${...}` interpolations in
.hydra/config.yaml are kept as the text they are, never resolved (a `${oc.env:...}` would read
this machine's environment), and nothing in a folder is imported or run.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adafuse.runfolder.checks import config_problem
from adafuse.compare.costs import COST_FIELDS, cost_totals
from adafuse.compare.hydra_config import hydra_config
from adafuse.errors import AdaFuseError
from adafuse.runfolder import RESULTS, SAMPLES, TRACE
from adafuse.safe_read import TRACE_FIELDS, finite, read_json_bounded, read_records
from adafuse.tasks.partial import score_partial

# decoder settings that change how fast a run goes, not what it decodes
PLUMBING = ("name", "_target_", "mode", "batch_size")
SKIPPED_DIRS = (".hydra", "wandb")


@dataclass
class Run:
    path: Path
    config: dict
    task: str  # "prompt" in prompt mode
    main_metric: str | None
    metrics: dict[str, float]
    n_items: int | None  # items the run was meant to decode
    n_done: int  # items finished
    cost: dict[str, Any]
    complete: bool
    sweep: str | None = None  # "<task>/<sweep folder>" for a job of a multirun
    _samples: list[dict] | None = field(default=None, repr=False)
    header: dict = field(default_factory=dict, repr=False)  # results.json as read (git, versions, times)
    trace_problem: str | None = field(default=None, repr=False)  # why its trace is not shown

    # --- what was run -----------------------------------------------------------------------

    @property
    def decoder(self) -> str:
        """The decoder's name; for a class named only by `_target_`, the class's name."""
        node = self.config.get("decoder") or {}
        target = str(node.get("_target_") or "").rpartition(".")[2]
        return str(node.get("name") or target or "?")

    def setting(self, key: str) -> Any:
        return (self.config.get("decoder") or {}).get(key)

    def number(self, key: str) -> float | int | None:
        """A numeric setting; None when absent or not a number (an unresolved `${...}`)."""
        value = self.setting(key)
        return value if finite(value) else None

    @property
    def theta_delta(self) -> float | None:
        return self.number("theta_delta")

    @property
    def max_words(self) -> int | None:
        return self.number("max_words")

    @property
    def num_candidates(self) -> int | None:
        return self.number("num_candidates")

    @property
    def model_names(self) -> list[str]:
        """The models of the set, by short name (alias, or the last part of a path or hub id)."""
        return [model_name(spec) for spec in self.config.get("models") or []]

    @property
    def is_single(self) -> bool:
        """One model decodes (greedy, or any decoder with a `model_index`, or a set of one)."""
        return self.number("model_index") is not None or len(self.model_names) == 1

    @property
    def models(self) -> list[str]:
        """The models that decode in this run: the chosen one for a single-model decoder."""
        names = self.model_names
        index = self.number("model_index")
        if index is not None and 0 <= index < len(names):
            return [names[index]]
        return names

    @property
    def model_set(self) -> str:
        """The model set the run belongs to (all its models, also for a single-model run)."""
        return " + ".join(self.model_names) or "?"

    @property
    def settings(self) -> dict[str, Any]:
        """The decoder's key settings: everything in its config but plumbing, None values and
        the model index (shown as the model instead)."""
        decoder = self.config.get("decoder") or {}
        return {k: v for k, v in decoder.items()
                if k not in PLUMBING and k != "model_index" and v is not None}

    @property
    def system(self) -> str:
        """A name for the system, the same across tasks: decoder, key settings, models."""
        from adafuse.decoder_catalog import setting_label

        parts = [self.decoder] + [f"{setting_label(self.decoder, k)}={format_value(v)}"
                                  for k, v in self.settings.items()]
        return f"{' '.join(parts)} · {' + '.join(self.models) or '?'}"

    # --- what it cost -----------------------------------------------------------------------

    @property
    def main(self) -> float | None:
        return self.metrics.get(self.main_metric) if self.main_metric else None

    @property
    def seconds_per_item(self) -> float | None:
        return self.cost.get("seconds_per_item")

    @property
    def forwards_per_word(self) -> float | None:
        forwards, words = self.cost.get("forwards"), self.cost.get("words")
        return forwards / words if forwards is not None and words else None

    # --- per item ---------------------------------------------------------------------------

    @property
    def samples(self) -> list[dict]:
        if self._samples is None:
            self._samples = read_samples(self.path)
        return self._samples

    @functools.cached_property
    def trace(self) -> dict[str, list[dict]]:
        """Trace rows by item id, in round order (empty for decoders that keep no trace)."""
        rows: dict[str, list[dict]] = {}
        try:
            records = read_records(self.path / TRACE, TRACE_FIELDS)
        except (AdaFuseError, OSError) as exc:  # a damaged trace only costs the divergence view
            self.trace_problem = first_line(exc)
            records = []
        for row in records:
            rows.setdefault(str(row.get("id")), []).append(row)
        for item_rows in rows.values():
            item_rows.sort(key=lambda r: r.get("round", 0))
        return rows

    @property
    def span_words(self) -> list[int]:
        return [w for s in self.samples for w in s.get("span_words") or []]

    @property
    def uncertain_shares(self) -> list[float]:
        return [s["uncertain_share"] for s in self.samples if s.get("uncertain_share") is not None]

    @property
    def label(self) -> str:
        """The run's folder, short: its sweep job name or <task>/<folder>."""
        return f"{self.path.parent.name}/{self.path.name}"


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(format_value(v) for v in value)
    return str(value)


def model_name(spec: Any) -> str:
    if not isinstance(spec, dict):
        return str(spec)
    name = spec.get("alias") or spec.get("name") or "?"
    return Path(str(name)).name or str(name)


def read_samples(path: Path) -> list[dict]:
    """The finished items of a run folder, each of the types adafuse.run writes (else an
    AdaFuseError naming the file and line); a torn last line (a killed run) is left out."""
    records = read_records(path / SAMPLES)
    seen, unique = set(), []
    for record in records:
        key = str(record.get("id"))
        if key not in seen:
            seen.add(key)
            unique.append(record)
    return unique


# --- finding run folders ---------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    return (path / RESULTS).is_file() or (path / SAMPLES).is_file()


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders at or below `root`, sorted; a run folder's own subfolders are not searched."""
    if is_run_dir(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if here != root and is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
    return sorted(found)


def load_runs(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """Every run below `paths`, each once, and a note for each path or folder left out."""
    runs: list[Run] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for root in paths:
        if not root.exists():
            notes.append(f"{root}: no such folder; skipped")
            continue
        dirs = find_run_dirs(root) if root.is_dir() else []
        if not dirs:
            notes.append(f"{root}: no run folders in it; skipped")
            continue
        for path in dirs:
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                run, note = load_run(path)
            except Exception as exc:  # noqa: BLE001 - one odd folder must not stop the others
                run, note = None, f"unreadable ({type(exc).__name__}: {first_line(exc)}); skipped"
            if note:
                notes.append(f"{path}: {note}")
            if run is not None:
                runs.append(run)
    return runs, notes


# --- one run ---------------------------------------------------------------------------------


def load_run(path: Path) -> tuple[Run | None, str | None]:
    """(run, note): the run, or None when it cannot be shown; a note when something is off.
    A file that is damaged or not of the types adafuse.run writes (a bad line in samples.jsonl,
    a θ that is text, a NaN metric, a YAML alias bomb) leaves the run out, and the note names
    the file."""
    results, problem = _read_results(path)
    config = (results or {}).get("config")
    if config is None:
        try:
            config = hydra_config(path)
        except AdaFuseError as exc:
            return None, f"{problem or 'results.json has no config'} and {first_line(exc)}; skipped"
        if config is None:
            return None, f"{problem or 'results.json has no config'} and no .hydra/config.yaml; skipped"
    where = RESULTS if (results or {}).get("config") is not None else ".hydra/config.yaml"
    bad = config_problem(config)
    if bad:
        return None, f"{path / where}: {bad}; skipped"
    task = (config.get("task") or {}).get("name") or ((results or {}).get("task") or {}).get("name") or "prompt"
    if not isinstance(task, str):
        return None, f"{path / RESULTS}: the task's name is {type(task).__name__}, not text; skipped"
    sweep = _sweep_name(path, results, task)
    header = results or {}
    try:
        samples = read_samples(path)
    except (AdaFuseError, OSError) as exc:
        return None, f"{first_line(exc)}; skipped"
    if results and results.get("status") == "complete":
        return _complete_run(path, config, task, sweep, header, samples)
    # stopped early: score what it finished
    if not samples:
        return None, f"{problem or 'not finished'}, no finished items yet; skipped"
    main_metric, metrics, how = score_partial(task, (header.get("task") or {}).get("main_metric"), samples)
    limit = (config.get("task") or {}).get("limit")
    n_items = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    stored = header.get("cost") if isinstance(header.get("cost"), dict) else {}
    cost, lacking = cost_totals(samples, stored.get("shared_prefix"))
    note = (f"{problem or 'not finished'}: partial, {len(samples)}"
            f"{f' of {n_items}' if n_items else ''} items, {how}"
            + "".join(f"; {line}" for line in lacking))
    return Run(path, config, task, main_metric, metrics, n_items, len(samples),
               cost, False, sweep, samples, header), note


def _complete_run(path: Path, config: dict, task: str, sweep: str | None, results: dict,
                  samples: list[dict]) -> tuple[Run | None, str | None]:
    main_metric = results.get("main_metric")
    raw = results.get("metrics") if isinstance(results.get("metrics"), dict) else {}
    if main_metric is not None and not isinstance(main_metric, str):
        return None, f"{path / RESULTS}: main_metric is {type(main_metric).__name__}, not a name; skipped"
    not_finite = [k for k, v in raw.items() if isinstance(v, (int, float)) and not finite(v)]
    if main_metric in not_finite:
        return None, f"{path / RESULTS}: its {main_metric} is {raw[main_metric]}, not a number; skipped"
    metrics = {str(k): v for k, v in raw.items() if finite(v)}
    problems = [f"{k} is {raw[k]}; not shown" for k in not_finite]
    if main_metric and main_metric not in metrics:
        problems.append(f"no {main_metric} in its metrics")
    n_items, n_missing = (v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0
                          for v in (results.get("n_items"), results.get("n_missing")))
    n_done = n_items - n_missing
    if n_done <= 0:
        problems.append("0 items scored; never marked best, not in the grid")
    elif samples and len(samples) != n_done:
        problems.append(f"{SAMPLES} holds {len(samples)} items, {RESULTS} says {n_done}")
    cost = results.get("cost") if isinstance(results.get("cost"), dict) else {}
    lacking = [k for k in COST_FIELDS if not finite(cost.get(k))]
    if lacking:
        problems.append(f"{RESULTS} cost has no {', '.join(lacking)}; shown as unknown")
    cost = {**cost, **dict.fromkeys(lacking)}
    return Run(path, config, task, main_metric, metrics, n_items, max(n_done, 0), cost, True, sweep,
               samples, results), "; ".join(problems) or None


def _read_results(path: Path) -> tuple[dict | None, str | None]:
    """results.json, read within adafuse.safe_read's bounds; what it refuses becomes a note."""
    try:
        data = read_json_bounded(path / RESULTS)
    except (AdaFuseError, OSError) as exc:
        return None, f"{RESULTS} unreadable ({first_line(exc)})"
    if data is None:
        return None, f"no {RESULTS}"
    if not isinstance(data, dict):
        return None, f"{RESULTS} is not an object"
    return data, None


def _sweep_name(path: Path, results: dict | None, task: str) -> str | None:
    sweep_dir = (results or {}).get("sweep_dir")
    if sweep_dir:
        return f"{task}/{Path(sweep_dir).name}"
    if (path.parent / "multirun.yaml").is_file():
        return f"{task}/{path.parent.name}"
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
