"""`python -m adafuse.lm_eval run ...` end to end on two local lm-eval tasks (generate_until,
multiple_choice) with the tiny pair: lm-eval's results JSON and samples, checked against
adafuse's own API on the same prompts; bad model_args give one `error:` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from adafuse import AdaFuse, load_model
from adafuse.errors import AdaFuseError
from adafuse.lm_eval.__main__ import main
from adafuse.lm_eval.model import AdaFuseLM

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def evaluated(tiny_dirs, task_dir, tmp_path_factory):
    """One wrapper run over both tasks, in a fresh interpreter as a user runs it."""
    out = tmp_path_factory.mktemp("lm-eval-out")
    models = "+".join(str(tiny_dirs[k]) for k in ("llama", "gemma"))
    argv = [sys.executable, "-m", "adafuse.lm_eval", "run", "--model", "adafuse",
            "--model_args", f"models={models},theta_delta=0.5,batch_size=2",
            "--tasks", "tiny_generate,tiny_choice", "--include_path", str(task_dir),
            "--output_path", str(out), "--log_samples"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    samples = {task: [json.loads(line) for line in next(out.rglob(f"samples_{task}_*.jsonl")).open()]
               for task in ("tiny_generate", "tiny_choice")}
    return json.loads(results.read_text()), samples, proc.stdout


@pytest.fixture(scope="module")
def pair(tiny_dirs):
    return [load_model(str(tiny_dirs[k]), device="cpu") for k in ("llama", "gemma")]


def test_results_json_holds_both_tasks(evaluated):
    results, samples, stdout = evaluated
    assert results["config"]["model"] == "adafuse"
    assert results["n-shot"] == {"tiny_generate": 2, "tiny_choice": 0}
    for task, metrics in (("tiny_generate", ["exact_match,none"]), ("tiny_choice", ["acc,none", "acc_norm,none"])):
        assert results["n-samples"][task]["effective"] == 3
        for metric in metrics:
            assert 0.0 <= results["results"][task][metric] <= 1.0
        assert len(samples[task]) == 3
    assert "tiny_choice" in stdout and "acc_norm" in stdout  # lm-eval's table


def test_generations_equal_adafuse_api(evaluated, pair):
    """Each logged response is AdaFuse's own generate on the same context (2-shot prompts
    that lm-eval built, decoded two at a time with their shared prefix)."""
    _, samples, _ = evaluated
    api = AdaFuse(pair, theta_delta=0.5)
    for sample in samples["tiny_generate"]:
        context, gen = sample["arguments"]["gen_args_0"]["arg_0"], sample["arguments"]["gen_args_0"]["arg_1"]
        assert context.startswith("Question: What is two plus two?\nAnswer: 4\n\n")
        expected = api.generate(context, max_new_tokens=gen["max_gen_toks"], stop=gen["until"]).text
        assert sample["resps"] == [[expected]]


def test_choice_accuracy_follows_the_ensemble_loglikelihood(evaluated, pair):
    """acc is the share of items whose gold choice has the highest ensemble log-likelihood,
    recomputed here in-process from AdaFuseLM.loglikelihood."""
    results, samples, _ = evaluated
    lm = AdaFuseLM(models=pair, theta_delta=0.5)
    hits = []
    for sample in samples["tiny_choice"]:
        args = [sample["arguments"][f"gen_args_{i}"] for i in range(len(sample["doc"]["choices"]))]
        requests = [Instance("loglikelihood", {}, (a["arg_0"], a["arg_1"]), i) for i, a in enumerate(args)]
        values = [v for v, _ in lm.loglikelihood(requests, disable_tqdm=True)]
        assert [float(r[0][0]) for r in sample["resps"]] == pytest.approx(values, abs=1e-4)
        hits.append(max(range(len(values)), key=values.__getitem__) == sample["doc"]["label"])
    assert results["results"]["tiny_choice"]["acc,none"] == pytest.approx(sum(hits) / len(hits))


@pytest.mark.parametrize("model_args, named", [
    ("models={llama},colour=red", "unknown model_args key 'colour'"),
    ("models={llama},theta_delta=2", "theta_delta=2"),
])
def test_bad_model_args_print_one_line(tiny_dirs, task_dir, capsys, model_args, named):
    """Checked before lm-eval indexes its tasks or a model loads."""
    argv = ["run", "--model", "adafuse", "--model_args", model_args.format(llama=tiny_dirs["llama"]),
            "--tasks", "tiny_choice", "--include_path", str(task_dir)]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and named in lines[0], lines


def test_cuda_default_device_of_lm_eval_falls_back_without_cuda(tiny_dirs):
    """lm-eval's --device defaults to cuda:0; without CUDA the model loads where `auto` puts it."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    lm = AdaFuseLM.create_from_arg_string(f"models={tiny_dirs['llama']}", {"device": "cuda:0", "batch_size": 3})
    assert lm.models[0].device.type == "cpu" and lm.batch_size == 3
    with pytest.raises(AdaFuseError, match="cuda"):
        AdaFuseLM.create_from_arg_string(f"models={tiny_dirs['llama']},device=cuda", {})
