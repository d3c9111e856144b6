"""No empty runs: nothing to decode is one line and exit 2, before any model loads, and leaves
no folder behind (issue 16); a run of 0 items would be "complete" with a metric over nothing."""

from __future__ import annotations

import pytest

import adafuse.runner.experiment as experiment


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(specs):
        raise AssertionError("a model was loaded for a run with nothing to decode")

    monkeypatch.setattr(experiment, "load_models", refuse)


def cases(tmp_path):
    empty, blank = tmp_path / "empty.jsonl", tmp_path / "blank.jsonl"
    empty.write_text("")
    blank.write_text("\n  \n\n")
    return {
        "limit=0": (["task=triviaqa", "limit=0"],
                    "error: limit=0 selects no items; give limit >= 1 (or leave it out for all)"),
        "empty file": (["task=triviaqa", f"task.source={empty}"],
                       f"error: task 'triviaqa' has no items: its data ({empty}) is empty"),
        "blank file": (["task=triviaqa", f"task.source={blank}"],
                       f"error: task 'triviaqa' has no items: its data ({blank}) is empty"),
        "empty shard": (["task=triviaqa", "limit=2", "shard=0", "num_shards=3"],
                        "error: shard=0 of num_shards=3 holds no items (the task has 2); use "
                        "num_shards <= 2"),
    }


@pytest.mark.parametrize("case", ["limit=0", "empty file", "blank file", "empty shard"])
def test_nothing_to_decode_is_one_line_before_any_model_loads(adafuse_run, no_model_loads, tmp_path, case):
    args, message = cases(tmp_path)[case]
    runs = tmp_path / "runs"
    res = adafuse_run(*args, "logger=none", f"runs_dir={runs}")
    assert (res.code, res.err_lines) == (2, [message])
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))


def test_a_shard_with_items_still_runs(adafuse_run, tmp_path):
    res = adafuse_run("task=triviaqa", "limit=2", "shard=1", "num_shards=2", "logger=none",
                      f"hydra.run.dir={tmp_path / 'run'}")
    assert res.code == 0, res.err
