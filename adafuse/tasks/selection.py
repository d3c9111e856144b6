"""A run's task and its items: the task (or prompt mode's stand-in) opened with the run's stop
strings and budget, the items of a job (`limit`, shuffle, shard), the digests of what they
are made from, and the task's metrics over a run's samples.

The runner decodes these items; `adafuse.merge` selects them again to check and score the
shards it joins. Neither torch nor the runner is needed here.

    task, stop, budget = open_task(config)
    items = select_items(task, config)        # [(index, doc)], index before sharding
    scored = score_samples(task, items, samples_by_id)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence

from adafuse.errors import AdaFuseError
from adafuse.tasks.task import ScoreResult

PROMPT_MAX_NEW_TOKENS = 32
PROMPT_STOP = ["\n"]

# what each digest of `input_digests` covers, for the line that names a changed one
INPUT_NAMES = {"prompt": "the prompt (the task's prompt file, separator or template, or prompt=)",
               "data": "the data (the selected items' fields)",
               "gold": "the gold answers"}


class PromptTask:
    """The `prompt=` of the config as a task: one item, no gold, no metrics."""

    name = "prompt"
    shared_prefix = None
    main_metric = ""

    def __init__(self, prompt: str, stop: list[str], max_new_tokens: int):
        self.text = prompt
        self.stop = list(stop)
        self.max_new_tokens = max_new_tokens

    def docs(self, limit: Optional[int] = None, shuffle_seed: Optional[int] = None) -> list[dict]:
        return [{"id": 0, "question": self.text, "answer": None}][:limit]

    def prompt(self, doc: dict) -> str:
        return doc["question"]

    def score(self, predictions: Sequence[Optional[str]], docs: Sequence[dict]) -> ScoreResult:
        return ScoreResult(metrics={}, per_item=[{} for _ in docs], extracted=list(predictions),
                           main_metric="", n_items=len(docs),
                           n_missing=sum(p is None for p in predictions))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "stop": self.stop, "max_new_tokens": self.max_new_tokens}


def open_task(config: dict):
    """The task (or the prompt-mode stand-in), with the stop strings and budget of this run."""
    from adafuse.tasks.registry import get_task

    spec = config.get("task")
    if not spec:
        prompt = config["prompt"].replace("\\n", "\n").replace("\\t", "\t")
        stop = config["stop"] if config.get("stop") is not None else PROMPT_STOP
        budget = config.get("max_new_tokens") or PROMPT_MAX_NEW_TOKENS
        return PromptTask(prompt, stop, budget), stop, budget
    task = get_task(spec["name"], source=spec.get("source"))
    stop = spec["stop"] if spec.get("stop") is not None else task.stop
    budget = spec.get("max_new_tokens") or task.max_new_tokens
    return task, list(stop), int(budget)


class EmptyShard(AdaFuseError):
    """A shard of no items (more shards than items): refused alone; in a sweep, nothing to do."""


def shard_slice(n_items: int, shard: int, num_shards: int) -> range:
    """Contiguous slice `shard` of `num_shards` (sizes differ by at most one)."""
    return range(shard * n_items // num_shards, (shard + 1) * n_items // num_shards)


def select_items(task, config: dict) -> list[tuple[int, dict]]:
    """(index, doc) pairs of this job: the first `limit` items (after an optional shuffle),
    then this shard's slice. `index` is the position before sharding, so shards merge back."""
    spec = config.get("task") or {}
    try:
        docs = task.docs(limit=spec.get("limit"), shuffle_seed=spec.get("shuffle_seed"))
    except OSError as exc:
        raise AdaFuseError(f"cannot read the data of task {task.name!r}: {exc}") from None
    part = shard_slice(len(docs), config["shard"], config["num_shards"])
    if not part:  # a run of no items would be "complete" with a metric over nothing
        if spec.get("limit") == 0:
            raise AdaFuseError("limit=0 selects no items; give limit >= 1 (or leave it out for all)")
        if not docs:
            raise AdaFuseError(f"task {task.name!r} has no items: its data "
                               f"({getattr(task, 'source', None) or 'the bundled file'}) is empty")
        raise EmptyShard(f"shard={config['shard']} of num_shards={config['num_shards']} holds no "
                         f"items (the task has {len(docs)}); use num_shards <= {len(docs)}")
    return [(i, docs[i]) for i in part]


def _digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def input_digests(task, items: Sequence[tuple[int, dict]]) -> dict[str, str]:
    """Digests of what a run's outputs and scores are made from, besides its config: the
    prompt every item shares (instruction, template; prompt mode: the prompt), the selected
    items without their answers, and the answers. A continued run must find them unchanged."""
    docs = [doc for _, doc in items]
    prompt = {"shared_prefix": getattr(task, "shared_prefix", None) or "",
              "template": getattr(task, "template", None) or getattr(task, "text", "")}
    return {"prompt": _digest(prompt),
            "data": _digest([{k: v for k, v in d.items() if k != "answer"} for d in docs]),
            "gold": _digest([[d.get("id"), d.get("answer")] for d in docs])}


def score_samples(task, items: list[tuple[int, dict]], samples: dict[str, dict]) -> ScoreResult:
    """The task's metrics over `items`, in order; an item with no sample counts as missing."""
    preds = [samples[str(doc["id"])]["response"] if str(doc["id"]) in samples else None
             for _, doc in items]
    return task.score(preds, [doc for _, doc in items])
