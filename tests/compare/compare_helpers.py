"""Synthetic run folders for the compare tests, written the way adafuse.run writes them
(results.json, samples.jsonl, trace.jsonl), so the tests need no model."""

from __future__ import annotations

import json
from pathlib import Path

MODELS = [{"name": "smollm2-135m-instruct"}, {"name": "gemma3-270m"}]
METRIC = {"triviaqa": "em_lenient_triviaqa", "gsm8k": "gsm8k_accuracy", "nq": "em_lenient_nq"}


def decoder_config(decoder: str, theta: float | None, max_words: int | None, model_index: int | None) -> dict:
    if decoder == "greedy":
        return {"name": "greedy", "model_index": model_index or 0, "mode": "cached", "batch_size": 1}
    config = {"name": decoder, "mode": "cached", "batch_size": 1, "weights": None}
    if decoder == "fixed_span":
        return {**config, "span_words": max_words}
    if decoder == "union_topk":
        return {**config, "top_k": 10}
    if theta is not None:
        config["theta_delta"] = theta
    if max_words is not None:
        config["max_words"] = max_words
        config["num_candidates"] = 3
    return config


def make_sample(i: int, response: str, gold: list[str], score: float, spans: list[int],
                share: float | None, forwards: int = 10, seconds: float = 1.0) -> dict:
    return {"index": i, "id": i, "prompt": f"Answer the question.\n\nQuestion: question {i}?\nAnswer:",
            "response": response, "finish_reason": "stop", "extracted": response.strip(), "gold": gold,
            "scores": {"em_lenient_triviaqa": score}, "main_score": score, "rounds": len(spans),
            "words": max(sum(spans), 1), "new_tokens": 3, "span_words": spans, "uncertain_share": share,
            "boundary_merges": 0, "near_ties": 0,
            "cost": {"forwards": forwards, "tokens_fed": 50, "models": {}},
            "seconds": {"decode": seconds, "models": {}}}


def make_run(path: Path, *, task: str = "triviaqa", decoder: str = "adafuse", theta: float | None = 0.7,
             max_words: int | None = 3, model_index: int | None = None, main: float | None = 0.5,
             metrics: dict | None = None, n_items: int = 4, seconds_per_item: float = 2.0,
             forwards: int = 100, words: int = 20, samples: list[dict] | None = None,
             trace: list[dict] | None = None, status: str | None = "complete",
             models: list[dict] | None = None, sweep_dir: Path | None = None) -> Path:
    """A run folder. status=None: results.json holds only the header (a run stopped early)."""
    path.mkdir(parents=True, exist_ok=True)
    config = {"models": models or MODELS, "task": {"name": task, "limit": n_items, "source": None},
              "decoder": decoder_config(decoder, theta, max_words, model_index), "shard": 0, "num_shards": 1}
    metric = METRIC.get(task, "score")
    results = {"config": config, "task": {"name": task, "main_metric": metric, "source": "bundled"},
               "sweep_dir": str(sweep_dir) if sweep_dir else None}
    if status is not None:
        results.update({
            "status": status, "main_metric": metric, "main": main,
            "metrics": metrics if metrics is not None else {metric: main},
            "n_items": n_items, "n_missing": 0,
            "cost": {"forwards": forwards, "words": words, "rounds": 10,
                     "seconds_per_item": seconds_per_item, "decode_seconds": seconds_per_item * n_items,
                     "mean_span_words": 1.5, "mean_uncertain_share": 0.5},
        })
    (path / "results.json").write_text(json.dumps(results))
    if samples is None:
        samples = [make_sample(i, " Paris", ["Paris"], 1.0, [1], 0.5) for i in range(n_items if status else 0)]
    with open(path / "samples.jsonl", "w") as fh:
        fh.writelines(json.dumps(s) + "\n" for s in samples)
    if trace:
        with open(path / "trace.jsonl", "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in trace)
    return path
