"""Continuing a run: after `kill -9` midway, resuming gives the same samples.jsonl as a run that
was never interrupted; a torn last line is repaired; nothing is decoded twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from adafuse.errors import AdaFuseError
from adafuse.runfolder.rundir import RunDir, config_differences, read_jsonl
from run_helpers import FAST, REPO, cli, read_jsonl as read_all, without_timings

# recompute mode: no prefix cache is shared across items, so each item's cost is its own in
# any case (in cached mode the shared prefix's prefill is counted once per run, apart)
SLOW_TASK = ["task=triviaqa", "limit=8", "decoder.mode=recompute", "logger=none"]


def test_a_torn_last_line_is_cut_and_a_whole_one_kept(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"id": 0}\n{"id": 1}\n{"id": 2, "resp')
    assert read_jsonl(path, repair=True) == [{"id": 0}, {"id": 1}]
    assert path.read_text() == '{"id": 0}\n{"id": 1}\n'
    path.write_text('{"id": 0}\n{"id": 1}')  # killed between the record and its newline
    assert read_jsonl(path, repair=True) == [{"id": 0}, {"id": 1}]
    assert path.read_text() == '{"id": 0}\n{"id": 1}\n'


def test_a_damaged_middle_line_is_an_error(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"id": 0}\nnot json\n{"id": 2}\n')
    with pytest.raises(AdaFuseError, match=r"samples.jsonl:2"):
        read_jsonl(path)


def test_trace_of_an_unfinished_item_is_dropped(tmp_path):
    run = RunDir(tmp_path)
    run.append_item({"id": 0}, [{"id": 0, "round": 0}])
    with open(run.trace, "a") as fh:  # killed after the trace lines of item 1, before its sample
        fh.write('{"id": 1, "round": 0}\n{"id": 1, "rou')
    assert list(run.finished()) == ["0"]
    assert read_jsonl(run.trace) == [{"id": 0, "round": 0}]


def test_config_differences_skip_settings_that_do_not_change_outputs():
    old = {"decoder": {"theta_delta": 0.7, "batch_size": 1}, "progress": True, "logger": {"name": "wandb"}}
    new = {"decoder": {"theta_delta": 0.5, "batch_size": 8}, "progress": False, "logger": {"name": "none"}}
    assert config_differences(old, new) == ["decoder.theta_delta: 0.7 -> 0.5"]


def test_one_run_at_a_time_in_a_folder(tmp_path):
    with RunDir(tmp_path).lock():
        with pytest.raises(AdaFuseError, match="in use by another run"):
            with RunDir(tmp_path).lock():
                pass
    with RunDir(tmp_path).lock():  # released
        pass


def test_sigkill_midway_then_resume_matches_an_uninterrupted_run(tiny_conf, adafuse_run, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    res = adafuse_run(*SLOW_TASK, f"hydra.run.dir={whole}")
    assert res.code == 0, res.err

    argv = [sys.executable, "-m", "adafuse.run", f"hydra.searchpath=[file://{tiny_conf}]", *FAST,
            *SLOW_TASK, f"hydra.run.dir={killed}"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = killed / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.is_file() and samples.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = samples.read_text().count("\n")
    assert 2 <= done_before < 8
    # what a kill in the middle of a write leaves: trace lines of the next item, half a sample
    with open(killed / "trace.jsonl", "a") as fh:
        fh.write('{"id": 99, "item": 99, "round": 0}\n')
    with open(samples, "a") as fh:
        fh.write('{"index": 99, "id": 99, "prompt": "Question: half a li')
    saved_config = (killed / ".hydra" / "config.yaml").read_bytes()

    res = cli(tiny_conf, *SLOW_TASK, f"resume={killed}")
    assert res.code == 0, res.err
    assert without_timings(read_all(samples)) == without_timings(read_all(whole / "samples.jsonl"))
    assert read_all(killed / "trace.jsonl") == read_all(whole / "trace.jsonl")
    results = json.loads((killed / "results.json").read_text())
    assert results["status"] == "complete" and results["resumed_items"] == done_before
    assert results["metrics"] == json.loads((whole / "results.json").read_text())["metrics"]
    # the first invocation's .hydra/ is kept; the resumption's sits beside it
    assert (killed / ".hydra" / "config.yaml").read_bytes() == saved_config
    assert len(list((killed / ".hydra" / "reruns").iterdir())) == 1


def test_rerunning_into_a_finished_run_is_a_no_op_that_says_so(adafuse_run, tmp_path, monkeypatch):
    from adafuse.runner import experiment

    args = ["task=triviaqa", "limit=2", "logger=none", f"hydra.run.dir={tmp_path}"]
    assert adafuse_run(*args).code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    hydra_before = sorted(p.name for p in (tmp_path / ".hydra").iterdir())

    def refuse(specs):
        raise AssertionError("a finished run loaded its models again")

    monkeypatch.setattr(experiment, "load_models", refuse)
    res = adafuse_run(*args)
    assert res.code == 0, res.err
    assert "is complete (2 items): nothing to do" in res.out + res.err
    # results.json (start time, git, versions), samples and trace: byte for byte as they were
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()
            if p.name != "run.log"} == {k: v for k, v in before.items() if k != "run.log"}
    assert sorted(p.name for p in (tmp_path / ".hydra").iterdir()) == hydra_before  # no reruns/


def test_resume_may_change_batch_size_and_logger(adafuse_run, tmp_path):
    assert adafuse_run("task=nq", "limit=2", "logger=none", f"hydra.run.dir={tmp_path}").code == 0
    res = adafuse_run("task=nq", "limit=2", "batch_size=2", "logger=none", "progress=true",
                      f"resume={tmp_path}")
    assert res.code == 0, res.err
