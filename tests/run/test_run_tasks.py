"""End to end on tiny models: every task, prompt mode, greedy, batching, shuffling, and the
files a run folder holds."""

from __future__ import annotations

import json
import urllib.error

import pytest
import sacrebleu.tokenizers.tokenizer_spm as tokenizer_spm

from adafuse.tasks import get_task, list_tasks
from adafuse.tasks.metrics import spbleu
from run_helpers import read_jsonl, without_timings

SAMPLE_KEYS = {"index", "id", "question", "models", "prompt", "response", "finish_reason",
               "extracted", "gold", "scores", "main_score", "rounds", "words", "new_tokens",
               "span_words", "uncertain_share", "boundary_merges", "near_ties", "cost", "seconds"}


@pytest.fixture(autouse=True)
def no_spm_download(monkeypatch, tmp_path):
    """FLORES' spBLEU would fetch its SentencePiece model: make that fail at once (offline)."""
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu"))
    monkeypatch.setattr(tokenizer_spm, "download_file", refuse)
    spbleu.reset_spm_cache()
    yield
    spbleu.reset_spm_cache()


@pytest.mark.parametrize("task", list_tasks())
def test_each_task_end_to_end(adafuse_run, tmp_path, task):
    run_dir = tmp_path / "run"
    res = adafuse_run(f"task={task}", "limit=2", "logger=none", f"hydra.run.dir={run_dir}")
    assert res.code == 0, res.err
    results = json.loads((run_dir / "results.json").read_text())
    card = get_task(task)
    assert results["status"] == "complete" and results["n_items"] == 2
    assert results["task"]["name"] == task and results["task"]["stop"] == card.stop
    assert results["main_metric"] in results["metrics"] and results["main"] is not None
    cost = results["cost"]
    assert cost["forwards"] > 0 and cost["tokens_fed"] > 0 and set(cost["per_model"]) == {
        m["name"] for m in results["models"]}
    assert all(m["files_sha256"]["model.safetensors"] for m in results["models"])
    assert results["git"]["commit"] and results["versions"]["torch"]
    assert results["config"]["task"]["name"] == task
    samples = read_jsonl(run_dir / "samples.jsonl")
    docs = card.docs(limit=2)
    assert [s["id"] for s in samples] == [d["id"] for d in docs]
    for s, doc in zip(samples, docs):
        assert set(s) == SAMPLE_KEYS
        assert s["prompt"] == card.prompt(doc) and s["gold"] == doc["answer"]
        assert s["question"] == doc["question"] and s["models"] == [m["name"] for m in results["models"]]
        assert s["extracted"] == card.extract(s["response"])
        assert results["main_metric"] in s["scores"] or task.startswith("flores")
    trace = read_jsonl(run_dir / "trace.jsonl")
    assert len(trace) == sum(s["rounds"] for s in samples)
    assert {r["id"] for r in trace} <= {s["id"] for s in samples}
    first = trace[0]
    assert {"margins", "explored", "proposals", "winner", "winner_text", "round", "item"} <= set(first)
    assert first["models"] == samples[0]["models"] and all(
        p["proposer_names"] == [first["models"][i] for i in p["proposers"]] for p in first["proposals"])
    assert (run_dir / ".hydra" / "config.yaml").is_file()


def test_prompt_mode_prints_the_answer(adafuse_run, tmp_path):
    res = adafuse_run("logger=none", 'prompt="Question: Who wrote Emma?\\nAnswer:"',
                      f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    assert "answer: " in res.out and "rounds" in res.out
    (sample,) = read_jsonl(tmp_path / "samples.jsonl")
    assert sample["prompt"] == "Question: Who wrote Emma?\nAnswer:" and sample["gold"] is None
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["task"]["name"] == "prompt" and results["metrics"] == {}


def test_greedy_baseline(adafuse_run, tmp_path):
    res = adafuse_run("task=nq", "limit=2", "decoder=greedy", "decoder.model_index=1", "logger=none",
                      f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["decoder"]["model_index"] == 1
    # only the model greedy decodes with was loaded (#29.10): the set's other model was not
    (loaded,) = results["models"]
    gemma = loaded["name"]
    assert gemma == results["config"]["models"][1]["name"]
    assert set(results["cost"]["per_model"]) == {gemma} and results["cost"]["per_model"][gemma]["forwards"] > 0
    assert all(s["uncertain_share"] is None for s in read_jsonl(tmp_path / "samples.jsonl"))


def test_batch_size_changes_nothing_but_speed(adafuse_run, tmp_path):
    for b in (1, 3):
        res = adafuse_run("task=triviaqa", "limit=4", f"batch_size={b}", "logger=none",
                          f"hydra.run.dir={tmp_path / str(b)}")
        assert res.code == 0, res.err
    one, three = (read_jsonl(tmp_path / b / "samples.jsonl") for b in ("1", "3"))
    keys = ("id", "response", "extracted", "scores", "rounds", "span_words")
    assert [[s[k] for k in keys] for s in one] == [[s[k] for k in keys] for s in three]


def test_seed_shuffles_the_items_reproducibly(adafuse_run, tmp_path):
    ids = []
    for name, seed in (("a", "seed=3"), ("b", "seed=3"), ("c", "seed=null")):
        res = adafuse_run("task=triviaqa", "limit=3", seed, "logger=none", f"hydra.run.dir={tmp_path / name}")
        assert res.code == 0, res.err
        ids.append([s["id"] for s in read_jsonl(tmp_path / name / "samples.jsonl")])
    assert ids[0] == ids[1] != ids[2] == [0, 1, 2]


def test_same_config_twice_gives_the_same_samples(adafuse_run, tmp_path):
    for name in ("a", "b"):
        assert adafuse_run("task=squad", "limit=2", "logger=none", f"hydra.run.dir={tmp_path / name}").code == 0
    a, b = (without_timings(read_jsonl(tmp_path / n / "samples.jsonl")) for n in "ab")
    assert a == b
