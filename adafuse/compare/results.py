"""RESULTS.md from the run folders of a Table-1 experiment, each number with a bootstrap interval.

    python -m adafuse.compare.results runs/table1_embedded --out RESULTS.md
    python -m adafuse.compare.results runs/table1_embedded --out /tmp/smoke/RESULTS.md --resamples 200

Writes the Markdown file, and beside it (in `results/`, or --assets) the compare report's HTML
and a PNG of the main plot (average score against seconds per item, one point a system). What
it writes is computed from the runs' samples.jsonl and results.json only:

- the grid: systems × tasks, each task's main metric on a 0-100 scale (accuracy and exact match
  as percentages, BLEU and chrF as sacrebleu reports them), the average over tasks and the
  relative gain over the best single model, each number with a 95% percentile-bootstrap
  interval over items (fixed seed);
- AdaFuse (θ_Δ 0.7, max_words 3, B 3) against the best single model, task by task, with a
  paired interval of the difference;
- cost: seconds per item and forwards per word;
- "Reading the numbers": facts only (which intervals overlap, which paired differences exclude
  zero), then the reading in words, which a person writes in `results/reading.md` (or
  --reading). That file's first line, `<!-- grid DIGEST -->`, names the numbers it was written
  for: RESULTS.md prints the digest of its grid, and a reading written for other numbers is
  shown under a warning that it is stale.

Intervals. A metric that is a mean of per-item scores (accuracy, exact match) is resampled as
such. A corpus metric (spBLEU, BLEU, chrF) is not a mean of sentence scores: each resample is
scored as a corpus again, from per-sentence sufficient statistics (sacrebleu's own, summed),
checked against the run's number before use; any other metric is rescored by the task's scorer
per resample. Resampling indices depend on the seed, the task and the item count only, so
systems run on the same items are resampled alike: differences between them are paired.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from adafuse.compare.load import Run, format_value, load_runs
from adafuse.compare.table import pareto_front, pick

TASK_ORDER = ("gsm8k", "triviaqa", "nq", "squad", "flores_en_de", "flores_de_en", "flores_en_ro")
PAPER_DEFAULTS = {"theta_delta": 0.7, "max_words": 3, "num_candidates": 3}
DECODER_ORDER = ("greedy", "adafuse", "fixed_span", "union_topk", "rerank")
SETTING_NAMES = {"theta_delta": "θ_Δ", "num_candidates": "B", "span_words": "k"}
CORPUS_METRICS = ("spbleu", "bleu_13a", "chrf++")  # sacrebleu scores: corpus-level, 0-100
LEVEL = 95
PLOT_SIZE = (900, 500)  # the main plot's drawing area, pixels


def percent_scale(metric: str | None) -> float:
    """Metrics are put on a 0-100 scale: BLEU and chrF already are, fractions are multiplied."""
    name = (metric or "").lower()
    return 1.0 if "bleu" in name or "chrf" in name else 100.0


# --- one cell: a run's main metric with its bootstrap replicates -------------------------------


@dataclass
class Cell:
    run: Run
    value: float | None  # the run's main metric, 0-100
    ids: list[str]  # the items, in task order
    replicates: np.ndarray | None  # one value per resample, 0-100; None: no interval
    how: str  # "items", "corpus", "rescored" or why there is no interval

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


def item_scores(run: Run, samples: list[dict]) -> np.ndarray | None:
    """The per-item scores of the main metric, when the run's number is their mean."""
    main = run.main_metric
    values = [(s.get("scores") or {}).get(main) for s in samples]
    if not values or any(not isinstance(v, (int, float)) for v in values):
        return None
    scores = np.asarray(values, dtype=float)
    return scores if abs(scores.mean() - run.main) <= 1e-6 * max(1.0, abs(run.main)) else None


def sacrebleu_metric(name: str):
    """The sacrebleu object behind a corpus metric of adafuse/tasks/metrics/spbleu.py."""
    from sacrebleu.metrics import BLEU, CHRF

    from adafuse.tasks.metrics.spbleu import SPM_TOKENIZER

    base = name.removesuffix("_published")
    if base == "spbleu":
        return BLEU(tokenize=SPM_TOKENIZER)
    if base == "bleu_13a":
        return BLEU(tokenize="13a")
    if base == "chrf++":
        return CHRF(word_order=2)
    return None


