"""Systems run on fewer items than the rest of their task, set against every system on those
same items (RESULTS.md's "Baselines and ablations on their items").

    cut, notes = common_items(runs)      # the tasks whose runs differ in items, each cut down
    sub = build_results(cut)             # a grid with intervals, every difference paired
    rows = adafuse_differences(sub)      # each system − AdaFuse, per task and on the average

The sized Table 1 runs AdaFuse and each member on 500 TriviaQA items and the eight baselines
and ablations on the first 100 of them. The main grid shows each system on its own items, so
its baselines cannot be set against AdaFuse there: the items differ. Here every run of such a
task is cut to the items that all of that task's runs finished, and its main metric is taken
again over those items: the mean of the kept per-item scores where the run's number is their
mean (accuracy, exact match), else the task's own scorer on the kept responses (corpus BLEU,
chrF), used only when it gives back the run's number on all of its items. Tasks whose runs all
ran on the same items are left out: the main grid already pairs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from adafuse.compare.bootstrap import Results, close, item_scores, percentile_interval
from adafuse.compare.grid import item_ids
from adafuse.compare.load import Run

Interval = tuple[float, float] | None


def common_items(runs: Sequence[Run]) -> tuple[list[Run], list[str]]:
    """Every run of each task whose runs did not all finish the same items, cut to the items
    all of them finished; and a note for each task that could not be cut."""
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        if run.task != "prompt" and run.main is not None and run.n_done:
            by_task.setdefault(run.task, []).append(run)
    out, notes = [], []
    for task, group in by_task.items():
        sets = [item_ids(run) for run in group]
        if any(ids is None for ids in sets) or len(set(sets)) == 1:
            continue  # unreadable samples (a note elsewhere), or already on the same items
        keep = frozenset.intersection(*sets)
        if not keep:
            notes.append(f"{task}: its runs share no item; left out")
            continue
        cut = [restrict(run, keep) for run in group]
        failed = [run for run, c in zip(group, cut) if c is None]
        if failed:
            notes.append(f"{task}: {failed[0].path} cannot be scored again on the shared items; task left out")
            continue
        out += cut
    return out, notes


def restrict(run: Run, keep: frozenset[str]) -> Run | None:
    """The run as if it had decoded only the items in `keep`; None when its metric cannot be
    taken again over them."""
    samples = [s for s in run.samples if str(s.get("id")) in keep]
    value = subset_value(run, samples)
    if value is None:
        return None
    return dataclasses.replace(run, metrics={run.main_metric: value}, n_items=len(samples),
                               n_done=len(samples), cost={}, _samples=samples)


def subset_value(run: Run, samples: list[dict]) -> float | None:
    """The run's main metric over `samples` (a part of its own), on the run's scale."""
    if item_scores(run, run.samples) is not None:
        return float(np.mean([s["scores"][run.main_metric] for s in samples]))
    try:
        from adafuse.tasks import get_task

        task = get_task(run.task)
        whole, part = (task.score([s.get("response") or "" for s in rows],
                                  [{"answer": s.get("gold")} for s in rows]).metrics.get(run.main_metric)
                       for rows in (run.samples, samples))
    except Exception:  # noqa: BLE001 - an unknown task, a gold it cannot read: left out
        return None
    if whole is None or part is None or not close(whole, run.main):
        return None  # the scorer does not give back the run's own number: not trusted on a part
    return part


@dataclasses.dataclass
class Difference:
    system: str  # the system's label
    per_task: dict[str, tuple[float, Interval]]  # task -> (system − AdaFuse, paired interval)
    average: tuple[float, Interval] | None  # over the tasks of `per_task`


def adafuse_differences(res: Results) -> list[Difference]:
    """Each system but AdaFuse at the paper's defaults, minus AdaFuse, on every task both ran
    (on the same items, as common_items makes them), with paired intervals."""
    ada = res.adafuse
    if ada is None:
        return []
    rows = []
    for system in res.systems:
        if system is ada:
            continue
        per_task, replicates = {}, []
        for task in res.tasks:
            mine, theirs = system.cells.get(task), ada.cells.get(task)
            if mine is None or theirs is None or mine.ids != theirs.ids or mine.value is None:
                continue
            diff = res.paired_difference(system, task, ref=ada)
            if diff is not None:
                replicates.append(diff)
            per_task[task] = (mine.value - theirs.value, percentile_interval(diff))
        if not per_task:
            continue
        mean = float(np.mean([d for d, _ in per_task.values()]))
        interval = percentile_interval(np.mean(replicates, axis=0)) if len(replicates) == len(per_task) else None
        rows.append(Difference(system.label, per_task, (mean, interval)))
    return rows
