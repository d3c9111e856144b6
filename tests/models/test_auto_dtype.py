"""dtype=auto: bfloat16 on CUDA and on CPUs with native bf16 matrix units, float32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from adafuse import ModelLoadError
from adafuse import model_spec
from adafuse.model_spec import CPU_BF16_ENV, cpu_has_native_bf16, resolve_dtype

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(CPU_BF16_ENV, raising=False)


@pytest.mark.parametrize("native, expected", [(False, torch.float32), (True, torch.bfloat16)])
def test_auto_on_cpu_follows_the_detection(monkeypatch, native, expected):
    monkeypatch.setattr(model_spec, "cpu_has_native_bf16", lambda: native)
    assert resolve_dtype("auto", CPU) == expected
    assert resolve_dtype(None, CPU) == expected  # unset is auto


@pytest.mark.parametrize("native", [False, True])
def test_auto_on_cuda_is_bfloat16_whatever_the_cpu(monkeypatch, native):
    monkeypatch.setattr(model_spec, "cpu_has_native_bf16", lambda: native)
    assert resolve_dtype("auto", CUDA) == torch.bfloat16


@pytest.mark.parametrize("native", [False, True])
def test_an_explicit_dtype_is_kept(monkeypatch, native):
    monkeypatch.setattr(model_spec, "cpu_has_native_bf16", lambda: native)
    assert resolve_dtype("float32", CPU) == torch.float32
    assert resolve_dtype("bfloat16", CPU) == torch.bfloat16
    assert resolve_dtype("float32", CUDA) == torch.float32


def test_detection_asks_torchs_cpu_checks(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert cpu_has_native_bf16() is False
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert cpu_has_native_bf16() is True
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert cpu_has_native_bf16() is True


def test_a_torch_without_the_checks_means_no(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert cpu_has_native_bf16() is False


@pytest.mark.parametrize("value, native", [("0", False), ("1", True)])
def test_the_environment_overrides_the_detection(monkeypatch, value, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: not native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: not native, raising=False)
    monkeypatch.setenv(CPU_BF16_ENV, value)
    assert cpu_has_native_bf16() is native
    assert resolve_dtype("auto", CPU) == (torch.bfloat16 if native else torch.float32)


def test_a_bad_override_names_the_value_and_what_is_allowed(monkeypatch):
    monkeypatch.setenv(CPU_BF16_ENV, "yes")
    with pytest.raises(ModelLoadError) as err:
        resolve_dtype("auto", CPU)
    text = str(err.value)
    assert "\n" not in text and "'yes'" in text and "1" in text and "0" in text
