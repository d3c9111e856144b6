"""Ctrl-C and SIGTERM end a run cleanly and say how to continue it; --help prints this
project's usage; a continued run continues its W&B run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from run_helpers import FAST, REPO, cli, read_jsonl
from tests.test_cli import help_arguments

SLOW_ITEMS = ["task=triviaqa", "limit=20", "max_new_tokens=24", "logger=none"]


def _start(tiny_conf, run: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "adafuse.run", f"hydra.searchpath=[file://{tiny_conf}]", *FAST,
            *SLOW_ITEMS, f"hydra.run.dir={run}", *extra]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ))


def _wait_for_items(run: Path, proc: subprocess.Popen, count: int = 1, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        samples = run / "samples.jsonl"
        if samples.is_file() and len(samples.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no item was written in time")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_cleanly_and_says_how_to_continue(tiny_conf, tmp_path, signum, code):
    run = tmp_path / "run"
    proc = _start(tiny_conf, run)
    _wait_for_items(run, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"interrupted; the run folder is {run}; continue it with: "), lines
    command = lines[0].split("continue it with: ", 1)[1]
    assert command.endswith(f"resume={run}") and "limit=20" in command and "hydra.mode" not in command
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "interrupted"
    done = len(read_jsonl(run / "samples.jsonl"))
    assert 1 <= done < 20
    # the lock was let go, and the printed command continues the run to its end
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "adafuse.run"]
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    samples = read_jsonl(run / "samples.jsonl")
    assert len(samples) == 20 and len({s["id"] for s in samples}) == 20
    assert json.loads((run / "results.json").read_text())["status"] == "complete"


def test_the_start_says_how_many_items_where_and_how_to_continue(tiny_conf, tmp_path):
    run = tmp_path / "run"
    res = cli(tiny_conf, "task=triviaqa", "limit=2", "logger=none", f"hydra.run.dir={run}")
    assert res.code == 0, res.err
    line = next(ln for ln in res.out.splitlines() if "decoding 2 items" in ln)
    assert f"into {run}" in line and f"continue with: python -m adafuse.run" in line
    assert line.endswith(f"resume={run}")


def test_help_prints_this_projects_usage(tiny_conf, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "adafuse.run", "--help", "limit=5"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("usage: python -m adafuse.run ") and "schema/" not in text
    args = help_arguments(text)
    conf = REPO / "conf"
    for group in ("models", "task", "decoder", "logger", "+sweep", "hydra/launcher"):
        for option in (p.stem for p in (conf / group.lstrip("+")).glob("*.yaml")):  # every option
            assert option in args[group], (group, option, args[group])
    assert "(default: smol_gemma)" in args["models"] and "(default: none)" in args["task"]
    assert "(default: basic)" in args["hydra/launcher"]
    # the shortcuts, with this invocation's values
    assert "(default: 0.7)" in args["theta_delta"] and "(default: auto)" in args["threads"]
    assert "(default: 5)" in args["limit"] and "(default: null)" in args["seed"]
    assert "--multirun" in args["-m"]
    notes = text.split("\nnotes:\n", 1)[1]
    assert "Any other key: by its path" in notes and "exits with status 2" in notes
    assert "--cfg job" in notes and "--hydra-help" in notes
    assert sum(ln.strip().startswith("python -m adafuse.run ") for ln in text.splitlines()) >= 3
    assert not any(tmp_path.iterdir())  # --help writes no run folder


def test_a_continued_run_continues_its_wandb_run(adafuse_run, tmp_path):
    run = tmp_path / "run"
    args = ("task=triviaqa", "limit=1", "logger=wandb", f"hydra.run.dir={run}")
    res = adafuse_run(*args)
    assert res.code == 0, res.err
    first = sorted((run / "wandb").glob("offline-run-*"))
    assert len(first) == 1, (res.out, res.err, list(run.rglob("*")))
    # as if stopped before its item was written (a complete run, rerun, does nothing at all)
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "status": "interrupted"}))
    (run / "samples.jsonl").write_text("")
    (run / "trace.jsonl").write_text("")
    assert adafuse_run("task=triviaqa", "limit=1", "logger=wandb", f"resume={run}").code == 0
    runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    # the id is in each folder's run-<id>.wandb; a folder name ends in "-1" when both runs
    # started within the same second, so it is not read from there
    files = [f for p in runs for f in p.glob("run-*.wandb")]
    assert len(files) == 2, files
    ids = {f.stem.removeprefix("run-") for f in files}
    assert len(ids) == 1 and (run / "wandb" / "run-id").read_text().strip() in ids


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_loading_leaves_no_folder(adafuse_run, monkeypatch, tmp_path, signum, code):
    from adafuse.errors import Interrupted
    from adafuse.runner import experiment

    def interrupted(specs, ray=None):
        raise Interrupted(signum)

    monkeypatch.setattr(experiment, "load_models", interrupted)
    runs = tmp_path / "runs"
    res = adafuse_run("task=triviaqa", "limit=2", "logger=none", f"runs_dir={runs}")
    assert res.code == code
    assert res.err_lines == ["interrupted before the first item; nothing was written"]
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))
