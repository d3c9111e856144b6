"""lm-evaluation-harness's `local-completions` model against the server: the README's command
(its port made this server's, a `--limit`, and an output folder added) runs the example
generate-until task over HTTP; each logged response is what `AdaFuse(...).generate` gives on
the prompt lm-eval built, with the `stop` and `max_tokens` lm-eval sent."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from adafuse.decoding import AdaFuse

from tests.serve.conftest import ENV, REPO

pytest.importorskip("lm_eval", reason="lm-eval is an optional extra: pip install 'adafuse[lm-eval]'")
# lm-eval's API models (local-completions) need its `api` extra: requests, aiohttp, tenacity
pytest.importorskip("tenacity", reason="lm-eval's local-completions needs its api extra: "
                    "pip install 'lm-eval[api]'")

LIMIT = 2


def readme_command() -> str:
    """The README's `lm_eval --model local-completions ...` command (one of them)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"`(lm_eval --model local-completions [^`]+)`", text)
    return command


@pytest.fixture(scope="module")
def evaluated(server, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-eval-out")
    command = readme_command()
    assert "http://127.0.0.1:8000/v1/completions" in command
    argv = shlex.split(command.replace("http://127.0.0.1:8000", server.url))
    argv[0] = str(Path(sys.executable).parent / "lm_eval")
    argv += ["--limit", str(LIMIT), "--output_path", str(out), "--log_samples"]
    base = tmp_path_factory.getbasetemp()
    env = {**os.environ, **ENV, "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_DATASETS_CACHE": str(base / "datasets-cache"), "OPENAI_API_KEY": ""}
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stderr[-3000:], server.text()[-2000:])
    (results,) = out.rglob("results_*.json")
    (samples,) = out.rglob("samples_capitals_generate_*.jsonl")
    return (json.loads(results.read_text()), [json.loads(line) for line in samples.open()],
            proc.stdout + proc.stderr)


def test_lm_eval_finishes_over_http(evaluated, server):
    results, samples, output = evaluated
    assert results["config"]["model"] == "local-completions"
    assert results["n-samples"]["capitals_generate"]["effective"] == LIMIT
    assert 0.0 <= results["results"]["capitals_generate"]["exact_match,none"] <= 1.0
    assert len(samples) == LIMIT
    log = server.text()
    assert log.count("POST /v1/completions 200") >= LIMIT
    assert "POST /v1/completions 400" not in log  # lm-eval's defaults (temperature 0, seed) pass
    assert "Retrying" not in output


def test_lm_eval_responses_equal_generate(evaluated, local_models):
    """What lm-eval logged is AdaFuse's generate on its 2-shot prompt, with its stop and budget."""
    _, samples, _ = evaluated
    api = AdaFuse(local_models)
    for sample in samples:
        context, gen = sample["arguments"]["gen_args_0"]["arg_0"], sample["arguments"]["gen_args_0"]["arg_1"]
        assert context.startswith("Question: What is the capital of England?\nAnswer: London\n\n")
        want = api.generate(context, max_new_tokens=gen["max_gen_toks"], stop=gen["until"]).text
        assert sample["resps"] == [[want]]
