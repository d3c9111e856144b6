"""Runs per task sorted by the main metric, the best of each task, Pareto fronts of metric
against cost, and the terminal report (these tables and the Table-1 grid of grid.py).

Every task's metrics are higher-is-better (accuracy, exact match, BLEU); a cost is
lower-is-better. Metrics are shown on grid.py's 0-100 scale, as in the grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adafuse.compare.grid import MISSING, build_grid, fmt_score, grid_rows, item_warnings, scaled
from adafuse.compare.load import Run, format_value


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
    """The runs with the highest main metric (ties: all of them); none without a metric, and
    never a run of 0 items."""
    scored = [r for r in runs if r.main is not None and r.n_done > 0]
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
            *[fmt_score(scaled(run, n)) for n in names],
            fmt(run.seconds_per_item), fmt(run.forwards_per_word, 1),
            run.label + ("" if run.complete else " (partial)"),
        ])
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def terminal_report(runs: Sequence[Run], results=None) -> str:
    """One table a task, sorted by its main metric ('*' marks the best run of each, a warning
    follows when its runs were not scored on the same items), then the Table-1 grid with
    `results`' intervals (bootstrap.build_results(runs) when not given)."""
    blocks = []
    for task, group in by_task(runs).items():
        main = next((r.main_metric for r in group if r.main_metric), None)
        title = (f"{task}: sorted by {main} (0-100, higher is better), * = best" if main
                 else f"{task}: no metrics")
        warnings = item_warnings(task, group) if task != "prompt" else []
        blocks.append("\n".join([title, text_table(*task_rows(group)), *[f"warning: {w}" for w in warnings]]))
    grid = build_grid(runs)
    if grid.tasks:
        from adafuse.compare.bootstrap import LEVEL, build_results

        # RESULTS.md's intervals: 1,000 paired resamples, seed 0 (unless the caller has them)
        res = results or build_results(runs)
        lines = [f"Table 1: systems × tasks, main metric on 0-100 (items in brackets), gain over the "
                 f"best single model on the same items with its {LEVEL}% paired-bootstrap interval "
                 "(* = average over fewer tasks)",
                 text_table(*grid_rows(res.grid, res.gain_interval))]
        lines += [f"note: {n}" for n in grid.notes if "did not all run on the same items" not in n]
        blocks.append("\n".join(lines))
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
