"""Fixtures for the runner tests: two tiny random-init models, a config folder that names
them (`models=tiny`), and `python -m adafuse.run` in this process (subprocesses: run_helpers.cli).

The tiny models come from tests/tiny_hf.py (a Llama with a byte-level BPE, a Gemma 3 with a
metaspace BPE): they load through the real `load_model` in a fraction of a second, decode a
few-shot prompt in tens of milliseconds, and never touch the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from run_helpers import FAST, Result

from tests import tiny_hf


@pytest.fixture(scope="session")
def tiny_conf(tmp_path_factory) -> Path:
    """A config folder for Hydra's search path: conf/models/tiny.yaml lists the tiny models."""
    return tiny_hf.tiny_conf(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(autouse=True)
def quiet_env(monkeypatch, tmp_path_factory):
    """No network, no W&B server, a private hash cache; one torch thread, since a second one
    only contends on tiny matrices (and on a busy 2-core machine slows them 30-fold)."""
    import torch

    for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "offline",
                       "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1",
                       "ADAFUSE_CACHE": str(tmp_path_factory.getbasetemp() / "adafuse-cache")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def adafuse_run(tiny_conf, capsys, monkeypatch):
    """adafuse_run(*overrides) runs `python -m adafuse.run` in this process (models stay loaded
    between calls) and returns its exit code and output."""
    import adafuse.run

    def run(*args: str, fast: bool = True) -> Result:
        flags = [a for a in args if a.startswith("-")]  # argparse wants -m before the overrides
        overrides = [a for a in args if not a.startswith("-")]
        argv = ["adafuse.run", *flags, f"hydra.searchpath=[file://{tiny_conf}]",
                *(FAST if fast else []), *overrides]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        try:
            adafuse.run.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
