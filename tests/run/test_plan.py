"""What a run works out before it decodes (adafuse/runner/plan.py): the models its decoder
reads, and the estimate after a sitting's first item (then again at the rate that follows),
with a warning above an hour."""

from __future__ import annotations

import pytest

from adafuse.runner.plan import estimate_after, estimate_line, used_models


@pytest.mark.parametrize("elapsed, finished, left, shown, long", [
    (2.0, 1, 9, "about 0m18s for the 9 items left", False),
    (30.0, 1, 299, "about 2h29m for the 299 items left", True),
    (240.0, 8, 292, "about 2h26m for the 292 items left", True),
    (4000.0, 1, 1, "about 1h06m for the 1 item left", True),
])
def test_estimate(elapsed, finished, left, shown, long):
    line, above_an_hour = estimate_line(elapsed, finished, left)
    first = "the first" if finished == 1 else f"the first {finished}"
    assert shown in line and f"{first} took {elapsed:.1f} s" in line
    assert above_an_hour is long
    steady, _ = estimate_line(elapsed, finished, left, steady=True)
    assert shown in steady and f"the {finished} after the first took {elapsed:.1f} s)" in steady


@pytest.mark.parametrize("batch, todo, after", [(1, 300, 1), (8, 300, 8), (8, 5, 4), (8, 2, 1), (4, 4, 3)])
def test_a_batch_estimates_after_a_batchs_worth_of_items(batch, todo, after):
    assert estimate_after(batch, todo) == after


def test_greedy_uses_its_model_alone():
    config = {"models": [{"name": "a"}, {"name": "b"}], "decoder": {"name": "greedy", "model_index": 1}}
    assert used_models(config) == ([1], {"name": "greedy", "model_index": 0})
    both = {"models": [{"name": "a"}, {"name": "b"}], "decoder": {"name": "adafuse"}}
    assert used_models(both) == ([0, 1], {"name": "adafuse"})


def test_a_run_says_its_estimate_after_the_first_item(adafuse_run, tmp_path):
    res = adafuse_run("task=triviaqa", "limit=3", "logger=none", f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    lines = [ln for ln in (res.out + res.err).splitlines() if "estimate:" in ln]
    # after the first item (warm-up included), then at the rate of the next one
    assert len(lines) == 2, res.out
    assert "for the 2 items left (the first took" in lines[0] and "warm-up included" in lines[0]
    assert "for the 1 item left (the 1 after the first took" in lines[1]


def test_a_batch_run_estimates_after_a_batchs_worth(adafuse_run, tmp_path):
    res = adafuse_run("task=triviaqa", "limit=5", "batch_size=2", "logger=none", f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    lines = [ln for ln in (res.out + res.err).splitlines() if "estimate:" in ln]
    assert len(lines) == 2, res.out
    assert "for the 3 items left (the first 2 took" in lines[0]
    assert "for the 1 item left (the 2 after the first took" in lines[1]
