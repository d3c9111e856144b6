"""RESULTS.md's "Reading the numbers": computed statements only (which intervals overlap, which
paired differences exclude zero, where two rules agree item by item), no judgement of what
they mean; a person writes that in words.
"""

from __future__ import annotations

from collections.abc import Sequence

from adafuse.compare.bootstrap import Results, average_replicates, percentile_interval
from adafuse.compare.grid import System, fmt_interval, fmt_score


def overlaps(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def reading_facts(res: Results) -> list[str]:
    """Computed statements only: no judgement of what they mean."""
    facts = []
    avgs = [(s.average(res.tasks), s) for s in res.systems
            if len(s.tasks(res.tasks)) == len(res.tasks) and all(on_most_items(res, s, t) for t in res.tasks)]
    avgs = [(v, s) for v, s in avgs if v is not None]
    if avgs:
        top_value = max(v for v, _ in avgs)
        tops = [s for v, s in avgs if v == top_value]
        top_interval = percentile_interval(average_replicates(tops[0], res.tasks))
        facts.append(f"Highest average over all {len(res.tasks)} tasks: {names(tops)}, "
                     f"{fmt_interval(top_value, top_interval)}.")
        tied = [s.label for v, s in avgs if s not in tops
                and overlaps(percentile_interval(average_replicates(s, res.tasks)), top_interval)]
        if tied:
            facts.append("Systems whose average's interval overlaps that one's: " + ", ".join(tied) + ".")
    a, b = res.adafuse, res.best_single
    if a is not None and b is not None:
        diff = percentile_interval(res.paired_difference(a))
        if diff is not None:
            where = "excludes" if diff[0] > 0 or diff[1] < 0 else "contains"
            facts.append(f"{a.label} minus {b.label} on the average: paired 95% interval "
                         f"[{diff[0]:.1f}, {diff[1]:.1f}] points, which {where} 0.")
        separated, not_separated = [], []
        for task in res.tasks:
            interval = percentile_interval(res.paired_difference(a, task))
            if interval is not None:
                (separated if interval[0] > 0 or interval[1] < 0 else not_separated).append(
                    f"{task} ({a.value(task) - b.value(task):+.1f})")
        if separated:
            facts.append(f"Tasks where the paired interval of {a.label} − {b.label} excludes 0: {', '.join(separated)}.")
        if not_separated:
            facts.append(f"Tasks where it contains 0 (the intervals cannot separate the two): {', '.join(not_separated)}.")
    for task in res.tasks:
        cells = [(s, s.cells[task]) for s in res.systems if task in s.cells and s.cells[task].value is not None]
        fewer = sum(not on_most_items(res, s, task) for s, _ in cells)
        cells = [(s, c) for s, c in cells if on_most_items(res, s, task)]  # a 50-item cell is not set against 500
        if len(cells) < 2:
            continue
        top = max(c.value for _, c in cells)
        bests = [(s, c) for s, c in cells if c.value == top]
        others = [(s, c) for s, c in cells if c.value != top]
        overlapping = [s for s, c in others if overlaps(c.interval, bests[0][1].interval)]
        facts.append(f"{task}: best {names([s for s, _ in bests])} ({fmt_score(top)}); intervals overlapping "
                     f"it: {len(overlapping)} of {len(others)} other systems"
                     + (f" ({fewer} more on fewer items: see the baselines and ablations on their items)."
                        if fewer else "."))
    facts += same_rule_facts(res)
    return facts


def on_most_items(res: Results, system: System, task: str) -> bool:
    """Whether the system's cell of `task` was scored on as many items as the column's fullest."""
    return task in system.cells and system.cells[task].run.n_done == max(res.grid.items(task))


def names(systems: Sequence[System]) -> str:
    labels = [s.label for s in systems]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels)} (tied)"


def same_rule_facts(res: Results) -> list[str]:
    """AdaFuse at θ_Δ = 0 and fixed_span with k = max_words are one rule (fixed_span.py): do
    their responses agree item by item?"""
    facts = []
    for s in res.systems:
        run = next(iter(s.cells.values())).run if s.cells else None
        if run is None or run.decoder != "adafuse" or run.theta_delta != 0:
            continue
        twin = next((o for o in res.systems if o.cells and next(iter(o.cells.values())).run.decoder == "fixed_span"
                     and next(iter(o.cells.values())).run.setting("span_words") == run.max_words), None)
        if twin is None:
            continue
        same = total = 0
        for task in res.tasks:
            if task in s.cells and task in twin.cells:
                mine = {str(x.get("id")): x.get("response") for x in s.cells[task].run.samples}
                theirs = {str(x.get("id")): x.get("response") for x in twin.cells[task].run.samples}
                shared = set(mine) & set(theirs)
                total += len(shared)
                same += sum(mine[i] == theirs[i] for i in shared)
        if total:
            facts.append(f"{s.label} and {twin.label} are the same rule by construction; identical "
                         f"responses on {same} of {total} items.")
    return facts
