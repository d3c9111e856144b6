"""A partial run's metric, one rule (adafuse/tasks/partial.py) for `show` and `compare`: the
task's metrics over the finished items, so a FLORES run stopped early shows corpus BLEU over
its finished sentences (not the mean of sentence scores) in both; the per-item mean where the
task cannot be scored."""

from __future__ import annotations

import pytest

from adafuse.compare.load import load_run
from adafuse.show import header, load
from adafuse.tasks import get_task
from adafuse.tasks.partial import MEAN, SCORED, score_partial
from tests.compare.compare_helpers import make_run, make_sample

PAIRS = [(" The cat sat on the mat.", "The cat sat on the mat."),
         (" A dog runs.", "The dog is running."),
         (" Hello world", "Hello there, world.")]


def partial_flores(path, task="flores_de_en", main_only=False):
    """A FLORES run killed after three of its ten sentences: the header alone in
    results.json, each finished sentence scored on its own in its sample (main_only: its
    main metric alone)."""
    scorer = get_task("flores_de_en")
    samples = []
    for i, (response, gold) in enumerate(PAIRS):
        alone = scorer.score([response], [{"answer": gold}])
        scores = {alone.main_metric: alone.main} if main_only else alone.metrics
        samples.append({**make_sample(i, response, gold, 0.0, [1], 0.5), "gold": gold,
                        "scores": scores, "main_score": alone.main})
    return make_run(path, task=task, status=None, n_items=10, samples=samples)


def test_show_and_compare_give_a_partial_flores_run_the_corpus_metric(tmp_path):
    path = partial_flores(tmp_path / "flores")
    corpus = get_task("flores_de_en").score([r for r, _ in PAIRS], [{"answer": g} for _, g in PAIRS])
    run, note = load_run(path)
    shown = header(load(path))["metric"]
    assert run.main_metric == shown["name"] == corpus.main_metric
    assert run.metrics[run.main_metric] == shown["value"] == pytest.approx(corpus.main)
    assert note == "not finished: partial, 3 of 10 items, scored over those"
    assert shown["over"] == "the task's metrics over the 3 finished items"
    mean = sum(s["main_score"] for s in run.samples) / len(run.samples)
    assert abs(shown["value"] - mean) > 1  # corpus BLEU is not the sentences' mean: the two rules differ here


def test_where_the_task_is_unknown_both_average_the_per_item_scores(tmp_path):
    path = partial_flores(tmp_path / "unknown", task="no_such_task", main_only=True)
    run, note = load_run(path)
    shown = header(load(path))["metric"]
    name, metrics, how = score_partial("no_such_task", None, run.samples)
    assert how == MEAN and note.endswith("mean of per-item scores")
    assert run.metrics == metrics and run.main_metric == shown["name"] == name
    assert shown["value"] == run.metrics[name] == pytest.approx(sum(s["main_score"] for s in run.samples) / 3)
    assert shown["over"] == "mean of the per-item scores of the 3 finished items"


def test_a_prompt_run_is_not_scored_by_a_task():
    samples = [{"scores": {"x": 1.0}}, {"scores": {"x": 0.0}}, {"scores": {}}]
    assert score_partial("prompt", None, samples) == ("x", {"x": 0.5}, MEAN)
    assert score_partial("prompt", "y", [{}])[2] != SCORED
