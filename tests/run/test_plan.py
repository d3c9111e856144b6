"""What a run works out before it decodes (adafuse/runner/plan.py): the models its decoder
reads, and the estimate after a sitting's first item, with a warning above an hour."""

from __future__ import annotations

import pytest

from adafuse.runner.plan import estimate_line, used_models


@pytest.mark.parametrize("first, left, batch, shown, long", [
    (2.0, 9, 1, "about 0m18s for the 9 items left", False),
    (30.0, 299, 1, "about 2h29m for the 299 items left", True),
    (30.0, 299, 8, "about 18m41s for the 299 items left", False),
    (4000.0, 1, 1, "about 1h06m for the 1 item left", True),
])
def test_estimate(first, left, batch, shown, long):
    line, above_an_hour = estimate_line(first, left, batch)
    assert shown in line and f"the first took {first:.1f} s" in line
    assert above_an_hour is long


def test_greedy_uses_its_model_alone():
    config = {"models": [{"name": "a"}, {"name": "b"}], "decoder": {"name": "greedy", "model_index": 1}}
    assert used_models(config) == ([1], {"name": "greedy", "model_index": 0})
    both = {"models": [{"name": "a"}, {"name": "b"}], "decoder": {"name": "adafuse"}}
    assert used_models(both) == ([0, 1], {"name": "adafuse"})


def test_a_run_says_its_estimate_after_the_first_item(adafuse_run, tmp_path):
    res = adafuse_run("task=triviaqa", "limit=3", "logger=none", f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    lines = [ln for ln in (res.out + res.err).splitlines() if "estimate:" in ln]
    assert len(lines) == 1 and "for the 2 items left" in lines[0], res.out
