"""The README's examples against `python -m adafuse.serve` on the embedded pair (slow: loads
SmolLM2-135M and Gemma-3-270M)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

PROMPT = ("Question: What is the capital of France?\nAnswer: Paris\n\n"
          "Question: Which British king married Mary of Teck?\nAnswer:")


@pytest.mark.slow
def test_readme_examples_answer(start_server):
    srv = start_server("models=smol_gemma", "serve.model_id=adafuse").wait_ready(600)
    if shutil.which("curl"):
        body = json.dumps({"model": "adafuse", "prompt": PROMPT, "max_tokens": 16, "stop": ["\n"]})
        out = subprocess.run(["curl", "-s", f"{srv.url}/v1/completions", "-H", "Content-Type: application/json",
                              "-d", body], capture_output=True, text=True, timeout=600)
        answer = json.loads(out.stdout)["choices"][0]["text"]
        assert answer.strip()
    import openai

    client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", timeout=600)
    out = client.completions.create(model="adafuse", prompt=PROMPT, max_tokens=16, stop=["\n"])
    assert out.choices[0].text.strip() and out.usage.completion_tokens >= 1
    # Gemma-3-270M is a base model whose GGUF carries no chat template: chat is refused, naming it
    with pytest.raises(openai.BadRequestError, match="gemma3-270m"):
        client.chat.completions.create(model="adafuse", max_tokens=16,
                                       messages=[{"role": "user", "content": "The capital of France?"}])
    assert client.completions.create(model="adafuse", prompt=PROMPT, max_tokens=4).choices
