"""The records written for each decoded item: its sample line and its trace lines, made from
the decoder's Output. The task, its items and their digests are adafuse.tasks.selection's.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from adafuse.decoding.output import Output
from adafuse.decoding.text import word_count
from adafuse.tasks import ScoreResult


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN: an unscored proposal's score becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def span_words(out: Output) -> list[int]:
    """Words of each committed span (the winner of each round)."""
    return [word_count(r.proposals[r.winner].text) for r in out.trace]


def uncertain_share(out: Output) -> Optional[float]:
    """Share of rounds in which at least one model was uncertain (Δ1 < θ) and explored."""
    if not out.trace:
        return None
    return sum(any(r.explored) for r in out.trace) / len(out.trace)


def model_names(out: Output) -> list[str]:
    """The models that decoded `out`, in index order (one, for a single-model decoder)."""
    return [m.name for m in out.stats.models]


def make_sample(index: int, doc: dict, prompt: str, out: Output, scored: ScoreResult) -> dict:
    """The samples.jsonl line of one finished item. Timings sit under `seconds` alone, so two
    runs of the same config give the same lines once `seconds` is left out.

    `question` is the item's own text (the doc's `question` field, without the task's
    instructions and few-shot examples) and `models` names the models that decoded it, so
    that the line reads without the task's data or the run's config at hand."""
    stats = out.stats
    main = scored.main_metric
    per_item = scored.per_item[0] if scored.per_item else {}
    return _finite({
        "index": index,
        "id": doc["id"],
        "question": doc.get("question"),
        "models": model_names(out),
        "prompt": prompt,
        "response": out.text,
        "finish_reason": out.finish_reason,
        "extracted": scored.extracted[0] if scored.extracted else None,
        "gold": doc.get("answer"),
        "scores": per_item,
        "main_score": per_item.get(main) if main else None,
        "rounds": stats.rounds,
        "words": stats.words,
        "new_tokens": stats.new_tokens,
        "span_words": span_words(out),
        "uncertain_share": uncertain_share(out),
        "boundary_merges": stats.boundary_merges,
        "near_ties": stats.near_ties,
        "cost": {
            "forwards": stats.forwards,
            "tokens_fed": stats.tokens_fed,
            "models": {m.name: {"forwards": m.forwards, "tokens_fed": m.tokens_fed} for m in stats.models},
        },
        "seconds": {"decode": stats.seconds, "models": {m.name: m.seconds for m in stats.models}},
    })


def trace_rows(index: int, doc: dict, out: Output) -> list[dict]:
    """The trace.jsonl lines of one item: one a round, its decisions and every model's NLL.

    Per-model lists (`margins`, `explored`, each proposal's `nll`) follow the order of the
    row's `models`; each proposal's `proposers` (indices) come with `proposer_names`."""
    names = model_names(out)
    rows = []
    for r in out.trace:
        decisions = r.to_dict()
        for proposal in decisions["proposals"]:
            proposal["proposer_names"] = [names[i] for i in proposal["proposers"]]
        row = {"id": doc["id"], "item": index, "round": decisions.pop("index"), "models": names,
               **decisions, "winner_text": r.proposals[r.winner].text}
        rows.append(_finite(row))
    return rows