def corpus_statistics(run: Run, samples: list[dict], task) -> tuple[np.ndarray, Callable] | None:
    """Per-sentence sufficient statistics of a sacrebleu corpus metric and the function from
    their sum to the score; None when the metric is not one, or the sums do not give back the
    run's number. A `_published` metric drops empty outputs: their rows are zero."""
    main = run.main_metric or ""
    if main.removesuffix("_published") not in CORPUS_METRICS:
        return None
    try:
        metric = sacrebleu_metric(main)
    except Exception:  # noqa: BLE001 - e.g. the SentencePiece model cannot be fetched
        return None
    clean = [unicodedata.normalize("NFC", task.extract(s.get("response") or "")).strip() for s in samples]
    refs = [unicodedata.normalize("NFC", task.golds({"answer": s.get("gold")})[0]).strip() for s in samples]
    stats = np.asarray(metric._extract_corpus_statistics(clean, [refs]), dtype=np.int64)
    if main.endswith("_published"):
        stats[[not h for h in clean]] = 0

    def score(total: np.ndarray) -> float:
        return float(metric._compute_score_from_stats([int(x) for x in total]).score) if total.any() else 0.0

    return (stats, score) if abs(score(stats.sum(axis=0)) - run.main) <= 1e-6 * max(1.0, abs(run.main)) else None


def make_cell(run: Run, resamples: int, seed: int, rescore_cap: int = 200) -> Cell:
    scale = percent_scale(run.main_metric)
    value = None if run.main is None else run.main * scale
    samples = sorted(run.samples, key=lambda s: (s.get("index", 0), str(s.get("id"))))
    ids = [str(s.get("id")) for s in samples]
    if value is None or not samples:
        return Cell(run, value, ids, None, "no finished items" if not samples else "no main metric")
    index = resample_indices(run.task, len(samples), resamples, seed)
    scores = item_scores(run, samples)
    if scores is not None:
        return Cell(run, value, ids, scores[index].mean(axis=1) * scale, "items")
    try:
        from adafuse.tasks import get_task

        task = get_task(run.task)
    except Exception as exc:  # noqa: BLE001 - an unknown task: the number stands without interval
        return Cell(run, value, ids, None, f"task not loadable ({type(exc).__name__})")
    corpus = corpus_statistics(run, samples, task)
    if corpus is not None:
        stats, score = corpus
        return Cell(run, value, ids, np.array([score(stats[row].sum(axis=0)) for row in index]) * scale, "corpus")
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


# --- the grid ------------------------------------------------------------------------------------


@dataclass
class System:
    key: str  # Run.system: decoder, settings, models
    label: str
    single: bool
    rank: tuple
    cells: dict[str, Cell] = field(default_factory=dict)  # by task

    def value(self, task: str) -> float | None:
        cell = self.cells.get(task)
        return cell.value if cell else None

    def tasks(self, tasks: Sequence[str]) -> list[str]:
        return [t for t in tasks if self.value(t) is not None]

    def average(self, tasks: Sequence[str]) -> float | None:
        values = [self.value(t) for t in self.tasks(tasks)]
        return sum(values) / len(values) if values else None

    def average_replicates(self, tasks: Sequence[str]) -> np.ndarray | None:
        """Tasks are independent samples: a resample of the average averages one resample a task."""
        reps = [self.cells[t].replicates for t in self.tasks(tasks)]
        if not reps or any(r is None for r in reps) or len({len(r) for r in reps}) != 1:
            return None
        return np.mean(reps, axis=0)

    def seconds_per_item(self) -> float | None:
        seconds = sum(c.run.cost.get("decode_seconds") or 0.0 for c in self.cells.values())
        items = sum(c.run.n_done for c in self.cells.values())
        return seconds / items if items else None

    def forwards_per_word(self) -> float | None:
        forwards = sum(c.run.cost.get("forwards") or 0 for c in self.cells.values())
        words = sum(c.run.cost.get("words") or 0 for c in self.cells.values())
        return forwards / words if words else None


