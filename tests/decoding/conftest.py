"""Tiny random-init models for the decoding tests (tests/tiny_hf.py): a Llama and a Gemma 3
(seed 0), and a second Llama (seed 1); built once a session."""

from __future__ import annotations

import pytest

from adafuse import load_model
from tests import tiny_hf


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "llama": load_model(str(tiny_hf.build("llama", root / "llama", seed=0)), device="cpu"),
        "gemma": load_model(str(tiny_hf.build("gemma", root / "gemma", seed=0)), device="cpu"),
        "llama2": load_model(str(tiny_hf.build("llama", root / "llama2", seed=1)), device="cpu"),
    }
