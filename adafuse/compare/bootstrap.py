"""Bootstrap intervals over items for the cells of the Table-1 grid (grid.py), and paired
differences between systems.

    res = build_results(runs, resamples=1000, seed=0)
    res.systems[2].cells["triviaqa"].interval, res.paired_difference(res.adafuse, "nq")

A metric that is a mean of per-item scores (accuracy, exact match) is resampled as such. A
corpus BLEU (spBLEU, BLEU-13a) is not a mean of sentence scores: each resample is scored as a
corpus again from per-sentence sufficient statistics (adafuse/tasks/metrics/spbleu.py), checked
against the run's number before use; any other metric (chrF among them) is rescored by the
task's scorer per resample. Resampling indices depend on the seed, the task and the item count
only, so systems run on the same items are resampled alike: differences between them are
paired. The values are the grid's own: the intervals are added to its cells, never a second
set of numbers.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adafuse.compare.grid import Grid, System, build_grid, percent_scale, scaled
from adafuse.compare.load import Run

LEVEL = 95


@dataclass
class Cell:
    run: Run
    value: float | None  # the run's main metric, 0-100 (the grid's value)
    ids: list[str]  # the items, in task order
    replicates: np.ndarray | None  # one value per resample, 0-100; None: no interval
    how: str  # "items", "corpus", "rescored" or why there is no interval
    scores: np.ndarray | None = None  # per item, in `ids` order, where the value is their mean (0-1 scale)

    @property
    def interval(self) -> tuple[float, float] | None:
        return percentile_interval(self.replicates)


def percentile_interval(replicates: np.ndarray | None) -> tuple[float, float] | None:
    if replicates is None or not len(replicates):
        return None
    tail = (100 - LEVEL) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def resample_indices(task: str, n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) item indices: the same for every system with n items of `task`."""
    rng = np.random.default_rng([seed, zlib.crc32(task.encode()), n])
    return rng.integers(0, n, size=(resamples, n))


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def item_scores(run: Run, samples: list[dict]) -> np.ndarray | None:
    """The per-item scores of the main metric, when the run's number is their mean."""
    values = [(s.get("scores") or {}).get(run.main_metric) for s in samples]
    if not values or any(not isinstance(v, (int, float)) for v in values):
        return None
    scores = np.asarray(values, dtype=float)
    return scores if close(scores.mean(), run.main) else None


def corpus_replicates(run: Run, samples: list[dict], task, index: np.ndarray) -> np.ndarray | None:
    """Resamples of a corpus BLEU, each scored as a corpus from summed per-sentence statistics;
    None when the metric has none, or their sum does not give back the run's number."""
    from adafuse.tasks.metrics.spbleu import bleu_from_statistics, bleu_statistics

    metric = run.main_metric or ""
    preds = [task.extract(s.get("response") or "") for s in samples]
    golds = [task.golds({"answer": s.get("gold")}) for s in samples]
    try:
        rows = bleu_statistics(preds, golds, metric)
    except Exception:  # noqa: BLE001 - e.g. a gold the task cannot read: rescored instead
        return None
    if rows is None:
        return None
    stats = np.asarray(rows, dtype=np.int64)
    if not close(bleu_from_statistics(stats.sum(axis=0).tolist(), metric), run.main):
        return None
    return np.array([bleu_from_statistics(stats[row].sum(axis=0).tolist(), metric) for row in index])


