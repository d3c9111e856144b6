"""The running metric of a run in progress is rescored every 10% more items and after the
last, not after every item: its cost per item stays flat however many items there are. The
points are those of the runner's own `next_rescore`, and a real run rescores at them."""

from __future__ import annotations

import json

from adafuse.runner.experiment import next_rescore


def chain(n: int) -> list[int]:
    """The finished-item counts of a run of n items at which `next_rescore` has the metric
    scored: from the first item on, then always after the last."""
    points = [1]
    while next_rescore(points[-1]) < n:
        points.append(next_rescore(points[-1]))
    return points + ([n] if points[-1] != n else [])


def test_rescoring_work_per_item_stays_flat():
    for n in (10, 100, 1012, 10_000):
        points = chain(n)
        assert points[-1] == n
        assert sum(points) <= 12 * n, (n, sum(points))  # rescored items, over all rescorings
    assert chain(12) == list(range(1, 13))  # small runs: after every item
    gaps = [b - a for a, b in zip(chain(1012), chain(1012)[1:])]
    assert max(gaps) <= 1012 // 10  # and never more than 10% of the items apart


def logged_metrics(adafuse_run, tmp_path, monkeypatch, *overrides):
    from adafuse.loggers.disk import DiskLogger

    logged = []
    monkeypatch.setattr(DiskLogger, "log_metrics", lambda self, metrics, step: logged.append((step, metrics)))
    res = adafuse_run("task=triviaqa", "logger=none", f"hydra.run.dir={tmp_path}", *overrides)
    assert res.code == 0, res.err
    return logged, json.loads((tmp_path / "results.json").read_text())


def test_a_run_rescores_at_the_points_of_next_rescore(adafuse_run, tmp_path, monkeypatch):
    """25 items: after each of the first 20, then 22, 24 and the last (not after 21 or 23)."""
    logged, results = logged_metrics(adafuse_run, tmp_path, monkeypatch, "limit=25", "decoder=greedy")
    assert [step for step, _ in logged] == list(range(1, 26))
    rescored = [step for step, metrics in logged if f"running/{results['main_metric']}" in metrics]
    assert rescored == chain(25) == list(range(1, 21)) + [22, 24, 25]


def test_the_last_running_value_is_the_final_metric(adafuse_run, tmp_path, monkeypatch):
    logged, results = logged_metrics(adafuse_run, tmp_path, monkeypatch, "limit=3")
    assert [step for step, _ in logged] == [1, 2, 3]
    assert logged[-1][1][f"running/{results['main_metric']}"] == results["main"]
