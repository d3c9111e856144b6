"""Every decoder option that conf/ offers (conf/decoder, the sweep presets' sweep/decoder and
the Table-1 systems) composes to a config that builds its decoder, with the composed values,
and that decoder decodes (on scripted toy models: no weights are loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adafuse import build_decoder
from adafuse.decoding import DECODERS
from tests.scripted import EOS, ScriptedLM

CONF = Path(__file__).resolve().parents[2] / "conf"
WORDS = ["Q:", " a", " b", " c", "\n"]


def options() -> list[list[str]]:
    found = [[f"decoder={p.stem}"] for p in sorted((CONF / "decoder").glob("*.yaml"))]
    found += [["+sweep=decoders", f"sweep/decoder={p.stem}"] for p in sorted((CONF / "sweep" / "decoder").glob("*.yaml"))]
    found += [["+experiment=table1_embedded", f"system={p.stem}"] for p in sorted((CONF / "system").glob("*.yaml"))]
    return found


@pytest.fixture(scope="module")
def compose():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    import adafuse.runner.schema  # noqa: F401 - stores the schemas and resolvers

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        yield lambda overrides: OmegaConf.to_container(hydra_compose("config", overrides), resolve=True)


def scripted_pair():
    def script(text):
        return {" a": 0.5, " b": 0.3, EOS: 0.2} if text.count(" ") < 2 else {"\n": 1.0}

    return [ScriptedLM("m0", WORDS, script), ScriptedLM("m1", WORDS, script)]


def test_conf_offers_every_decoder():
    names = {p.stem for p in (CONF / "decoder").glob("*.yaml")}
    assert names == set(DECODERS)


@pytest.mark.parametrize("overrides", options(), ids=lambda o: o[-1])
def test_each_option_builds_its_decoder(compose, overrides):
    node = dict(compose(overrides)["decoder"])
    node.pop("batch_size")  # a generate_batch argument, not a constructor's
    decoder = build_decoder(dict(node), scripted_pair())
    assert type(decoder) is DECODERS[node["name"]]
    for key, value in node.items():
        if key not in ("name", "weights", "engine"):
            assert getattr(decoder, key) == value, key
    out = decoder.generate("Q:", max_new_tokens=4, stop=["\n"])
    assert out.finish_reason in ("stop", "eos", "length")
