"""Decoders by name or `_target_`, their parameters declared once: the constructor's checks,
the config checks before any model loads, and the did-you-mean all come from the signature
and `bounds` of the class."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

import pytest

from adafuse import AdaFuse, AdaFuseError
from adafuse.decoding import DECODERS, build_decoder, register_decoder
from adafuse.decoding.registry import check_decoder_config, parameters
from tests.scripted import EOS, ScriptedLM

WORDS = ["Q:", " a", " b", "\n"]


def pair():
    def script(text):
        return {" a": 0.6, " b": 0.3, EOS: 0.1} if text.count(" ") < 2 else {EOS: 1.0}

    return [ScriptedLM("m0", WORDS, script), ScriptedLM("m1", WORDS, script)]


def test_parameters_are_the_keyword_arguments_of_the_constructor():
    assert list(parameters(AdaFuse)) == ["theta_delta", "max_words", "num_candidates", "weights", "mode", "engine"]
    assert list(parameters(DECODERS["greedy"])) == ["model_index", "mode", "engine"]


@pytest.mark.parametrize("config,message", [
    ({"name": "adafuse", "theta_dlta": 0.5}, "decoder 'adafuse' has no parameter 'theta_dlta' (did you mean 'theta_delta'?)"),
    ({"name": "fixed_span", "span_word": 2}, "(did you mean 'span_words'?)"),
    ({"name": "union_topk", "topk": 2}, "(did you mean 'top_k'?)"),
    ({"name": "beam"}, "unknown decoder 'beam'; allowed: adafuse, fixed_span, greedy, rerank, union_topk"),
    ({"name": "adafuse", "theta_delta": 1.5}, "theta_delta=1.5 is not allowed; theta_delta must be a number in [0, 1]"),
    ({"name": "adafuse", "max_words": 1.5}, "max_words=1.5 is not allowed; max_words must be an integer in [1, 64]"),
    ({"name": "union_topk", "top_k": 0}, "top_k=0 is not allowed"),
    ({"name": "greedy", "model_index": 2}, "model_index=2 is out of range; allowed: 0..1"),
    ({"name": "rerank", "weights": [1]}, "weights=[1.0] has 1 entries for 2 models"),
    ({"name": "rerank", "mode": "fast"}, "unknown mode 'fast'; allowed: cached, recompute"),
    ({"name": "rerank", "engine": {"share_prefx": False}}, "unknown engine option 'share_prefx'"),
    ({"_target_": "no_such_module.Decoder"}, "decoder._target_='no_such_module.Decoder' cannot be imported"),
    ({"_target_": "adafuse.decoding.output.Output"}, "is not a Decoder subclass"),
])
def test_a_bad_config_is_one_line_before_any_model_loads(config, message):
    with pytest.raises(AdaFuseError) as info:
        check_decoder_config(config, n_models=2)
    assert message in str(info.value)
    cls = DECODERS.get(config.get("name"))
    args = {k: v for k, v in config.items() if k != "name"}
    if cls is not None and set(args) <= set(parameters(cls)):
        with pytest.raises(AdaFuseError) as built:  # the constructor says the same
            cls(pair(), **args)
        assert str(built.value) == str(info.value)


def test_a_target_outside_the_package_is_imported_and_built(tmp_path, monkeypatch):
    (tmp_path / "my_rule.py").write_text(
        "from adafuse import AdaFuse\n\n"
        "class Shorter(AdaFuse):\n"
        "    name = 'shorter'\n"
        "    def __init__(self, models, *, weights=None, mode='cached', engine=None):\n"
        "        super().__init__(models, max_words=1, weights=weights, mode=mode, engine=engine)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        dec = build_decoder({"_target_": "my_rule.Shorter", "name": "shorter", "mode": "recompute"}, pair())
        assert type(dec).__name__ == "Shorter" and dec.max_words == 1 and dec.mode == "recompute"
        assert "shorter" not in DECODERS  # named by path, not registered
        assert dec.generate("Q:", max_new_tokens=3).text
    finally:
        sys.modules.pop("my_rule", None)


def test_a_registered_decoder_is_a_name_like_the_built_in_ones():
    @register_decoder
    class Quiet(AdaFuse):
        name = "quiet_test_decoder"
        bounds = {"patience": (0, 5)}

        def __init__(self, models, *, patience: int = 1, mode: str = "cached"):
            super().__init__(models, mode=mode)
            self.patience = patience

    try:
        assert build_decoder({"name": "quiet_test_decoder", "patience": 2}, pair()).patience == 2
        with pytest.raises(AdaFuseError, match=r"patience=9 is not allowed; patience must be an integer in \[0, 5\]"):
            check_decoder_config({"name": "quiet_test_decoder", "patience": 9}, 2)
        with pytest.raises(AdaFuseError, match="decoder name 'adafuse' is taken"):
            register_decoder(type("Other", (AdaFuse,), {"name": "adafuse"}))
    finally:
        DECODERS.pop("quiet_test_decoder")


@pytest.mark.parametrize("key,schema_name,hint", [
    ("span_word", "FixedSpanConf", " (did you mean 'span_words'?)"),
    ("topk", "UnionTopKConf", " (did you mean 'top_k'?)"),
    ("model_idx", "GreedyConf", " (did you mean 'model_index'?)"),
    ("top_k", "AdaFuseConf", "; decoder 'adafuse' takes: theta_delta, max_words, num_candidates, weights, mode"),
    ("theta_dlta", "RunConfig", " (did you mean 'theta_delta'?)"),
])
def test_the_command_line_suggests_the_decoders_own_parameters(key, schema_name, hint):
    from adafuse.run import did_you_mean

    assert did_you_mean(f"Key '{key}' not in '{schema_name}'") == hint


def test_the_config_schemas_are_made_from_the_classes():
    """Each decoder's node in conf/ composes to its class's declaration: the same parameters
    with the same defaults (engine is a run's own node), plus `name` and `batch_size`; a
    decoder registered later gets its schema too."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from adafuse.decoding.registry import config_schema
    from adafuse.run import CONF

    for name, cls in DECODERS.items():
        with initialize_config_dir(config_dir=str(CONF), version_base=None):
            node = OmegaConf.to_container(compose("config", [f"decoder={name}"]).decoder, resolve=True)
        declared = {k: p.default for k, p in parameters(cls).items() if k != "engine"}
        assert node == {"name": name, **declared, "batch_size": 1}, name

    @register_decoder
    class Later(AdaFuse):
        name = "later_test_decoder"

        def __init__(self, models, *, span: int = 2, scale: float = 0.5, weights=None, mode="cached", engine=None):
            super().__init__(models, weights=weights, mode=mode, engine=engine)

    try:
        schema = OmegaConf.structured(config_schema(Later))
        assert OmegaConf.to_container(schema) == {"name": "later_test_decoder", "span": 2, "scale": 0.5,
                                                 "weights": None, "mode": "cached", "batch_size": 1}
        with pytest.raises(Exception, match="span"):
            schema.span = "two"  # typed from the signature
    finally:
        DECODERS.pop("later_test_decoder")


class _Typed:
    """Annotations as a user's module writes them (strings, under `from __future__ import
    annotations` here), one naming a type this module never imports."""

    name = "typed_test_decoder"

    def __init__(self, models, *, a: int = 1, b: float | None = None, c: Optional[str] = None,
                 d: Sequence[float] = (1.0,), e: tuple[float, ...] | None = None, f: bool = True,
                 g: dict | None = None, h=0.5):
        pass


class _Unresolvable:
    name = "unresolvable_test_decoder"

    def __init__(self, models, *, a: "NotImported" = 3):  # noqa: F821
        pass


def test_schema_types_are_read_from_the_annotations():
    import dataclasses
    from typing import Any, List

    from adafuse.decoding.registry import config_schema, schema_keys, schema_name

    types = {f.name: f.type for f in dataclasses.fields(config_schema(_Typed))}
    assert types == {"name": str, "a": int, "b": Optional[float], "c": Optional[str], "d": List[float],
                     "e": Optional[List[float]], "f": bool, "g": Any, "h": float, "batch_size": int}
    assert schema_keys(_Typed) == list("abcdefgh") and schema_name(_Typed) == "_TypedConf"
    # a name the annotation cannot be resolved with: typed from the default instead
    assert {f.name: f.type for f in dataclasses.fields(config_schema(_Unresolvable))}["a"] is int


def test_the_catalog_reads_from_the_source_what_the_classes_declare():
    """adafuse/decoder_catalog.py gives readers the decoders without importing torch, by
    reading the classes' source: the same order, parameters (types, defaults), bounds and
    labels (UnionTopK's inherited from AdaFuse) as the imported classes."""
    from adafuse.decoder_catalog import builtin, facts_of

    read = builtin()
    assert list(read) == [name for name in DECODERS if DECODERS[name].__module__.startswith("adafuse.decoding.")]
    for name, facts in read.items():
        assert facts == facts_of(DECODERS[name]), name
    assert read["union_topk"].labels == {"theta_delta": "θ_Δ", "num_candidates": "B"}
    assert read["greedy"].bounds == {"model_index": (0, "last model")}


def test_the_catalog_refuses_a_default_it_cannot_read(tmp_path, monkeypatch):
    from adafuse import decoder_catalog

    (tmp_path / "__init__.py").write_text("from adafuse.decoding.odd import Odd\n")
    (tmp_path / "odd.py").write_text("@register_decoder\nclass Odd(Decoder):\n    name = 'odd'\n\n"
                                     "    def __init__(self, models, *, span: int = SPAN):\n        pass\n")
    monkeypatch.setattr(decoder_catalog, "DECODING", tmp_path)
    decoder_catalog.builtin.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"adafuse/decoding/odd.py: Odd\(span\): SPAN is not a literal"):
            decoder_catalog.builtin()
    finally:
        decoder_catalog.builtin.cache_clear()
