"""The running metric of a run in progress is rescored every 10% more items and after the
last, not after every item: its cost per item stays flat however many items there are."""

from __future__ import annotations

import json

from adafuse.runner.experiment import next_rescore


def schedule(n: int) -> list[int]:
    """The finished-item counts at which a run of n items rescores (the last one always)."""
    points, at = [], 1
    for count in range(1, n + 1):
        if count >= at or count == n:
            points.append(count)
            at = next_rescore(count)
    return points


def test_rescoring_work_per_item_stays_flat():
    for n in (10, 100, 1012, 10_000):
        points = schedule(n)
        assert points[-1] == n
        assert sum(points) <= 12 * n, (n, sum(points))  # rescored items, over all rescorings
    assert schedule(12) == list(range(1, 13))  # small runs: after every item
    gaps = [b - a for a, b in zip(schedule(1012), schedule(1012)[1:])]
    assert max(gaps) <= 1012 // 10  # and never more than 10% of the items apart


def test_the_last_running_value_is_the_final_metric(adafuse_run, tmp_path, monkeypatch):
    from adafuse.loggers.disk import DiskLogger

    logged = []
    monkeypatch.setattr(DiskLogger, "log_metrics", lambda self, metrics, step: logged.append((step, metrics)))
    res = adafuse_run("task=triviaqa", "limit=3", "logger=none", f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    results = json.loads((tmp_path / "results.json").read_text())
    assert [step for step, _ in logged] == [1, 2, 3]
    assert logged[-1][1][f"running/{results['main_metric']}"] == results["main"]
