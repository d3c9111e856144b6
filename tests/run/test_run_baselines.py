"""The ensemble baselines through the runner: their configs compose, the `decoders` sweep preset
runs every decoder (each model alone included) into one sweep folder, recompute mode makes the
choices cached mode makes, and a bad parameter is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from run_helpers import job_dirs, read_jsonl
from test_run_config import CONF

import adafuse.runner.schema  # noqa: F401  (registers the schemas and resolvers)

JOBS = ["greedy_0", "greedy_1", "adafuse", "fixed_span", "union_topk", "rerank"]


def decoder_of(*overrides: str) -> dict:
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg.decoder, resolve=True)


def test_baseline_configs_and_the_decoders_preset_compose():
    assert decoder_of("decoder=fixed_span", "batch_size=2") == {
        "name": "fixed_span", "span_words": 3, "weights": None, "mode": "cached", "batch_size": 2}
    assert decoder_of("decoder=union_topk", "decoder.top_k=5")["top_k"] == 5
    assert decoder_of("decoder=rerank", "decoder.mode=recompute")["mode"] == "recompute"
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=["+sweep=decoders"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params["sweep/decoder"].split(",") == JOBS
    picked = {job: decoder_of("+sweep=decoders", f"sweep/decoder={job}") for job in JOBS}
    assert [d["name"] for d in picked.values()] == ["greedy", "greedy", *JOBS[2:]]
    assert (picked["greedy_0"]["model_index"], picked["greedy_1"]["model_index"]) == (0, 1)


def test_decoders_preset_runs_every_decoder_and_recompute_agrees(adafuse_run, tmp_path):
    sweep = tmp_path / "sweep"
    res = adafuse_run("-m", "+sweep=decoders", "task=triviaqa", "limit=2", "logger=none",
                      f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    jobs = job_dirs(sweep)
    assert [p.name for p in jobs] == [f"{i}_sweep_decoder={job}" for i, job in enumerate(JOBS)]
    cached = {}
    for job, name in zip(jobs, JOBS):
        results = json.loads((job / "results.json").read_text())
        samples = read_jsonl(job / "samples.jsonl")
        assert results["status"] == "complete" and len(samples) == 2
        assert results["config"]["decoder"]["name"] == ("greedy" if "greedy" in name else name)
        cost = results["cost"]
        assert cost["forwards"] > 0 and cost["tokens_fed"] > 0 and cost["seconds_per_item"] > 0
        ensemble = "greedy" not in name
        # an ensemble's cost covers both models; a greedy run's only the one that decodes
        assert sum(m["forwards"] > 0 for m in cost["per_model"].values()) == (2 if ensemble else 1)
        rounds = read_jsonl(job / "trace.jsonl") if (job / "trace.jsonl").exists() else []
        assert len(rounds) == (sum(s["rounds"] for s in samples) if ensemble else 0)
        if name == "rerank":
            assert [r["round"] for r in rounds] == [0, 0]
            assert all(len(p["nll"]) == 2 for r in rounds for p in r["proposals"])
        cached[name] = [s["response"] for s in samples]

    again = tmp_path / "recompute"
    res = adafuse_run("-m", "decoder=fixed_span,union_topk,rerank", "decoder.mode=recompute",
                      "task=triviaqa", "limit=2", "logger=none", f"hydra.sweep.dir={again}")
    assert res.code == 0, res.err
    for job, name in zip(job_dirs(again), ["fixed_span", "union_topk", "rerank"]):
        samples = read_jsonl(job / "samples.jsonl")
        assert [s["response"] for s in samples] == cached[name], name


def test_a_bad_baseline_parameter_is_one_line(adafuse_run, tmp_path):
    for override, needle in [("decoder.top_k=0", "top_k=0"), ("decoder.span_words=0", "span_words=0")]:
        decoder = "union_topk" if "top_k" in override else "fixed_span"
        res = adafuse_run(f"decoder={decoder}", override, "task=triviaqa", "limit=1", "logger=none",
                          f"hydra.run.dir={tmp_path / decoder}")
        assert res.code == 2
        (line,) = res.err_lines
        assert line.startswith("error:") and needle in line and "in [1, " in line


def test_conf_offers_every_registered_decoder():
    """conf/decoder/ has one file per decoder of the registry (the one list of decoder names)."""
    from adafuse.decoding import DECODERS

    offered = {p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "decoder").glob("*.yaml")}
    assert offered == set(DECODERS)
