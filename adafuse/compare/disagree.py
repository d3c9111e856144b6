"""Per-item disagreements between two runs of one task, and where their traces part.

    for d in disagreements(run_a, run_b):
        d.question, d.answers, d.gold, d.divergence   # divergence: one Divergence a run

Two runs diverge at the first character where their responses differ; in each run the
round that committed that character is where its trace left the other's path. Rounds are
not compared by number: with different span lengths the same text takes different rounds.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from adafuse.compare.load import Run
from adafuse.tasks.errors import TaskError


@dataclass
class Divergence:
    """One run's round at the point where the two responses part."""

    round: int | None  # None: the run keeps no trace (greedy)
    prefix: str  # the response before the round
    committed: str  # the span this run appended there
    proposals: list[dict]  # the round's proposals, best ensemble score first
    margins: list[float | None]  # each model's top-1 margin Δ1
    explored: list[bool]


@dataclass
class Disagreement:
    id: str
    question: str
    answers: tuple[str, str]  # extracted answers, run A then run B
    scores: tuple[float | None, float | None]  # main-metric score of each
    gold: Any
    divergence: tuple[Divergence, Divergence]


def common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a, b]))


def divergence_round(rows: list[dict], at: int) -> Divergence:
    """The round whose committed span holds character `at` (or the last round, when the
    response ends there)."""
    if not rows:
        return Divergence(None, "", "", [], [], [])
    start = 0
    chosen, chosen_start = rows[-1], None
    for row in rows:
        text = row.get("winner_text") or ""
        if start <= at < start + len(text):
            chosen, chosen_start = row, start
            break
        start += len(text)
    if chosen_start is None:  # past the end: the last round's span ended the response
        chosen_start = start - len(chosen.get("winner_text") or "")
    prefix = "".join(r.get("winner_text") or "" for r in rows)[:chosen_start]
    proposals = sorted(chosen.get("proposals") or [],
                       key=lambda p: float("inf") if p.get("score") is None else p["score"])
    margins = [m[0] if m else None for m in chosen.get("margins") or []]
    return Divergence(chosen.get("round"), prefix, chosen.get("winner_text") or "", proposals,
                      margins, list(chosen.get("explored") or []))


@functools.cache
def _shared_prefix(task: str) -> str | None:
    try:
        from adafuse.tasks import get_task

        return get_task(task).shared_prefix
    except (TaskError, OSError):  # an unknown task: the caller falls back on the last paragraph
        return None


def question_text(task: str, prompt: str) -> str:
    """The item's own part of the prompt: the prompt without the task's instruction and
    few-shot text (or, when the task is not known here, its last paragraph)."""
    prefix = _shared_prefix(task)
    if prefix and prompt.startswith(prefix):
        return prompt[len(prefix):].strip()
    return prompt.rstrip().rsplit("\n\n", 1)[-1].strip()


def answer_of(sample: dict) -> str:
    extracted = sample.get("extracted")
    return str(extracted if extracted is not None else sample.get("response") or "")


def disagreements(a: Run, b: Run) -> list[Disagreement]:
    """Items both runs finished whose extracted answers differ: those where exactly one run
    is right first, then the rest, in item order."""
    theirs = {str(s.get("id")): s for s in b.samples}
    out = []
    for mine in a.samples:
        key = str(mine.get("id"))
        other = theirs.get(key)
        if other is None or answer_of(mine) == answer_of(other):
            continue
        ra, rb = mine.get("response") or "", other.get("response") or ""
        at = common_prefix(ra, rb)
        out.append(Disagreement(
            id=key,
            question=question_text(a.task, mine.get("prompt") or ""),
            answers=(answer_of(mine), answer_of(other)),
            scores=(mine.get("main_score"), other.get("main_score")),
            gold=mine.get("gold"),
            divergence=(divergence_round(a.trace.get(key, []), at),
                        divergence_round(b.trace.get(key, []), at)),
        ))
    out.sort(key=lambda d: d.scores[0] == d.scores[1])  # stable: item order within each part
    return out


def default_pair(runs: list[Run]) -> tuple[Run, Run] | None:
    """Two runs worth comparing when none were named: AdaFuse at the paper's setting (else the
    ensemble with the best average) against the best single model, on the task where the
    most items have exactly one of the two right (then the most items; then the grid's task
    order). Without such a pair: on the task with the most runs, its two best runs."""
    from adafuse.compare.grid import build_grid
    from adafuse.compare.table import by_task

    grid = build_grid(runs)
    ensembles = [s for s in grid.systems if not s.single]
    a = grid.adafuse or max(ensembles, key=lambda s: s.average(grid.tasks), default=None)
    b = grid.best_single
    if a is not None and b is not None:
        shared = [t for t in grid.tasks if t in a.cells and t in b.cells]
        if shared:
            def informative(task: str) -> tuple:
                one_right = sum(1 for d in disagreements(a.cells[task].run, b.cells[task].run)
                                if (d.scores[0] or 0) != (d.scores[1] or 0))
                return (one_right, a.cells[task].run.n_done, -shared.index(task))

            task = max(shared, key=informative)
            return a.cells[task].run, b.cells[task].run
    candidates = []
    for group in by_task(runs).values():
        scored = [r for r in group if r.main is not None and r.n_done]  # never a run of 0 items
        if len(scored) >= 2:
            candidates.append((len(scored), (scored[0], scored[1])))
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[0])[1]