def system_label(run: Run) -> str:
    """A short name: the model for one model alone; AdaFuse and how it differs from the paper's
    defaults; a baseline with its settings."""
    if run.is_single:
        model = run.models[0] if run.models else "?"
        return model if run.decoder == "greedy" else f"{model} ({run.decoder})"
    settings = run.settings
    if run.decoder == "adafuse":
        changed = [f"{SETTING_NAMES.get(k, k)}={format_value(v)}" for k, v in settings.items()
                   if k in PAPER_DEFAULTS and v != PAPER_DEFAULTS[k]]
        extra = [f"{k}={format_value(v)}" for k, v in settings.items() if k not in PAPER_DEFAULTS]
        return "AdaFuse " + " ".join(changed + extra) if changed or extra else "AdaFuse"
    return " ".join([run.decoder] + [f"{SETTING_NAMES.get(k, k)}={format_value(v)}" for k, v in settings.items()])


def is_paper_adafuse(run: Run) -> bool:
    return run.decoder == "adafuse" and not run.is_single and all(
        run.setting(k) == v for k, v in PAPER_DEFAULTS.items())


def system_rank(run: Run) -> tuple:
    """Single models first (in the set's order), AdaFuse at its defaults, its ablations, then
    the baselines."""
    decoder = DECODER_ORDER.index(run.decoder) if run.decoder in DECODER_ORDER else len(DECODER_ORDER)
    return (not run.is_single, run.setting("model_index") or 0, decoder, not is_paper_adafuse(run),
            system_label(run))


@dataclass
class Results:
    tasks: list[str]
    metrics: dict[str, str]  # task -> main metric
    systems: list[System]
    best_single: System | None
    adafuse: System | None  # the paper's setting
    notes: list[str]
    resamples: int
    seed: int

    def gain(self, system: System, task: str | None = None) -> float | None:
        """Relative gain over the best single model on a task, or on the average over the
        tasks both have (task=None)."""
        ref = self.best_single
        if ref is None or system is ref:
            return None
        shared = [task] if task else [t for t in system.tasks(self.tasks) if ref.value(t) is not None]
        mine, theirs = system.average(shared), ref.average(shared)
        if mine is None or theirs is None or theirs == 0:
            return None
        return (mine - theirs) / abs(theirs)

    def paired_difference(self, system: System, task: str | None = None) -> np.ndarray | None:
        """Resamples of (system - best single) on a task, or on the average over shared tasks;
        None unless both ran on the same items on each of those tasks."""
        ref = self.best_single
        if ref is None or system is ref:
            return None
        tasks = [task] if task else [t for t in system.tasks(self.tasks) if ref.value(t) is not None]
        diffs = []
        for t in tasks:
            a, b = system.cells.get(t), ref.cells.get(t)
            if a is None or b is None or a.replicates is None or b.replicates is None or a.ids != b.ids:
                return None
            diffs.append(a.replicates - b.replicates)
        return np.mean(diffs, axis=0) if diffs else None


def order_tasks(tasks) -> list[str]:
    return sorted(set(tasks), key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t))