def make_cell(run: Run, resamples: int, seed: int, rescore_cap: int = 200) -> Cell:
    scale = percent_scale(run.main_metric)
    value = scaled(run) if run.main_metric else None
    samples = sorted(run.samples, key=lambda s: (s.get("index", 0), str(s.get("id"))))
    ids = [str(s.get("id")) for s in samples]
    if value is None or not samples:
        return Cell(run, value, ids, None, "no finished items" if not samples else "no main metric")
    index = resample_indices(run.task, len(samples), resamples, seed)
    scores = item_scores(run, samples)
    if scores is not None:
        return Cell(run, value, ids, scores[index].mean(axis=1) * scale, "items", scores)
    try:
        from adafuse.tasks import get_task

        task = get_task(run.task)
    except Exception as exc:  # noqa: BLE001 - an unknown task: the number stands without interval
        return Cell(run, value, ids, None, f"task not loadable ({type(exc).__name__})")
    corpus = corpus_replicates(run, samples, task, index)
    if corpus is not None:
        return Cell(run, value, ids, corpus * scale, "corpus")
    # any other metric: the task's scorer on each resample (slow, hence fewer resamples)
    responses = [s.get("response") for s in samples]
    docs = [{"answer": s.get("gold")} for s in samples]
    values = []
    for row in index[:rescore_cap]:
        metrics = task.score([responses[i] for i in row], [docs[i] for i in row]).metrics
        if run.main_metric not in metrics:
            return Cell(run, value, ids, None, f"rescoring gives no {run.main_metric}")
        values.append(metrics[run.main_metric] * scale)
    return Cell(run, value, ids, np.array(values), f"rescored ({len(values)} resamples)")


def average_replicates(system: System, tasks: Sequence[str]) -> np.ndarray | None:
    """Tasks are independent samples: a resample of the average averages one resample a task."""
    reps = [system.cells[t].replicates for t in system.tasks(tasks)]
    if not reps or any(r is None for r in reps) or len({len(r) for r in reps}) != 1:
        return None
    return np.mean(reps, axis=0)


class Results:
    """A new grid, the given one's systems with a bootstrap Cell in each of their cells (the
    given grid is left as it was); its numbers are the grid's."""

    def __init__(self, grid: Grid, resamples: int, seed: int):
        self.resamples, self.seed = resamples, seed
        copies = {id(s): dataclasses.replace(s, cells={t: make_cell(c.run, resamples, seed)
                                                       for t, c in s.cells.items()})
                  for s in grid.systems}
        self.grid = dataclasses.replace(
            grid, systems=[copies[id(s)] for s in grid.systems], notes=list(grid.notes),
            best_single=copies.get(id(grid.best_single)), adafuse=copies.get(id(grid.adafuse)))
        self.tasks, self.metrics, self.systems = self.grid.tasks, self.grid.metrics, self.grid.systems
        self.best_single, self.adafuse = self.grid.best_single, self.grid.adafuse
        self.notes = list(self.grid.notes)
        for system in self.systems:
            for task, cell in system.cells.items():
                if cell.replicates is None:
                    self.notes.append(f"{task}, {system.label}: no interval ({cell.how})")

    def gain(self, system: System, task: str | None = None) -> float | None:
        return self.grid.gain(system, task)

    def shared_tasks(self, system: System) -> list[str]:
        return self.grid.shared_tasks(system)

    def paired_difference(self, system: System, task: str | None = None,
                          ref: System | None = None) -> np.ndarray | None:
        """Resamples of (system - ref) on a task, or on the average over shared tasks; ref is
        the best single model unless given. None unless both ran on the same items on each of
        those tasks."""
        ref = ref or self.best_single
        if ref is None or system is ref:
            return None
        diffs = []
        for t in [task] if task else self.shared_tasks(system):
            a, b = system.cells.get(t), ref.cells.get(t)
            if a is None or b is None or a.replicates is None or b.replicates is None or a.ids != b.ids:
                return None
            diffs.append(a.replicates - b.replicates)
        return np.mean(diffs, axis=0) if diffs else None

    def gain_interval(self, system: System, task: str | None = None) -> tuple[float, float] | None:
        """The interval of the relative gain, from paired resamples of both systems."""
        diff = self.paired_difference(system, task)
        if diff is None:
            return None
        shared = [task] if task else self.shared_tasks(system)
        base = np.mean([self.best_single.cells[t].replicates for t in shared], axis=0)
        ok = base != 0
        return percentile_interval(diff[ok] / np.abs(base[ok])) if ok.any() else None


def build_results(runs: Sequence[Run], resamples: int = 1000, seed: int = 0) -> Results:
    return Results(build_grid(runs), resamples, seed)
