"""The GGUF cache checks what it loads: a file changed in place (same size, same times) is
caught and rebuilt, a half-built or manifest-less entry is rebuilt, the hashes recorded are
those of the files read, and a killed build's leftovers are removed.

A real GGUF takes a minute to dequantise, so `_from_pretrained` reads a tiny model folder
when asked for the "GGUF" (the cache's own logic runs unchanged)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests import tiny_hf


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch):
    import adafuse.models as models

    source = tiny_hf.build("llama", tmp_path / "tiny", seed=0)
    gguf = tmp_path / "gguf" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    real = models._from_pretrained
    builds = []

    def from_pretrained(where, spec, dtype, gguf_file):
        if gguf_file:  # "dequantising" the GGUF: read the tiny folder instead
            builds.append(gguf_file)
            return real(source, spec, dtype, None)
        return real(where, spec, dtype, None)

    monkeypatch.setattr(models, "_from_pretrained", from_pretrained)
    monkeypatch.setenv("ADAFUSE_CACHE", str(tmp_path / "cache"))
    return gguf, builds


def _entry(tmp_path) -> Path:
    (entry,) = [p for p in (tmp_path / "cache" / "dequantised").iterdir() if p.is_dir()]
    return entry


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_built_once_then_loaded_with_the_hashes_of_what_was_read(fake_gguf, tmp_path):
    from adafuse import load_model

    gguf, builds = fake_gguf
    first = load_model(str(gguf), device="cpu")
    second = load_model(str(gguf), device="cpu")
    assert builds == ["tiny.gguf"]  # the second load read the cache
    entry = _entry(tmp_path)
    weights = entry / "model.safetensors"
    assert second.files_sha256["model.safetensors"] == _sha(weights)
    assert second.files_sha256["tiny.gguf"] == _sha(gguf)
    assert first.files_sha256 == second.files_sha256
    assert (entry / "adafuse-cache.json").is_file()


def test_a_weight_file_changed_in_place_with_its_times_kept_is_rebuilt(fake_gguf, tmp_path):
    from adafuse import load_model

    gguf, builds = fake_gguf
    good = load_model(str(gguf), device="cpu").files_sha256
    weights = _entry(tmp_path) / "model.safetensors"
    info = os.stat(weights)
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # a flipped bit: same size
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns))  # same modification time
    again = load_model(str(gguf), device="cpu")
    assert len(builds) == 2  # caught and rebuilt
    assert again.files_sha256 == good and _sha(weights) == good["model.safetensors"]


@pytest.mark.parametrize("damage", ["no manifest", "missing weights", "killed build"])
def test_a_half_built_or_older_entry_is_rebuilt(fake_gguf, tmp_path, damage):
    from adafuse import load_model

    gguf, builds = fake_gguf
    load_model(str(gguf), device="cpu")
    entry = _entry(tmp_path)
    if damage == "no manifest":  # an entry written before the manifest, or cut short
        (entry / "adafuse-cache.json").unlink()
    elif damage == "missing weights":
        (entry / "model.safetensors").unlink()
    else:  # what a build killed mid-way leaves: its temporary folder, half full
        (entry.parent / f"{entry.name}.k1ll3d_x").mkdir()
        (entry.parent / f"{entry.name}.k1ll3d_x" / "model.safetensors").write_bytes(b"x" * 100)
        (entry / "adafuse-cache.json").unlink()
    lm = load_model(str(gguf), device="cpu")
    assert len(builds) == 2
    assert lm.files_sha256["model.safetensors"] == _sha(entry / "model.safetensors")
    assert [p.name for p in entry.parent.iterdir() if p.is_dir()] == [entry.name]


@pytest.mark.parametrize("value, message", [
    ("", "ADAFUSE_CACHE='' is empty"), ("/", "ADAFUSE_CACHE='/' is the root folder"),
    ("/..", "ADAFUSE_CACHE='/..' is the root folder")])
def test_an_empty_or_root_cache_is_refused_before_loading(monkeypatch, value, message):
    from adafuse.errors import AdaFuseError
    from adafuse.model_checks import check_spec

    monkeypatch.setenv("ADAFUSE_CACHE", value)
    with pytest.raises(AdaFuseError) as err:
        check_spec("smollm2-135m-instruct")
    assert message in str(err.value) and "\n" not in str(err.value)
