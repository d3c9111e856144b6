"""A complete run continued with a larger `limit`, or after items were appended to its data,
decodes only the new items and ends as the run done at that size in one go (samples, trace,
metrics, the config and input digests it records); stopped on the way, it continues again.
Any other change of its items is refused (tests/run/test_fault_table.py)."""

from __future__ import annotations

import json

import pytest

from adafuse.runfolder import config_differences
from run_helpers import REPO, read_jsonl, without_timings

TASK = ["task=triviaqa", "logger=none"]


def _results(run) -> dict:
    return json.loads((run / "results.json").read_text())


def _same_run(a, b) -> None:
    assert without_timings(read_jsonl(a / "samples.jsonl")) == without_timings(read_jsonl(b / "samples.jsonl"))
    assert read_jsonl(a / "trace.jsonl") == read_jsonl(b / "trace.jsonl")
    ra, rb = _results(a), _results(b)
    for key in ("status", "metrics", "main", "n_items", "n_missing", "inputs"):
        assert ra[key] == rb[key], key
    assert config_differences(ra["config"], rb["config"]) == []  # `resume` aside


@pytest.fixture
def whole(adafuse_run, tmp_path):
    """The 4-item run done in one go."""
    run = tmp_path / "whole"
    assert adafuse_run(*TASK, "limit=4", f"hydra.run.dir={run}").code == 0
    return run


def test_a_raised_limit_decodes_only_the_new_items(adafuse_run, tmp_path, whole):
    grown = tmp_path / "grown"
    assert adafuse_run(*TASK, "limit=2", f"hydra.run.dir={grown}").code == 0
    first_two = (grown / "samples.jsonl").read_bytes()
    res = adafuse_run(*TASK, "limit=4", f"resume={grown}")
    assert res.code == 0, res.err
    assert (grown / "samples.jsonl").read_bytes().startswith(first_two)  # kept, not redone
    assert _results(grown)["resumed_items"] == 2
    _same_run(grown, whole)
    res = adafuse_run(*TASK, "limit=4", f"resume={grown}")
    assert res.code == 0 and "is complete (4 items): nothing to do" in res.out + res.err


def test_items_appended_to_the_data_are_decoded_next(adafuse_run, tmp_path):
    data = tmp_path / "data.jsonl"
    source = (REPO / "tasks" / "triviaqa" / "data" / "dev.jsonl").read_text().splitlines(True)[:4]
    data.write_text("".join(source[:2]))
    grown, once = tmp_path / "grown", tmp_path / "once"
    args = [*TASK, f"task.source={data}"]
    assert adafuse_run(*args, f"hydra.run.dir={grown}").code == 0
    data.write_text("".join(source))  # two more items at the end
    assert adafuse_run(*args, f"resume={grown}").code == 0
    assert adafuse_run(*args, f"hydra.run.dir={once}").code == 0
    assert _results(grown)["resumed_items"] == 2 and _results(grown)["n_items"] == 4
    _same_run(grown, once)


def test_stopped_while_going_on_it_continues_again(adafuse_run, tmp_path, whole, monkeypatch):
    from adafuse.runner import experiment

    grown = tmp_path / "grown"
    assert adafuse_run(*TASK, "limit=2", f"hydra.run.dir={grown}").code == 0
    decode = experiment.Experiment.decode
    seen = {}

    def stop_after_one(self, finished, logger):
        # results.json no longer claims the run complete: it describes the 4-item run now
        seen["header"] = _results(grown)
        self.items = self.items[:3]  # decode the third item, then stop as Ctrl-C would
        decode(self, finished, logger)
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment.Experiment, "decode", stop_after_one)
    res = adafuse_run(*TASK, "limit=4", f"resume={grown}")
    assert res.code != 0
    assert seen["header"]["status"] == "running"
    assert seen["header"]["config"]["task"]["limit"] == 4
    assert seen["header"]["inputs"] == _results(whole)["inputs"]
    assert _results(grown)["status"] == "interrupted" and len(read_jsonl(grown / "samples.jsonl")) == 3
    monkeypatch.setattr(experiment.Experiment, "decode", decode)
    assert adafuse_run(*TASK, "limit=4", f"resume={grown}").code == 0
    assert _results(grown)["resumed_items"] == 3
    _same_run(grown, whole)
