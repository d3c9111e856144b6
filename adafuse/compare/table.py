"""The numbers behind every view: runs per task sorted by the main metric, the best of each
task, Pareto fronts of metric against cost, and the Table-1 grid (tasks × systems).

Every task's metrics are higher-is-better (accuracy, exact match, BLEU); a cost is
lower-is-better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adafuse.compare.load import Run, format_value

MISSING = "—"


def fmt_metric(value: float | None) -> str:
    """Exact-match style metrics (fractions) with 3 decimals, BLEU style ones with 2."""
    if value is None:
        return MISSING
    return f"{value:.3f}" if abs(value) <= 1 else f"{value:.2f}"


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return format_value(value)


# --- runs per task ---------------------------------------------------------------------------


def by_task(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs grouped by task (tasks in name order, prompt mode last), each group sorted by the
    main metric, best first; runs without it come last."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.task, []).append(run)
    ordered = sorted(groups, key=lambda t: (t == "prompt", t))
    return {t: sorted(groups[t], key=lambda r: (r.main is None, -(r.main or 0.0), r.label))
            for t in ordered}


def best(runs: Sequence[Run]) -> list[Run]:
    """The runs with the highest main metric (ties: all of them); none without a metric."""
    scored = [r for r in runs if r.main is not None]
    if not scored:
        return []
    top = max(r.main for r in scored)
    return [r for r in scored if r.main == top]


def metric_names(runs: Sequence[Run]) -> list[str]:
    """The metrics of a task's runs, the main one first."""
    names: list[str] = []
    for run in runs:
        if run.main_metric and run.main_metric not in names:
            names.insert(0, run.main_metric)
    for run in runs:
        names += [k for k in run.metrics if k not in names]
    return names


def items_text(run: Run) -> str:
    if run.complete:
        return str(run.n_items if run.n_items is not None else run.n_done)
    return f"{run.n_done}/{run.n_items}" if run.n_items else f"{run.n_done}"


def task_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one task's table; the best run marked with '*'."""
    names = metric_names(runs)
    top = {id(r) for r in best(runs)}
    header = ["", "task", "models", "decoder", "θ_Δ", "max_words", "B", "n", *names,
              "s/item", "fwd/word", "run"]
    rows = []
    for run in runs:
        rows.append([
            "*" if id(run) in top else "",
            run.task,
            " + ".join(run.models) or "?",
            run.decoder,
            fmt(run.theta_delta), fmt(run.max_words), fmt(run.num_candidates),
            items_text(run),
            *[fmt_metric(run.metrics.get(n)) for n in names],
            fmt(run.seconds_per_item), fmt(run.forwards_per_word, 1),
            run.label + ("" if run.complete else " (partial)"),
        ])
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def terminal_report(runs: Sequence[Run]) -> str:
    """One table a task, sorted by its main metric; '*' marks the best run of each."""
    blocks = []
    for task, group in by_task(runs).items():
        main = next((r.main_metric for r in group if r.main_metric), None)
        title = f"{task}: sorted by {main} (higher is better), * = best" if main else f"{task}: no metrics"
        blocks.append(title + "\n" + text_table(*task_rows(group)))
    return "\n\n".join(blocks)


# --- Pareto front ----------------------------------------------------------------------------


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, metric) no other point beats: none is as cheap or cheaper
    and as good or better, and strictly one of the two. Sorted by cost."""
    front = []
    for i, (cost, value) in enumerate(points):
        dominated = any(c <= cost and v >= value and (c < cost or v > value)
                        for j, (c, v) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


COSTS: dict[str, tuple[str, Callable[[Run], float | None]]] = {
    "seconds": ("seconds per item", lambda r: r.seconds_per_item),
    "forwards": ("forwards per word", lambda r: r.forwards_per_word),
}


# --- the Table-1 grid ------------------------------------------------------------------------


@dataclass
class System:
    label: str
    single: bool  # one model decodes
    runs: dict[str, Run] = field(default_factory=dict)  # by task

    def value(self, task: str) -> float | None:
        run = self.runs.get(task)
        return run.main if run else None

    def average(self, tasks: Sequence[str]) -> float | None:
        values = [self.value(t) for t in tasks]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def covers(self, tasks: Sequence[str]) -> bool:
        return all(self.value(t) is not None for t in tasks)


@dataclass
class Grid:
    tasks: list[str]
    metrics: dict[str, str]  # task -> its main metric
    systems: list[System]  # single models first, then the rest, each by average
    best_single: System | None
    notes: list[str]

    def gain(self, system: System, task: str | None = None) -> float | None:
        """Relative gain over the best single model, on one task or (task=None) on the average
        over the tasks both have."""
        ref = self.best_single
        if ref is None or system is ref:
            return None
        if task is not None:
            mine, theirs = system.value(task), ref.value(task)
        else:
            shared = [t for t in self.tasks if system.value(t) is not None and ref.value(t) is not None]
            mine, theirs = system.average(shared), ref.average(shared)
        if mine is None or theirs is None or theirs == 0:
            return None
        return (mine - theirs) / abs(theirs)


def pick(runs: list[Run]) -> Run:
    """Of several runs of one system on one task: complete before partial, then the one with
    more items, then the latest folder."""
    return max(runs, key=lambda r: (r.complete, r.n_done, str(r.path)))


def build_grid(runs: Sequence[Run]) -> Grid:
    """Tasks × systems, one run a cell. The best single model is, among the single-model
    systems covering the most tasks, the one with the best average."""
    scored = [r for r in runs if r.main is not None and r.task != "prompt"]
    tasks = sorted({r.task for r in scored})
    metrics = {t: next(r.main_metric for r in scored if r.task == t) for t in tasks}
    cells: dict[tuple[str, str], list[Run]] = {}
    single: dict[str, bool] = {}
    for run in scored:
        cells.setdefault((run.system, run.task), []).append(run)
        single[run.system] = run.is_single
    notes = []
    systems: dict[str, System] = {}
    for (label, task), group in cells.items():
        chosen = pick(group)
        if len(group) > 1:
            notes.append(f"{task}, {label}: {len(group)} runs; shown: {chosen.label}")
        systems.setdefault(label, System(label, single[label])).runs[task] = chosen
    for task in tasks:
        sizes = sorted({s.runs[task].n_done for s in systems.values() if task in s.runs})
        if len(sizes) > 1:
            notes.append(f"{task}: systems were scored on different numbers of items ({', '.join(map(str, sizes))})")
    ordered = sorted(systems.values(),
                     key=lambda s: (not s.single, -(s.average(tasks) or float("-inf")), s.label))
    singles = [s for s in ordered if s.single]
    best_single = max(singles, key=lambda s: (len([t for t in tasks if s.value(t) is not None]),
                                              s.average(tasks) or float("-inf")), default=None)
    return Grid(tasks, metrics, ordered, best_single, notes)