def build_results(runs: Sequence[Run], resamples: int = 1000, seed: int = 0) -> Results:
    scored = [r for r in runs if r.task != "prompt" and r.main is not None]
    tasks = order_tasks(r.task for r in scored)
    metrics = {t: next(r.main_metric for r in scored if r.task == t) for t in tasks}
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in scored:
        groups.setdefault((run.system, run.task), []).append(run)
    notes, systems = [], {}
    for (key, task), group in sorted(groups.items()):
        run = pick(group)
        if len(group) > 1:
            notes.append(f"{task}, {system_label(run)}: {len(group)} runs; used {run.path}")
        if not run.complete:
            notes.append(f"{task}, {system_label(run)}: partial run, {run.n_done} of {run.n_items or '?'} items")
        system = systems.setdefault(key, System(key, system_label(run), run.is_single, system_rank(run)))
        system.cells[task] = make_cell(run, resamples, seed)
    ordered = sorted(systems.values(), key=lambda s: s.rank)
    for task in tasks:
        if len({tuple(s.cells[task].ids) for s in ordered if task in s.cells}) > 1:
            notes.append(f"{task}: the systems did not all run on the same items; differences are not paired")
        for s in ordered:
            cell = s.cells.get(task)
            if cell and cell.replicates is None:
                notes.append(f"{task}, {s.label}: no interval ({cell.how})")
    singles = [s for s in ordered if s.single]
    best_single = max(singles, key=lambda s: (len(s.tasks(tasks)), s.average(tasks) or float("-inf")), default=None)
    adafuse = next((s for s in ordered if any(is_paper_adafuse(c.run) for c in s.cells.values())), None)
    return Results(tasks, metrics, ordered, best_single, adafuse, notes, resamples, seed)


# --- Markdown ------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def with_interval(value: float | None, interval: tuple[float, float] | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if interval is None:
        return fmt(value, digits)
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def pct(value: float | None, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value * 100:+.1f}%"
    return text + (f" [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]" if interval else "")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def gain_interval(res: Results, system: System, task: str | None = None) -> tuple[float, float] | None:
    """The interval of the relative gain, from paired resamples of both systems."""
    diff = res.paired_difference(system, task)
    ref = res.best_single
    if diff is None or ref is None:
        return None
    shared = [task] if task else [t for t in system.tasks(res.tasks) if ref.value(t) is not None]
    base = np.mean([ref.cells[t].replicates for t in shared], axis=0)
    ok = base != 0
    return percentile_interval(diff[ok] / np.abs(base[ok])) if ok.any() else None


def grid_section(res: Results) -> str:
    header = ["system", *[f"{t}<br>{res.metrics[t]}" for t in res.tasks], "Average", "gain vs best single"]
    rows = []
    for s in res.systems:
        covered = s.tasks(res.tasks)
        avg = s.average(res.tasks)
        avg_text = with_interval(avg, percentile_interval(s.average_replicates(res.tasks)))
        if avg is not None and len(covered) < len(res.tasks):
            avg_text += f" ({len(covered)} of {len(res.tasks)} tasks)"
        name = f"**{s.label}**" if s is res.adafuse else s.label
        if s is res.best_single:
            name += " (best single)"
        rows.append([name, *[with_interval(s.value(t), s.cells[t].interval if t in s.cells else None)
                             for t in res.tasks],
                     avg_text, pct(res.gain(s), gain_interval(res, s))])
    n_row = ["items", *[", ".join(sorted({str(s.cells[t].run.n_done) for s in res.systems if t in s.cells}))
                        for t in res.tasks], "", ""]
    return markdown_table(header, [*rows, n_row])


def adafuse_section(res: Results) -> str:
    a, b = res.adafuse, res.best_single
    if a is None or b is None:
        return "_No AdaFuse run at the paper's defaults, or no single-model run: nothing to compare._"
    rows = []
    for task in [*res.tasks, None]:
        if task and (a.value(task) is None or b.value(task) is None):
            continue
        if task is None:  # the average over the tasks both ran
            shared = [t for t in a.tasks(res.tasks) if b.value(t) is not None]
            ours, theirs = a.average(shared), b.average(shared)
        else:
            ours, theirs = a.value(task), b.value(task)
        diff = res.paired_difference(a, task)
        interval = percentile_interval(diff)
        verdict = "—" if interval is None else ("excludes 0" if interval[0] > 0 or interval[1] < 0 else "contains 0")
        rows.append([task or "**Average**", fmt(ours), fmt(theirs),
                     with_interval(ours - theirs, interval), verdict, pct(res.gain(a, task), gain_interval(res, a, task))])
    return markdown_table(["task", a.label, f"{b.label} (best single)", "difference [paired 95% CI]",
                           "interval", "relative gain [95% CI]"], rows)


