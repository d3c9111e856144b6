"""examples/custom_decoder: a decoder outside the package, found through hydra.searchpath and
built from its `_target_`, as examples/custom_decoder/run.sh runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adafuse import AdaFuseError, build_decoder
from adafuse.runner.experiment import check_config
from tests.scripted import EOS, ScriptedLM

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_decoder"
WORDS = ["Q:", " a", " b", " c", "\n"]


@pytest.fixture
def composed(monkeypatch):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import adafuse.runner.schema  # noqa: F401 - stores the schemas and resolvers

    monkeypatch.syspath_prepend(str(EXAMPLE))  # what run.sh puts on PYTHONPATH
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        def run(*overrides):
            cfg = compose("config", [f"hydra.searchpath=[file://{EXAMPLE / 'conf'}]",
                                     "decoder=confident_proposer", *overrides])
            return OmegaConf.to_container(cfg, resolve=True)

        yield run
    sys.modules.pop("confident_proposer", None)


def models():
    sure = ScriptedLM("sure", WORDS, lambda t: {" a": 0.9, " b": 0.1} if t.count(" ") < 3 else {EOS: 1.0})
    unsure = ScriptedLM("unsure", WORDS, lambda t: {" b": 0.4, " c": 0.35, " a": 0.25} if t.count(" ") < 3 else {EOS: 1.0})
    return [sure, unsure]


def test_the_example_decoder_runs_from_its_yaml(composed):
    config = composed("decoder.lead=0.2")
    check_config(config)  # what a run checks before loading models
    node = {k: v for k, v in config["decoder"].items() if k != "batch_size"}
    decoder = build_decoder(node, models())
    assert type(decoder).__name__ == "ConfidentProposer" and decoder.lead == 0.2
    out = decoder.generate("Q:", max_new_tokens=6)
    first = out.trace[0]
    assert first.margins[0][0] - first.margins[1][0] > 0.2
    assert {m for p in first.proposals for m in p.proposers} == {0}  # the unsure model kept quiet
    assert all(len(p.nll) == 2 for p in first.proposals)  # but scored every proposal


def test_its_parameters_are_checked_before_any_model_loads(composed):
    with pytest.raises(AdaFuseError, match=r"lead=2.0 is not allowed; lead must be a number in \[0, 1\]"):
        check_config(composed("decoder.lead=2.0"))
    with pytest.raises(AdaFuseError, match=r"did you mean 'lead'\?"):
        check_config(composed("+decoder.leed=0.5"))
