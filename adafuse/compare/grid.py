"""The Table-1 grid, the one every view shows: the terminal, the HTML report, W&B and RESULTS.md.

    grid = build_grid(runs)
    grid.systems[0].value("triviaqa"), grid.gain(grid.systems[2])

Systems × tasks, one run a cell, each cell the task's main metric on a 0-100 scale: accuracy
and exact match (fractions) in percent, BLEU and chrF as sacrebleu reports them (each metric's
scale is declared where it is registered: adafuse/tasks/metrics/registry.py). A system's
average is the mean over the tasks it ran; its gain is relative to the best single model, on
the average over the tasks both ran. The notes say which runs were chosen where a system ran
a task more than once, which runs are partial or empty, and where the systems of one task did
not run on the same items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adafuse.compare.load import Run, format_value
from adafuse.decoder_catalog import catalog, decoder_names, setting_label
from adafuse.tasks.metrics.registry import percent

TASK_ORDER = ("gsm8k", "triviaqa", "nq", "squad", "flores_en_de", "flores_de_en", "flores_en_ro")
# AdaFuse as the paper runs it: its class's defaults
PAPER_DEFAULTS = {key: catalog()["adafuse"].default(key) for key in ("theta_delta", "max_words", "num_candidates")}
MISSING = "—"


def percent_scale(metric: str | None) -> float:
    """The factor to the 0-100 scale, as the metric declared its scale when it was registered
    (adafuse/tasks/metrics/registry.py): 1 for BLEU and chrF, 100 for fractions."""
    return percent(metric, 1.0)


def scaled(run: Run, metric: str | None = None) -> float | None:
    """A metric of the run (its main one by default) on the 0-100 scale."""
    name = metric or run.main_metric
    return percent(name, run.metrics.get(name) if name else None)


def fmt_score(value: float | None) -> str:
    """A score on the 0-100 scale, as every view prints it."""
    return MISSING if value is None else f"{value:.1f}"


def fmt_interval(value: float | None, interval: tuple[float, float] | None, digits: int = 1) -> str:
    """A score and its interval, `12.3 [10.1, 14.0]`; the score alone without one."""
    text = fmt_score(value) if digits == 1 or value is None else f"{value:.{digits}f}"
    if value is None or interval is None:
        return text
    return f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def fmt_gain(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:+.1f}%"


# --- systems -------------------------------------------------------------------------------------


def system_label(run: Run) -> str:
    """A short name: the model for one model alone; AdaFuse and how it differs from the paper's
    defaults; a baseline with its settings."""
    if run.is_single:
        model = run.models[0] if run.models else "?"
        return model if run.decoder == "greedy" else f"{model} ({run.decoder})"
    settings = run.settings
    if run.decoder == "adafuse":
        changed = [f"{setting_label(run.decoder, k)}={format_value(v)}" for k, v in settings.items()
                   if k in PAPER_DEFAULTS and v != PAPER_DEFAULTS[k]]
        extra = [f"{k}={format_value(v)}" for k, v in settings.items() if k not in PAPER_DEFAULTS]
        return "AdaFuse " + " ".join(changed + extra) if changed or extra else "AdaFuse"
    return " ".join([run.decoder] + [f"{setting_label(run.decoder, k)}={format_value(v)}" for k, v in settings.items()])


def is_paper_adafuse(run: Run) -> bool:
    return run.decoder == "adafuse" and not run.is_single and all(
        run.setting(k) == v for k, v in PAPER_DEFAULTS.items())


def system_rank(run: Run) -> tuple:
    """Single models first (in the set's order), AdaFuse at its defaults, its ablations, then
    the baselines, in the order the decoders are registered."""
    order = decoder_names()
    decoder = order.index(run.decoder) if run.decoder in order else len(order)
    return (not run.is_single, run.number("model_index") or 0, decoder, not is_paper_adafuse(run),
            system_label(run))


def order_tasks(tasks) -> list[str]:
    return sorted(set(tasks), key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t))


def pick(runs: Sequence[Run]) -> Run:
    """Of several runs of one system on one task: complete before partial, then the one with
    more items, then the latest folder."""
    return max(runs, key=lambda r: (r.complete, r.n_done, str(r.path)))


@dataclass
class Cell:
    run: Run
    value: float | None  # the run's main metric, 0-100


@dataclass
class System:
    key: str  # Run.system: decoder, settings, models
    label: str
    single: bool  # one model decodes
    rank: tuple
    cells: dict[str, Any] = field(default_factory=dict)  # by task: a Cell (or a bootstrap Cell)

    @property
    def runs(self) -> dict[str, Run]:
        return {task: cell.run for task, cell in self.cells.items()}

    def value(self, task: str) -> float | None:
        cell = self.cells.get(task)
        return cell.value if cell else None

    def tasks(self, tasks: Sequence[str]) -> list[str]:
        return [t for t in tasks if self.value(t) is not None]

    def covers(self, tasks: Sequence[str]) -> bool:
        return len(self.tasks(tasks)) == len(tasks)

    def average(self, tasks: Sequence[str]) -> float | None:
        values = [self.value(t) for t in self.tasks(tasks)]
        return sum(values) / len(values) if values else None

    def _cost_sum(self, key: str) -> float | None:
        values = [c.run.cost.get(key) for c in self.cells.values()]
        return None if not values or any(v is None for v in values) else sum(values)

    def seconds_per_item(self) -> float | None:
        """Decoding seconds over all its tasks' items; None when a run does not record them."""
        seconds = self._cost_sum("decode_seconds")
        items = sum(c.run.n_done for c in self.cells.values())
        return seconds / items if seconds is not None and items else None

    def forwards_per_word(self) -> float | None:
        forwards, words = self._cost_sum("forwards"), self._cost_sum("words")
        return forwards / words if forwards is not None and words else None


@dataclass
class Grid:
    tasks: list[str]
    metrics: dict[str, str]  # task -> its main metric
    systems: list[System]  # single models first, then AdaFuse, its ablations, the baselines
    best_single: System | None
    adafuse: System | None  # AdaFuse at the paper's setting
    notes: list[str]

    def paired(self, system: System, task: str) -> bool:
        """Whether the system and the best single model ran `task` on the same items: only
        then is a gain between them shown (a 3-item run is not set against 20 items)."""
        ref = self.best_single
        if ref is None or system.value(task) is None or ref.value(task) is None:
            return False
        mine, theirs = item_ids(system.cells[task].run), item_ids(ref.cells[task].run)
        return mine is not None and mine == theirs

    def shared_tasks(self, system: System) -> list[str]:
        """The tasks the system and the best single model ran on the same items."""
        return [t for t in system.tasks(self.tasks) if self.paired(system, t)]

    def gain(self, system: System, task: str | None = None) -> float | None:
        """Relative gain over the best single model on a task, or on the average over the
        tasks both ran on the same items (task=None); None where there are none."""
        ref = self.best_single
        if ref is None or system is ref or (task is not None and not self.paired(system, task)):
            return None
        shared = [task] if task else self.shared_tasks(system)
        mine, theirs = system.average(shared), ref.average(shared)
        if mine is None or theirs is None or theirs == 0:
            return None
        return (mine - theirs) / abs(theirs)

    def items(self, task: str) -> list[int]:
        """The item counts the systems were scored on, for one task."""
        return sorted({s.cells[task].run.n_done for s in self.systems if task in s.cells})


def item_ids(run: Run) -> frozenset[str] | None:
    """The ids of a run's finished items; None when its samples cannot be read."""
    try:
        return frozenset(str(s.get("id")) for s in run.samples)
    except Exception:  # noqa: BLE001 - a damaged samples.jsonl: the item sets are not compared
        return None


def item_warnings(task: str, runs: Sequence[Run]) -> list[str]:
    """A line when the runs of one table were not scored on the same items."""
    sizes = sorted({r.n_done for r in runs})
    if len(sizes) > 1:
        return [f"{task}: the runs did not all run on the same items "
                f"({', '.join(map(str, sizes))} items); differences are not paired"]
    sets = {ids for ids in map(item_ids, runs) if ids is not None}
    if len(sets) > 1:
        return [f"{task}: the runs did not all run on the same items ({sizes[0]} each, not the same "
                "ones); differences are not paired"]
    return []


def build_grid(runs: Sequence[Run]) -> Grid:
    """Tasks × systems, one run a cell (runs of 0 items left out). The best single model is,
    among the single-model systems covering the most tasks, the one with the best average."""
    notes: list[str] = []
    scored = []
    for run in runs:
        if run.task == "prompt" or run.main is None:
            continue
        if run.n_done == 0:
            notes.append(f"{run.task}, {system_label(run)}: {run.label} has 0 items; left out")
            continue
        scored.append(run)
    tasks = order_tasks(r.task for r in scored)
    metrics = {t: next(r.main_metric for r in scored if r.task == t) for t in tasks}
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in scored:
        groups.setdefault((run.system, run.task), []).append(run)
    labels: dict[str, set[str]] = {}
    for (key, _), group in groups.items():
        labels.setdefault(system_label(group[0]), set()).add(key)
    systems: dict[str, System] = {}
    for (key, task), group in sorted(groups.items()):
        run = pick(group)
        label = system_label(run)
        if len(labels[label]) > 1:  # e.g. one decoder on two model sets: the full name
            label = key
        if len(group) > 1:
            notes.append(f"{task}, {label}: {len(group)} runs; shown: {run.path}")
        if not run.complete:
            notes.append(f"{task}, {label}: partial run, {run.n_done} of {run.n_items or '?'} items")
        system = systems.setdefault(key, System(key, label, run.is_single, system_rank(run)))
        system.cells[task] = Cell(run, scaled(run))
    ordered = sorted(systems.values(), key=lambda s: s.rank)
    for task in tasks:
        notes += item_warnings(task, [s.cells[task].run for s in ordered if task in s.cells])
    singles = [s for s in ordered if s.single]
    best_single = max(singles, key=lambda s: (len(s.tasks(tasks)), s.average(tasks) or float("-inf")),
                      default=None)
    adafuse = next((s for s in ordered if any(is_paper_adafuse(c.run) for c in s.cells.values())), None)
    grid = Grid(tasks, metrics, ordered, best_single, adafuse, notes)
    for system in ordered:
        for task in system.tasks(tasks):
            if system is not best_single and best_single is not None and best_single.value(task) is not None \
                    and not grid.paired(system, task):
                n, m = system.cells[task].run.n_done, best_single.cells[task].run.n_done
                notes.append(f"{task}, {system.label}: {n} items against the best single model's "
                             f"{m if m != n else f'{m} other'}; no gain shown on this task")
    return grid


def fmt_gain_interval(value: float | None, interval: tuple[float, float] | None) -> str:
    """A relative gain and its interval, `+12.0% [-3.1, +25.0]`; the gain alone without one."""
    if value is None or interval is None:
        return fmt_gain(value)
    return f"{fmt_gain(value)} [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]"


def grid_rows(grid: Grid, gain_interval=None) -> tuple[list[str], list[list[str]]]:
    """The grid as text: one row a system, each cell its score and item count `15.0 (20)`,
    average and gain (with `gain_interval(system)`'s interval where given: the bootstrap's);
    the terminal prints it and the HTML report and RESULTS.md show these same numbers."""
    header = ["system", *grid.tasks, "Avg", "gain vs best single"]
    rows = []
    for s in grid.systems:
        avg = fmt_score(s.average(grid.tasks)) + ("" if s.covers(grid.tasks) else "*")
        name = s.label + (" (best single)" if s is grid.best_single else "")
        cells = [MISSING if s.value(t) is None else f"{fmt_score(s.value(t))} ({s.cells[t].run.n_done})"
                 for t in grid.tasks]
        interval = gain_interval(s) if gain_interval else None
        rows.append([name, *cells, avg, fmt_gain_interval(grid.gain(s), interval)])
    return header, rows