def cost_section(res: Results) -> str:
    header = ["system", "s/item (all tasks)", "forwards/word", *[f"s/item {t}" for t in res.tasks], "decode hours"]
    rows = []
    for s in res.systems:
        hours = sum(c.run.cost.get("decode_seconds") or 0.0 for c in s.cells.values()) / 3600
        rows.append([s.label, fmt(s.seconds_per_item(), 2), fmt(s.forwards_per_word(), 2),
                     *[fmt(s.cells[t].run.seconds_per_item, 2) if t in s.cells else "—" for t in res.tasks],
                     fmt(hours, 2)])
    return markdown_table(header, rows)


def overlaps(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def reading_facts(res: Results) -> list[str]:
    """Computed statements only: no judgement of what they mean."""
    facts = []
    avgs = [(s.average(res.tasks), s) for s in res.systems if len(s.tasks(res.tasks)) == len(res.tasks)]
    avgs = [(v, s) for v, s in avgs if v is not None]
    if avgs:
        top_value = max(v for v, _ in avgs)
        tops = [s for v, s in avgs if v == top_value]
        top_interval = percentile_interval(tops[0].average_replicates(res.tasks))
        facts.append(f"Highest average over all {len(res.tasks)} tasks: {names(tops)}, "
                     f"{with_interval(top_value, top_interval)}.")
        tied = [s.label for v, s in avgs if s not in tops
                and overlaps(percentile_interval(s.average_replicates(res.tasks)), top_interval)]
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
        if len(cells) < 2:
            continue
        top = max(c.value for _, c in cells)
        bests = [(s, c) for s, c in cells if c.value == top]
        others = [(s, c) for s, c in cells if c.value != top]
        overlapping = [s for s, c in others if overlaps(c.interval, bests[0][1].interval)]
        facts.append(f"{task}: best {names([s for s, _ in bests])} ({fmt(top)}); intervals overlapping "
                     f"it: {len(overlapping)} of {len(others)} other systems.")
    facts += same_rule_facts(res)
    return facts


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


def wall_clock(runs: Sequence[Run]) -> str:
    """Decoding time summed over items (exact across sittings), and the earliest start and
    latest finish recorded (a run continued later records only its last sitting's)."""
    decode = sum(r.cost.get("decode_seconds") or 0.0 for r in runs)
    starts, ends = [], []
    for run in runs:
        try:
            data = json.loads((run.path / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key, bucket in (("started", starts), ("finished", ends)):
            try:
                bucket.append(datetime.fromisoformat(str(data.get(key))))
            except ValueError:
                pass
    span = (f"; recorded from {min(starts):%Y-%m-%d %H:%M} to {max(ends):%Y-%m-%d %H:%M}"
            if starts and ends else "")
    return f"{decode / 3600:.2f} h of decoding summed over the {len(runs)} runs' items{span}"


def provenance(runs: Sequence[Run]) -> str:
    commits, versions = set(), set()
    for run in runs:
        try:
            data = json.loads((run.path / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        git = data.get("git") or {}
        commits.add(str(git.get("commit") or git.get("sha") or "?")[:12] + ("+dirty" if git.get("dirty") else ""))
        torch = (data.get("versions") or {}).get("torch")
        if torch:
            versions.add(f"torch {torch}")
    return f"commit {', '.join(sorted(commits)) or '?'}; {', '.join(sorted(versions)) or 'versions unknown'}"


def grid_digest(grid: str) -> str:
    """A short name for the grid's numbers, which a reading written for them quotes."""
    return hashlib.sha256(grid.encode("utf-8")).hexdigest()[:12]


READING_HEADER = re.compile(r"\A\s*<!--\s*grid\s+([0-9a-f]+)\s*-->\s*\n?")


def reading_section(reading: str | None, digest: str, source: str) -> list[str]:
    """The person's reading, under a warning when it was written for other numbers."""
    if reading is None:
        return ["", (f"No reading in words yet: write it in `{source}`, its first line "
                     f"`<!-- grid {digest} -->` (the digest of the grid above), and rerun the command.")]
    header = READING_HEADER.match(reading)
    body = reading[header.end():] if header else reading
    parts = ["", "### In words", ""]
    if not header or header.group(1) != digest:
        written_for = f"grid {header.group(1)}" if header else "no named grid"
        parts += [(f"> **Stale:** this reading (`{source}`) was written for {written_for}, not for "
                   f"the numbers above (grid {digest}). Read the numbers, not these words."), ""]
    return parts + [body.strip()]


def render_markdown(res: Results, runs: Sequence[Run], roots: Sequence[Path], assets: dict[str, str],
                    command: str, reading: str | None = None, reading_source: str = "results/reading.md") -> str:
    models = sorted({run.model_set for run in runs if run.task != "prompt"})
    grid = grid_section(res)
    digest = grid_digest(grid)
    parts = [
        "# Results: Table 1 on the embedded pair",
        "",
        (f"Written by `{command}` on {datetime.now():%Y-%m-%d %H:%M} from {len(runs)} run folders under "
         f"{', '.join(f'`{p}`' for p in roots)} ({provenance(runs)}). Models: {', '.join(models) or '?'}. "
         "Do not edit by hand: rerun the command."),
        "",
        ("Each cell is the task's main metric on a 0-100 scale (accuracy and exact match in percent; "
         f"BLEU and chrF as sacrebleu reports them) with a {LEVEL}% percentile-bootstrap interval over "
         f"items ({res.resamples} resamples, seed {res.seed}; corpus metrics rescored as corpora). "
         "Average: the mean over tasks, its interval from resampling every task. Gain: relative to "
         f"the best single model ({res.best_single.label if res.best_single else 'none'}), on the "
         "average over the tasks both ran, with a paired interval."),
        "",
        "## Systems × tasks",
        "",
        grid,
        "",
        f"Grid digest: `{digest}` (a reading in words names the numbers it was written for by it).",
        "",
        "## AdaFuse against the best single model",
        "",
        adafuse_section(res),
        "",
        "## Cost",
        "",
        ("Seconds of decoding per item (each job's first item carries its few-shot prefill) and "
         "forwards of all models per word of the response, on the machine that ran them."),
        "",
        cost_section(res),
        "",
        f"Time: {wall_clock(runs)}.",
        "",
        "## Report and plot",
        "",
    ]
    if "html" in assets:
        parts.append(f"- The compare report (every run, the θ_Δ and cost charts, disagreements): [{assets['html']}]({assets['html']})")
    if "png" in assets:
        parts += ["- Main plot: average score against seconds per item, one point a system (those that ran the most tasks), the Pareto front ringed.",
                  "", f"![average score vs seconds per item]({assets['png']})"]
    for key in ("html_note", "png_note"):
        if key in assets:
            parts.append(f"- {assets[key]}")
    parts += ["", "## Reading the numbers", "",
              "Computed facts first; the reading in words after them is written by a person.", ""]
    parts += [f"- {fact}" for fact in reading_facts(res)] or ["- (no runs with metrics)"]
    parts += reading_section(reading, digest, reading_source)
    if res.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in res.notes]
    return "\n".join(parts) + "\n"


# --- the report and the plot ---------------------------------------------------------------------


def main_plot_svg(res: Results) -> str | None:
    from adafuse.compare import svg

    # averages over different task sets do not compare: only the systems that ran the most tasks
    most = max((len(s.tasks(res.tasks)) for s in res.systems), default=0)
    points = []
    for s in res.systems:
        if len(s.tasks(res.tasks)) < most:
            continue
        avg, cost = s.average(res.tasks), s.seconds_per_item()
        if avg is None or cost is None:
            continue
        group = 0 if s.single else (1 if s is res.adafuse else (2 if s.label.startswith("AdaFuse") else 3))
        points.append(svg.Point(cost, avg, s.label, f"{s.label}: {avg:.1f}, {cost:.2f} s/item", group, s.single))
    if not points:
        return None
    front = pareto_front([(p.x, p.y) for p in points])
    return svg.scatter_chart(points, front, title=f"Average over {most} tasks vs cost",
                             x_label="seconds per item (all tasks)", y_label="average score (0-100)",
                             groups=["one model (square)", "AdaFuse", "AdaFuse ablations", "baselines"],
                             width=PLOT_SIZE[0], height=PLOT_SIZE[1])


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome",
                                                "google-chrome-stable")) if p), None)


