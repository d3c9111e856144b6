"""A partial run's metric: what `show` and `compare` report for a run stopped early (or still
running), over the items it finished.

The task's own metrics over the finished items, computed as a complete run's are (so a
corpus metric such as FLORES' spBLEU is corpus BLEU over those items, not a mean of per-item
scores); when the task cannot be scored here (an unknown task, a `prompt` run, a metric this
version does not have), the mean of the per-item scores the samples hold.
"""

from __future__ import annotations

from collections.abc import Sequence

SCORED = "scored over those"  # the task's metrics over the finished items
MEAN = "mean of per-item scores"  # the samples' own scores, averaged
NONE = "no scores"


def score_partial(task: str, main_metric: str | None, samples: Sequence[dict]) -> tuple[str | None, dict, str]:
    """(main metric, metrics, how: SCORED, MEAN or NONE) over a run's finished samples.
    task: the task's name ("prompt" for none); main_metric: the one the run's folder names,
    if any (used when the per-item scores are averaged)."""
    if task != "prompt":
        try:
            from adafuse.tasks import get_task

            scorer = get_task(task)  # its metric only: the folder's data source is not opened
            scored = scorer.score([s.get("response") for s in samples],
                                  [{"answer": s.get("gold")} for s in samples])
            return scored.main_metric, scored.metrics, SCORED
        except Exception:  # noqa: BLE001, S110 - unknown task, data or metric: fall back below
            pass
    names = sorted({k for s in samples for k in (s.get("scores") or {})})
    metrics = {}
    for name in names:
        values = [s["scores"][name] for s in samples if isinstance((s.get("scores") or {}).get(name), (int, float))]
        if values:
            metrics[name] = sum(values) / len(values)
    if main_metric not in metrics:
        main_metric = names[0] if len(names) == 1 else main_metric
    return main_metric, metrics, MEAN if metrics else NONE
