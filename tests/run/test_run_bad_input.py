"""Bad input: one clear line on stderr, exit status 2, and nothing already written lost."""

from __future__ import annotations

import json

import pytest
import torch

from run_helpers import cli

TASKS = "flores_de_en, flores_en_de, flores_en_ro, gsm8k, nq, squad, triviaqa"


def files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture
def bad_data(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "Who?", "answer": "me"}\n{"question": "Why?", "answer": \n')
    return path


CASES = {
    "unknown task": (["task=trivia"], f"error: unknown task 'trivia'; known: {TASKS}"),
    "unknown model set": (["models=llama3"], "error: unknown model set 'llama3'; known: "
                          "llama31_internlm3, llama31_mistral, llama31_mistral_internlm3, smol_gemma, tiny"),
    "unknown decoder": (["decoder=beam"], "error: unknown decoder 'beam'; known: adafuse, fixed_span, greedy, rerank, union_topk"),
    "unknown logger": (["logger=mlflow"], "error: unknown logger 'mlflow'; known: none, wandb"),
    "typo'd override": (["theta_dlta=0.5"], "error: Could not override 'theta_dlta': Key 'theta_dlta' "
                        "not in 'RunConfig' (did you mean 'theta_delta'?)"),
    "typo'd nested key": (["decoder.num_candidate=2"], "did you mean 'num_candidates'?"),
    "wrong type": (["max_words=two"], "error: Error merging override max_words=two: Value 'two' of "
                   "type 'str' could not be converted to Integer"),
    "theta above 1": (["theta_delta=1.5"], "error: theta_delta=1.5 is not allowed; theta_delta must "
                      "be a number in [0, 1]"),
    "theta below 0": (["theta_delta=-0.1"], "error: theta_delta=-0.1 is not allowed"),
    "shard out of range": (["shard=2", "num_shards=2"], "error: shard=2 is not allowed; shard must be "
                           "an integer in [0, 1]"),
    "missing data file": (["task=triviaqa", "task.source=/nonexistent/items.jsonl"],
                          "error: data file not found: /nonexistent/items.jsonl"),
    "resume nowhere": (["resume=/nonexistent/run"], "error: resume='/nonexistent/run': no run there"),
    "unknown decoder mode": (["decoder.mode=fast"], "error: decoder.mode='fast'; allowed: cached, recompute"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_leaves_no_folder(adafuse_run, tmp_path, case):
    args, message = CASES[case]
    runs = tmp_path / "runs"
    logger = [] if any(a.startswith("logger=") for a in args) else ["logger=none"]
    res = adafuse_run(*args, *logger, f"runs_dir={runs}")
    assert res.code == 2
    assert len(res.err_lines) == 1, res.err
    assert message in res.err_lines[0] and res.err_lines[0].startswith("error: "), res.err_lines[0]
    assert not runs.exists() or not any(runs.rglob("*.json*"))
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))


def test_unreadable_data_file_names_the_line(adafuse_run, tmp_path, bad_data):
    res = adafuse_run("task=triviaqa", f"task.source={bad_data}", "logger=none", f"runs_dir={tmp_path}/runs")
    assert res.code == 2 and len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"error: {bad_data}:2: malformed JSON")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(adafuse_run, tmp_path):
    res = adafuse_run("models.1.device=cuda:0", "logger=none", f"runs_dir={tmp_path}/runs")
    assert res.code == 2
    assert res.err_lines == [
        f"error: models.1: device='cuda:0' asked for CUDA, but this torch ({torch.__version__}) sees no CUDA "
        "device; use device=cpu or device=auto"]


def test_resume_with_another_config_is_refused_and_changes_nothing(adafuse_run, tmp_path):
    run = tmp_path / "run"
    assert adafuse_run("task=triviaqa", "limit=2", "logger=none", f"hydra.run.dir={run}").code == 0
    before = files(run)
    res = adafuse_run("task=triviaqa", "limit=3", "theta_delta=0.5", "logger=none", f"resume={run}")
    assert res.code == 2
    assert res.err_lines == [
        f"error: {run} was run with a different config (decoder.theta_delta: 0.7 -> 0.5); rerun "
        "with its settings or start a new run"]  # a raised limit alone would continue the run
    assert files(run) == before  # .hydra/ included: the refused invocation left no trace
    res = adafuse_run("task=nq", "limit=2", "logger=none", f"hydra.run.dir={run}")  # same folder
    assert res.code == 2 and "task.name: 'triviaqa' -> 'nq'" in res.err_lines[0]
    assert files(run) == before


def test_a_sweep_job_with_bad_input_fails_alone(adafuse_run, tmp_path):
    sweep = tmp_path / "sweep"
    res = adafuse_run("-m", "task=nq", "limit=1", "theta_delta=0.5,1.5", "logger=none",
                      f"hydra.sweep.dir={sweep}")
    assert res.code == 2
    assert "error: theta_delta=1.5 is not allowed; theta_delta must be a number in [0, 1]" in res.err_lines
    assert json.loads((sweep / "0_theta_delta=0.5" / "results.json").read_text())["status"] == "complete"
    assert not (sweep / "1_theta_delta=1.5").exists()


@pytest.mark.parametrize("args, message", [
    (["task=trivia"], "error: unknown task 'trivia'"),
    (["theta_delta=2"], "error: theta_delta=2.0 is not allowed"),
])
def test_the_command_line_itself(tiny_conf, tmp_path, args, message):
    res = cli(tiny_conf, *args, "logger=none", f"runs_dir={tmp_path}/runs")
    assert res.code == 2
    assert len(res.err_lines) == 1 and res.err_lines[0].startswith(message), res.err
    assert not (tmp_path / "runs").exists()
