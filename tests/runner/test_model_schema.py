"""The Hydra schema of a model (`ModelConf`) is made from `ModelSpec`, declared once in
adafuse/model_spec.py: a field added to the spec is a key of the schema, and a config that
sets every field hands each value to `load_model`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from adafuse import models
from adafuse.model_spec import ModelSpec
from adafuse.runner.schema import ModelConf, schema_of

CONF = Path(__file__).resolve().parents[2] / "conf"

# a value other than the default for every field of ModelSpec (a new field needs one here)
VALUES = {"name": "org/some-model", "device": "cuda:1", "dtype": "float16", "chat_template": True,
          "trust_remote_code": True, "weight": 2.5, "gguf_file": "w.Q4_K_M.gguf", "alias": "m0",
          "cache_dir": "/tmp/adafuse-cache", "placement": "ray", "num_gpus": 0.5}


def test_a_field_added_to_a_spec_is_a_key_of_its_schema():
    @dataclasses.dataclass
    class Extended(ModelSpec):
        context: int = 4096

    conf = OmegaConf.structured(schema_of(Extended, "ExtendedConf", ""))
    assert conf.context == 4096 and OmegaConf.is_missing(conf, "name")  # no default: required
    conf.context = 8192
    with pytest.raises(ValidationError):
        conf.context = "long"  # the spec's type holds in the schema
    with pytest.raises(ConfigKeyError):
        OmegaConf.merge(conf, {"contxt": 1})  # and a typo fails


def test_every_field_of_the_spec_has_a_value_in_this_test():
    assert set(VALUES) == {f.name for f in dataclasses.fields(ModelSpec)}
    assert all(VALUES[f.name] != f.default for f in dataclasses.fields(ModelSpec))


def test_a_config_setting_every_field_hands_each_value_to_load_model(monkeypatch):
    """Composed by Hydra through the schema, then given to `load_model` as the runner gives
    it; the spec `load_model` reads (before its checks and any weights) holds every value."""
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=[f"models.0.{k}={v}" for k, v in VALUES.items()])
    assert OmegaConf.get_type(cfg.models[0]) is ModelConf
    spec = OmegaConf.to_container(cfg, resolve=True)["models"][0]
    seen = []

    class Stop(Exception):
        pass

    def check_spec(spec, **options):
        seen.append(ModelSpec.coerce(spec))  # what load_model's check reads: unknown keys fail
        raise Stop

    monkeypatch.setattr(models, "check_spec", check_spec)
    with pytest.raises(Stop):
        models.load_model(spec)
    assert seen == [ModelSpec(**VALUES)]
