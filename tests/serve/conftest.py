"""Fixtures of the server tests: two tiny random-init models (tests/tiny_hf.py) with chat
templates, a config folder naming them (`models=tiny`), and `python -m adafuse.serve` in a
subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import tiny_hf

REPO = Path(__file__).resolve().parents[2]
# a template a model renders with its own markers; the gemma one starts with its BOS, as Gemma's does
TEMPLATES = {
    "llama": "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
             "{% if add_generation_prompt %}<|assistant|>{% endif %}",
    "gemma": "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}"
             "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
}
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "ADAFUSE_CPU_BF16": "0", "WANDB_MODE": "offline"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("serve-tiny")
    folders = []
    for kind, seed in (("llama", 0), ("gemma", 1)):
        folder = tiny_hf.build(kind, root / f"tiny-{kind}", seed=seed)
        config = folder / "tokenizer_config.json"
        data = json.loads(config.read_text(encoding="utf-8"))
        data["chat_template"] = TEMPLATES[kind]
        config.write_text(json.dumps(data), encoding="utf-8")
        (folder / "chat_template.jinja").unlink(missing_ok=True)
        folders.append(folder)
    return folders


@pytest.fixture(scope="session")
def tiny_conf(tiny_models, tmp_path_factory) -> Path:
    conf = tmp_path_factory.mktemp("serve-conf")
    (conf / "models").mkdir()
    entries = [{"name": str(p), "device": "${device}", "dtype": "${dtype}"} for p in tiny_models]
    (conf / "models" / "tiny.yaml").write_text(json.dumps(entries), encoding="utf-8")
    return conf


class Server:
    """`python -m adafuse.serve` in a subprocess; its output goes to `log`."""

    def __init__(self, conf: Path, log: Path, *overrides: str, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = [sys.executable, "-m", "adafuse.serve", f"hydra.searchpath=[file://{conf}]",
                "models=tiny", "device=cpu", "max_new_tokens=8", f"serve.port={self.port}",
                "serve.model_id=tiny-pair", *overrides]
        self.out = open(log, "w")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self.out, stderr=subprocess.STDOUT,
                                     env={**os.environ, **ENV})

    def wait_ready(self, timeout: float = 300) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"the server did not answer in {timeout} s:\n{self.text()}")

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "/health", timeout=30) as r:
            return json.loads(r.read())

    def text(self) -> str:
        self.out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


@pytest.fixture(scope="module")
def server(tiny_conf, tmp_path_factory):
    srv = Server(tiny_conf, tmp_path_factory.mktemp("serve-log") / "server.log", "batch_size=4")
    try:
        yield srv.wait_ready()
    finally:
        srv.close()


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=300, max_retries=0)


@pytest.fixture(scope="session")
def local_models(tiny_models):
    """The same tiny models in this process, as the server serves them."""
    import torch

    from adafuse.models import load_model
    from adafuse.serve.chat import ServedModel

    torch.set_num_threads(1)
    return [ServedModel.of(load_model(str(p), device="cpu", dtype="float32")) for p in tiny_models]


@pytest.fixture
def start_server(tiny_conf, tmp_path):
    """start_server(*overrides) -> a Server of its own (closed after the test)."""
    started = []

    def start(*overrides: str, port: int | None = None) -> Server:
        srv = Server(tiny_conf, tmp_path / f"server{len(started)}.log", *overrides, port=port)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()
