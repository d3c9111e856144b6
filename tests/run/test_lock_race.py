"""Runs started at the same moment on one folder: exactly one decodes, the others are refused
with one line and leave the folder alone, and the folder holds each item once (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from run_helpers import FAST, REPO, read_jsonl

ROUNDS, PROCESSES = 3, 3
TASK = ["task=triviaqa", "limit=3", "logger=none"]

# imports first; then, once every process is ready (a file each in the barrier folder), all
# start the run at the same instant
STARTER = """
import os, sys, time
from pathlib import Path
import adafuse.run, adafuse.runner.experiment, transformers  # the slow part, before the start
barrier, count, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
(barrier / str(os.getpid())).touch()
while len(list(barrier.iterdir())) < count:
    time.sleep(0.005)
sys.argv = ["adafuse.run", *argv]
adafuse.run.main()
"""


def test_runs_started_together_on_one_folder_decode_each_item_once(tiny_conf, tmp_path):
    for round_ in range(ROUNDS):
        folder = tmp_path / f"run{round_}"
        argv = [f"hydra.searchpath=[file://{tiny_conf}]", *FAST, *TASK, f"hydra.run.dir={folder}"]
        barrier = tmp_path / f"barrier{round_}"
        barrier.mkdir()
        procs = [subprocess.Popen([sys.executable, "-c", STARTER, str(barrier), str(PROCESSES), *argv], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ))
                 for _ in range(PROCESSES)]
        outs = [(p.wait(300), p.stderr.read()) for p in procs]
        codes = [code for code, _ in outs]
        refused = [err for code, err in outs if code == 2]
        assert all(code in (0, 2) for code in codes), outs
        assert refused, f"no process was refused: they did not run together ({codes})"
        assert all(err.strip().startswith("error: ") and "is in use by another run" in err
                   and len(err.strip().splitlines()) == 1 for err in refused), refused
        # one decoded; one that came after it had finished found nothing left to do
        decoded = [err for code, err in outs if code == 0 and "already done" not in err]
        assert len(decoded) == 1, outs
        ids = [s["id"] for s in read_jsonl(folder / "samples.jsonl")]
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 3, ids
        rounds = [(r["item"], r["round"]) for r in read_jsonl(folder / "trace.jsonl")]
        assert len(rounds) == len(set(rounds)), "trace rounds written twice"
        results = json.loads((folder / "results.json").read_text())
        assert results["status"] == "complete" and results["n_items"] == 3
        assert (folder / ".hydra" / "config.yaml").is_file()  # the winner's folder was never removed


def test_a_run_that_fails_on_bad_input_never_removes_anothers_files(tiny_conf, tmp_path):
    """A bad invocation and a good one started together on one new folder: the bad one is
    refused or fails with one line, and whatever it removes, the good one's saved config
    (.hydra/config.yaml) is there when the good one decodes. The lock is taken before Hydra
    writes .hydra/ (schema.hydra_subdir), so the bad one can only remove what it wrote."""
    for round_ in range(ROUNDS):
        folder = tmp_path / f"run{round_}"
        common = [f"hydra.searchpath=[file://{tiny_conf}]", *FAST, *TASK, f"hydra.run.dir={folder}"]
        barrier = tmp_path / f"barrier{round_}"
        barrier.mkdir()
        argvs = {"good": common, "bad": [*common, "theta_delta=2"]}
        procs = {name: subprocess.Popen([sys.executable, "-c", STARTER, str(barrier), "2", *argv], cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=dict(os.environ))
                 for name, argv in argvs.items()}
        outs = {name: (p.wait(300), p.stderr.read()) for name, p in procs.items()}
        code, err = outs["bad"]
        assert code == 2 and len(err.strip().splitlines()) == 1, outs
        assert "theta_delta=2.0 is not allowed" in err or "is in use by another run" in err, outs
        code, err = outs["good"]
        if code == 2:  # refused while the bad one held the folder
            assert "is in use by another run" in err and len(err.strip().splitlines()) == 1, outs
            continue
        assert code == 0, outs
        assert (folder / ".hydra" / "config.yaml").is_file(), (round_, sorted(p.name for p in folder.iterdir()))
        assert json.loads((folder / "results.json").read_text())["status"] == "complete"
