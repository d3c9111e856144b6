"""Task: one benchmark's items, prompt, stop strings, answer extraction and scoring.

    task = get_task("triviaqa")
    docs = task.docs(limit=100)
    outputs = [generate(task.prompt(d), stop=task.stop, max_new_tokens=task.max_new_tokens) for d in docs]
    result = task.score(outputs, docs)        # result.metrics, result.per_item, result.main

The prompt of every item is `task.shared_prefix + task.item_text(doc)`: the instruction or
few-shot text, then the item. An engine can prefill `shared_prefix` once and reuse its KV
cache. The split sits right after a newline ("...\\n\\n" | "Question: ..."), where tokenizers
start a new token anyway, so tokenizing the two parts apart gives the same tokens as a whole.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from adafuse.tasks.card import TaskCard
from adafuse.tasks.errors import TaskError
from adafuse.tasks.filters import cut_at_stop, get_filter
from adafuse.tasks.loaders import load_source
from adafuse.tasks.metrics import get_metric


@dataclass
class ScoreResult:
    """Aggregate metrics, per-item scores and the extracted answers of one scored set."""

    metrics: dict[str, float]
    per_item: list[dict[str, float]]
    extracted: list[Optional[str]]
    main_metric: str  # the name under which the main number is reported in `metrics`
    n_items: int
    n_missing: int

    @property
    def main(self) -> float:
        return self.metrics[self.main_metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "main_metric": self.main_metric,
            "metrics": self.metrics,
            "n_items": self.n_items,
            "n_missing": self.n_missing,
        }


class Task:
    """Built by `get_task(name)` from `tasks/<name>/task.yaml`."""

    def __init__(self, card: TaskCard, source: Optional[str] = None):
        self.card = card
        self.name = card.name
        self.description = card.description
        self.shared_prefix = card.instruction
        self.template = card.template
        self.stop = list(card.stop)
        self.max_new_tokens = card.max_new_tokens
        self.metric_names = list(card.metrics)
        self.filter_names = list(card.filters)
        self.main_metric = card.main_metric
        self.source, self._source_spec = self._pick_source(source)
        self._docs: Optional[list[dict]] = None

    def __repr__(self) -> str:
        return f"Task({self.name!r}, source={self.source!r})"

    def _pick_source(self, source: Optional[str]) -> tuple[str, dict]:
        sources = self.card.sources
        if source is None:
            return self.card.default_source, sources[self.card.default_source]
        if source in sources:
            return source, sources[source]
        if source.endswith(".jsonl") or Path(source).is_file():
            return source, {"kind": "jsonl", "path": str(Path(source).resolve())}
        raise TaskError(
            f"unknown source {source!r} for task {self.name!r}; "
            f"known sources: {', '.join(sources)}, or a path to a .jsonl file"
        )

    # --- items -----------------------------------------------------------------------------

    @property
    def required_fields(self) -> list[str]:
        return list(dict.fromkeys([*self.card.template_fields, "answer"]))

    def docs(self, limit: Optional[int] = None, shuffle_seed: Optional[int] = None) -> list[dict]:
        """The items (dicts with `id`, `question`, `answer`, ...): first `limit` of them, after
        a shuffle with `random.Random(shuffle_seed)` when a seed is given."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise TaskError(f"limit must be a non-negative integer, got {limit!r}")
        if self._docs is None:
            self._docs = load_source(self._source_spec, self.card.folder, self.required_fields)
        docs = [dict(d) for d in self._docs]
        if shuffle_seed is not None:
            random.Random(shuffle_seed).shuffle(docs)
        return docs if limit is None else docs[:limit]

    @staticmethod
    def golds(doc: dict) -> list[str]:
        """The item's acceptable answers, as a list."""
        answer = doc["answer"]
        return [str(a) for a in answer] if isinstance(answer, list) else [str(answer)]

    # --- prompt ----------------------------------------------------------------------------

    def item_text(self, doc: dict) -> str:
        try:
            return self.template.format_map(doc)
        except KeyError as e:
            raise TaskError(f"task {self.name!r}: item {doc.get('id')!r} has no field {e.args[0]!r}") from None

    def prompt(self, doc: dict) -> str:
        return self.shared_prefix + self.item_text(doc)

    # --- answers and scores ----------------------------------------------------------------

    def extract(self, text: str) -> str:
        """The answer in a model output: cut at the stop strings (as generation would have
        stopped there), then the card's filters in order."""
        text = cut_at_stop(text, self.stop)
        for name in self.filter_names:
            text = get_filter(name)(text)
        return text

    def score(self, predictions: Sequence[Optional[str]], docs: Sequence[dict]) -> "ScoreResult":
        """Score raw model outputs against `docs` (same order, same length); a None prediction
        is a missing one and counts as wrong (as an empty translation for BLEU)."""
        if len(predictions) != len(docs):
            raise TaskError(f"task {self.name!r}: {len(predictions)} predictions for {len(docs)} items")
        extracted = [None if p is None else self.extract(p) for p in predictions]
        golds = [self.golds(d) for d in docs]
        metrics: dict[str, float] = {}
        per_item: list[dict[str, float]] = [{} for _ in docs]
        for name in self.metric_names:
            out = get_metric(name)(extracted, golds)
            metrics.update(out.aggregate)
            for mine, theirs in zip(per_item, out.per_item, strict=True):
                mine.update(theirs)
        main = self.main_metric
        if main not in metrics and self.card.fallback_main_metric in metrics:
            main = self.card.fallback_main_metric
        return ScoreResult(
            metrics=metrics,
            per_item=per_item,
            extracted=extracted,
            main_metric=main,
            n_items=len(docs),
            n_missing=sum(p is None for p in predictions),
        )

    def describe(self) -> dict[str, Any]:
        """The task's settings as plain data, for a run's results file."""
        return {
            "name": self.name, "version": self.card.version, "source": self.source,
            "stop": self.stop, "max_new_tokens": self.max_new_tokens,
            "filters": self.filter_names, "metrics": self.metric_names,
            "main_metric": self.main_metric,
        }