def screenshot(html: Path, png: Path, width: int, height: int, timeout: float = 120) -> str | None:
    """Headless Chromium's screenshot of a page; an error message, or None when it worked."""
    binary = find_chromium()
    if binary is None:
        return "Chromium is not installed"
    png.unlink(missing_ok=True)
    try:
        subprocess.run([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--no-first-run", f"--user-data-dir={png.parent / '.chromium'}",
                        f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri()],
                       capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Chromium failed ({type(exc).__name__})"
    finally:
        shutil.rmtree(png.parent / ".chromium", ignore_errors=True)
    return None if png.is_file() and png.stat().st_size else "Chromium wrote no screenshot"


def write_assets(res: Results, runs: Sequence[Run], notes: Sequence[str], out: Path, assets: Path,
                 html: bool = True, png: bool = True) -> dict[str, str]:
    """The compare report and the main plot's PNG in `assets`; links relative to `out`."""
    import os

    written: dict[str, str] = {}
    assets.mkdir(parents=True, exist_ok=True)

    def link(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), out.resolve().parent)).as_posix()

    if html:
        from adafuse.compare.disagree import default_pair
        from adafuse.compare.html import render_report

        report = assets / "report.html"
        report.write_text(render_report(runs, notes, default_pair(runs), title="Table 1 on the embedded pair"),
                          encoding="utf-8")
        written["html"] = link(report)
    if png:
        chart = main_plot_svg(res)
        if chart is None:
            written["png_note"] = "No main plot: no system has both an average and a cost."
        else:
            page = assets / "main_plot.html"
            page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:8px;'
                            f'background:#fff}}</style></head><body>{chart}</body></html>\n', encoding="utf-8")
            image = assets / "main_plot.png"
            # the legend (4 groups and the front) hangs below the plot area: 16 px a line
            problem = screenshot(page, image, PLOT_SIZE[0] + 20, PLOT_SIZE[1] + 16 * 5 + 30)
            if problem:
                written["png_note"] = (f"No PNG of the main plot: {problem}; the chart is in "
                                       f"[{link(page)}]({link(page)}).")
            else:
                page.unlink()
                written["png"] = link(image)
    return written


