"""A run killed with SIGKILL at random points and continued until done reports what an
uninterrupted run reports: the same samples, trace, metrics and cost (timings aside). The
shared prefix's prefill is charged once per run, as its own entry (issue 16)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from run_helpers import FAST, REPO, read_jsonl, without_timings

N = 6
TASK = ["task=triviaqa", f"limit={N}", "logger=none"]  # cached mode (FAST): the prefix is reused


def without_seconds(cost: dict) -> dict:
    # timings, and the warm-up items (the first of each sitting: a continued run has more)
    drop = {"decode_seconds", "seconds_per_item", "seconds", "warmup_items", "warmup_seconds"}
    return {k: without_seconds(v) if isinstance(v, dict) else v for k, v in cost.items() if k not in drop}


def killed_and_resumed(tiny_conf, folder, rng: random.Random) -> tuple[int, int]:
    """Start the run, SIGKILL it after a random number of finished items (and a random
    moment more), again and again, then let it finish. Returns the number of kills and of
    sittings that continued the run and decoded items."""
    argv = [sys.executable, "-m", "adafuse.run", f"hydra.searchpath=[file://{tiny_conf}]", *FAST,
            *TASK, f"hydra.run.dir={folder}"]  # rerunning into the folder continues it
    samples, kills, continued = folder / "samples.jsonl", 0, 0
    while True:
        done = samples.read_text().count("\n") if samples.is_file() else 0
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ))
        target = rng.randint(done, N - 1) if kills < 3 and done < N - 1 else None
        deadline = time.monotonic() + 240
        while target is not None and proc.poll() is None and time.monotonic() < deadline:
            if samples.is_file() and samples.read_text().count("\n") >= target:
                time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.01)
        _, err = proc.communicate(timeout=300)
        continued += 0 < done < samples.read_text().count("\n")
        if proc.returncode == 0:
            return kills, continued
        assert proc.returncode == -signal.SIGKILL, err


def test_cost_of_a_run_killed_and_resumed_equals_an_uninterrupted_one(tiny_conf, adafuse_run, tmp_path):
    whole = tmp_path / "whole"
    assert adafuse_run(*TASK, f"hydra.run.dir={whole}").code == 0
    expected = json.loads((whole / "results.json").read_text())
    prefix = expected["cost"]["shared_prefix"]
    assert set(prefix) == set(expected["cost"]["per_model"]) and all(
        m["forwards"] == 1 and m["tokens_fed"] > 20 for m in prefix.values()), prefix
    # the totals count the prefix once beside the items
    samples = read_jsonl(whole / "samples.jsonl")
    assert expected["cost"]["tokens_fed"] == (sum(s["cost"]["tokens_fed"] for s in samples)
                                             + sum(m["tokens_fed"] for m in prefix.values()))

    seed = random.randrange(10**6)
    kills, continued = killed_and_resumed(tiny_conf, tmp_path / "killed", random.Random(seed))
    killed = tmp_path / "killed"
    results = json.loads((killed / "results.json").read_text())
    assert kills >= 1 and continued >= 1, f"seed {seed}: {kills} kills, {continued} continued"
    assert without_timings(read_jsonl(killed / "samples.jsonl")) == without_timings(samples), f"seed {seed}"
    assert read_jsonl(killed / "trace.jsonl") == read_jsonl(whole / "trace.jsonl"), f"seed {seed}"
    assert results["metrics"] == expected["metrics"], f"seed {seed}"
    assert without_seconds(results["cost"]) == without_seconds(expected["cost"]), f"seed {seed}, {kills} kills"
