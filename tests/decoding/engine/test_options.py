"""Engine options: constructor arguments of the engines, from a decoder's `engine=` or a run's
`engine` node (engine.share_prefix=false, ...), checked before any model loads, and free to
change when a run is continued (they change speed, never a choice)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from adafuse import AdaFuseError, build_decoder
from adafuse.decoding.engine import EngineOptions
from adafuse.runner.experiment import check_config
from adafuse.runfolder.rundir import config_differences
from adafuse.runner.schema import EngineConf
from tests.scripted import EOS, ScriptedLM

CONF = Path(__file__).resolve().parents[3] / "conf"


def test_every_engine_option_set_in_the_config_schema_reaches_the_options():
    """Each field, set to a non-default value through OmegaConf's schema (its type checks
    included), comes out as the same EngineOptions value."""
    from omegaconf import OmegaConf

    changed = {"pack_cpu_weights": False, "share_prefix": False, "split_waste": 7, "fold_scoring": False}
    assert set(changed) == {f.name for f in dataclasses.fields(EngineOptions)}
    node = OmegaConf.merge(OmegaConf.structured(EngineConf), changed)
    assert EngineOptions.of(OmegaConf.to_container(node)) == EngineOptions(**changed)
    assert EngineOptions.of(OmegaConf.to_container(OmegaConf.structured(EngineConf))) == EngineOptions()


@pytest.fixture(scope="module")
def compose():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    import adafuse.runner.schema  # noqa: F401 - stores the schemas and resolvers

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        yield lambda *o: OmegaConf.to_container(hydra_compose("config", list(o)), resolve=True)


def test_a_runs_engine_node_reaches_the_engines(compose):
    config = compose("engine.share_prefix=false", "engine.pack_cpu_weights=false", "engine.split_waste=0")
    check_config(config)
    node = {k: v for k, v in config["decoder"].items() if k != "batch_size"}
    lm = ScriptedLM("m", ["Q:", " a", "\n"], lambda text: {" a": 0.7, EOS: 0.3})
    decoder = build_decoder(node, [lm], config["engine"])
    assert decoder.engine_options == EngineOptions(pack_cpu_weights=False, share_prefix=False, split_waste=0)
    assert decoder.open_engine(0, None).options == decoder.engine_options
    assert build_decoder(node, [lm]).engine_options == EngineOptions()  # none given: the defaults


def test_a_bad_engine_option_fails_before_any_model_loads(compose):
    with pytest.raises(AdaFuseError, match=r"engine.split_waste=-1 is not allowed"):
        check_config(compose("engine.split_waste=-1"))


def test_engine_options_may_change_when_a_run_is_continued():
    stored = {"decoder": {"name": "adafuse"}, "engine": {"share_prefix": True}}
    assert config_differences(stored, {**stored, "engine": {"share_prefix": False}}) == []
    assert config_differences({"decoder": {"name": "adafuse"}}, stored) == []  # older runs have none