# --- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m adafuse.compare.results", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run, sweep or runs folders")
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"), help="the Markdown file (default: RESULTS.md)")
    parser.add_argument("--assets", type=Path, help="where the report and the PNG go (default: results/ beside --out)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--no-html", action="store_true", help="skip the compare report")
    parser.add_argument("--no-png", action="store_true", help="skip the PNG of the main plot")
    parser.add_argument("--reading", type=Path,
                        help="the reading in words to include (default: reading.md in the assets folder, if any)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resamples < 1:
        print("error: --resamples must be at least 1", file=sys.stderr)
        return 2
    if args.reading and not args.reading.is_file():
        print(f"error: --reading {args.reading}: no such file", file=sys.stderr)
        return 2
    runs, notes = load_runs(args.paths)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    runs = [r for r in runs if r.task != "prompt"]
    if not runs:
        print("error: no task runs to report", file=sys.stderr)
        return 2
    res = build_results(runs, args.resamples, args.seed)
    res.notes = [*notes, *res.notes]
    assets_dir = args.assets or args.out.parent / "results"
    reading_path = args.reading or assets_dir / "reading.md"
    reading = reading_path.read_text(encoding="utf-8") if reading_path.is_file() else None
    assets = write_assets(res, runs, notes, args.out, assets_dir, html=not args.no_html, png=not args.no_png)
    command = "python -m adafuse.compare.results " + " ".join(map(str, args.paths)) + f" --out {args.out}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    source = os.path.relpath(reading_path, args.out.parent)
    args.out.write_text(render_markdown(res, runs, args.paths, assets, command, reading, source), encoding="utf-8")
    print(f"wrote {args.out}" + "".join(f", {v}" for k, v in assets.items() if k in ("html", "png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
