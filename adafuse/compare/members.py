"""AdaFuse against each member alone, against the better member of each task, and the oracle
of picking between the members' own answers (RESULTS.md's "AdaFuse against its members").

    rows = member_rows(res)   # one a task, then the average over the right/wrong tasks

The oracle counts an item right when either member alone got it right: the ceiling of any rule
that picks between the members' own answers. It exists where every item is right or wrong
(accuracy, exact match), not for corpus metrics (BLEU, chrF). AdaFuse's share of the headroom
is (AdaFuse − better member) / (oracle − better member). Intervals are paired: every system of
a task is resampled with the same item indices (bootstrap.resample_indices), so the oracle's and
the differences' resamples are those of the cells themselves. A task whose systems did not run
on the same items gets no row's numbers, only a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adafuse.compare.bootstrap import Results, percentile_interval, resample_indices
from adafuse.compare.grid import System, percent_scale

Interval = tuple[float, float] | None


@dataclass
class MemberRow:
    task: str | None  # None: the average over the tasks listed in `tasks`
    n: int
    adafuse: float
    members: dict[str, float]  # label -> value, in the grid's order
    better: str  # the member with the higher value here
    vs: dict[str, tuple[float, Interval]] = field(default_factory=dict)  # label -> AdaFuse − it
    oracle: float | None = None
    oracle_interval: Interval = None
    tasks: list[str] = field(default_factory=list)

    @property
    def vs_better(self) -> tuple[float, Interval]:
        return self.vs[self.better]

    @property
    def half_width(self) -> float | None:
        interval = self.vs_better[1]
        return None if interval is None else (interval[1] - interval[0]) / 2

    @property
    def share(self) -> float | None:
        """AdaFuse's share of the headroom between the better member and the oracle."""
        if self.oracle is None:
            return None
        room = self.oracle - self.members[self.better]
        return None if room <= 0 else self.vs_better[0] / room


def members(res: Results) -> list[System]:
    """The models alone, decoding greedily: the ensemble's members."""
    return [s for s in res.systems if s.single and all(c.run.decoder == "greedy" for c in s.cells.values())]


def _task_parts(res: Results, task: str, alone: list[System]):
    """(row, {label: replicates}, adafuse replicates, oracle replicates), or a note why not."""
    a = res.adafuse
    cells = [s.cells.get(task) for s in [a, *alone]]
    if any(c is None or c.value is None for c in cells):
        return None
    if any(c.ids != cells[0].ids for c in cells[1:]):
        return f"{task}: AdaFuse and the members did not run on the same items; no comparison with them"
    values = {s.label: s.cells[task].value for s in alone}
    better = max(values, key=values.get)
    row = MemberRow(task, len(cells[0].ids), cells[0].value, values, better, tasks=[task])
    reps = {s.label: s.cells[task].replicates for s in alone}
    for label, rep in reps.items():
        diff = None if rep is None or cells[0].replicates is None else cells[0].replicates - rep
        row.vs[label] = (row.adafuse - values[label], percentile_interval(diff))
    scores = [c.scores for c in cells[1:]]
    oracle_reps = None
    if all(s is not None and np.isin(s, (0.0, 1.0)).all() for s in scores):
        scale = percent_scale(cells[0].run.main_metric)
        best_of = np.max(scores, axis=0)
        index = resample_indices(task, len(best_of), res.resamples, res.seed)
        oracle_reps = best_of[index].mean(axis=1) * scale
        row.oracle, row.oracle_interval = float(best_of.mean() * scale), percentile_interval(oracle_reps)
    return row, reps, cells[0].replicates, oracle_reps


def _average(parts: list) -> MemberRow | None:
    """The mean over the tasks with an oracle, each task resampled on its own."""
    parts = [p for p in parts if p[0].oracle is not None]
    if len(parts) < 2:
        return None
    rows = [p[0] for p in parts]
    labels = list(rows[0].members)
    values = {label: float(np.mean([r.members[label] for r in rows])) for label in labels}
    better = max(values, key=values.get)
    row = MemberRow(None, sum(r.n for r in rows), float(np.mean([r.adafuse for r in rows])), values, better,
                    tasks=[r.task for r in rows])
    ours = [p[2] for p in parts]
    for label in labels:
        theirs = [p[1][label] for p in parts]
        known = all(x is not None for x in ours + theirs)
        diff = np.mean([x - y for x, y in zip(ours, theirs)], axis=0) if known else None
        row.vs[label] = (row.adafuse - values[label], percentile_interval(diff))
    row.oracle = float(np.mean([r.oracle for r in rows]))
    row.oracle_interval = percentile_interval(np.mean([p[3] for p in parts], axis=0))
    return row


def member_rows(res: Results) -> tuple[list[MemberRow], list[str]]:
    """One row a task both AdaFuse at the paper's defaults and every member ran on the same
    items, then the average over those with an oracle; and notes on the tasks left out."""
    alone = members(res)
    if res.adafuse is None or len(alone) < 2:
        return [], []
    rows, parts, notes = [], [], []
    for task in res.tasks:
        got = _task_parts(res, task, alone)
        if isinstance(got, str):
            notes.append(got)
        elif got is not None:
            rows.append(got[0])
            parts.append(got)
    average = _average(parts)
    return rows + ([average] if average else []), notes
