"""Multiruns (a 2 x 2 grid, a sweep preset) and what W&B gets, read back from offline runs."""

from __future__ import annotations

import json

import pytest

from run_helpers import job_dirs, read_jsonl, wandb_records


def test_two_by_two_grid_gives_one_run_folder_per_job(adafuse_run, tmp_path):
    sweep = tmp_path / "sweep"
    res = adafuse_run("-m", "task=triviaqa", "limit=2", "theta_delta=0.3,0.7", "max_words=2,3",
                      "logger=none", f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == ["0_theta_delta=0.3,max_words=2", "1_theta_delta=0.3,max_words=3",
                                      "2_theta_delta=0.7,max_words=2", "3_theta_delta=0.7,max_words=3"]
    grid = set()
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        decoder = results["config"]["decoder"]
        grid.add((decoder["theta_delta"], decoder["max_words"]))
        assert results["sweep_dir"] == str(sweep) and len(read_jsonl(job / "samples.jsonl")) == 2
        assert (job / ".hydra" / "overrides.yaml").is_file()
    assert grid == {(0.3, 2), (0.3, 3), (0.7, 2), (0.7, 3)}


def test_sweep_preset(adafuse_run, tmp_path):
    sweep = tmp_path / "sweep"
    res = adafuse_run("-m", "+sweep=theta_grid", "task=nq", "limit=1", "logger=none",
                      f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    jobs = job_dirs(sweep)
    assert len(jobs) == 6 and jobs[5].name == "5_theta_delta=0.7,max_words=3"


def test_wandb_offline_run_holds_config_metrics_table_and_histograms(adafuse_run, tmp_path):
    sweep = tmp_path / "sweep"
    res = adafuse_run("-m", "task=triviaqa", "limit=3", "theta_delta=0.2,0.9", "logger=wandb",
                      f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    assert res.out.count("wandb: offline (WANDB_MODE); sync later with: wandb sync") == 2
    logged = [wandb_records(job) for job in job_dirs(sweep)]
    for job, rec, theta in zip(job_dirs(sweep), logged, (0.2, 0.9)):
        results = json.loads((job / "results.json").read_text())
        assert rec["run"] == {"project": "adafuse", "group": f"triviaqa/{sweep.name}",
                              "job_type": "triviaqa", "name": f"triviaqa/{job.name}"}
        assert rec["config"]["decoder"]["theta_delta"] == theta  # the resolved config
        assert rec["config"]["task"]["limit"] == 3
        summary = rec["summary"]
        main = results["main_metric"]
        assert summary[f"metrics/{main}"] == results["metrics"][main] == summary["main"]
        assert summary["cost/forwards"] == results["cost"]["forwards"]
        assert summary["cost/per_model/tiny-llama/tokens_fed"] > 0
        assert summary["n_items"] == 3
        running = [row for row in rec["history"] if f"running/{main}" in row]
        assert [row["items_done"] for row in running] == [1, 2, 3]
        final = rec["history"][-1]
        assert final["span_words/_type"] == final["uncertain_share/_type"] == "histogram"
        assert sum(final["span_words/values"]) == sum(len(s["span_words"]) for s in read_jsonl(job / "samples.jsonl"))
        (table,) = rec["tables"]
        samples = read_jsonl(job / "samples.jsonl")
        assert [row[0] for row in table["data"]] == [str(s["id"]) for s in samples]
        assert table["columns"][:3] == ["id", "response", "extracted"]
    assert {rec["run"]["group"] for rec in logged} == {f"triviaqa/{sweep.name}"}


def test_wandb_failure_is_one_line_and_the_run_goes_on(adafuse_run, tmp_path, monkeypatch):
    import wandb

    def broken(*args, **kwargs):
        raise RuntimeError("no route to api.wandb.ai\nmore detail")

    monkeypatch.setattr(wandb, "init", broken)
    res = adafuse_run("task=triviaqa", "limit=1", "logger=wandb", f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    lines = [ln for ln in res.out.splitlines() if "wandb:" in ln]
    assert len(lines) == 1 and "init failed (no route to api.wandb.ai)" in lines[0]
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("env, expected", [({}, "offline"), ({"WANDB_API_KEY": "x" * 40}, "online"),
                                           ({"WANDB_MODE": "disabled"}, "disabled")])
def test_wandb_mode_without_a_key_is_offline(monkeypatch, tmp_path, env, expected):
    from adafuse.loggers.wandb_logger import choose_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert choose_mode(None)[0] == expected
    assert choose_mode("offline")[0] == "offline"
