"""`--model_args` of the `adafuse` lm-eval model: presets, lists, decoder parameters, and one
line naming the bad key or value."""

from __future__ import annotations

import pytest

from adafuse.errors import AdaFuseError
from adafuse.lm_eval.args import check, parse


def test_preset_expands_to_its_models_with_device_and_dtype():
    specs, decoder, batch_size = parse({"models": "smol_gemma", "theta_delta": 0.5, "device": "cpu",
                                        "dtype": "float32", "batch_size": 4})
    assert [s["name"] for s in specs] == ["smollm2-135m-instruct", "gemma3-270m"]
    assert {(s["device"], s["dtype"]) for s in specs} == {("cpu", "float32")}
    assert decoder == {"name": "adafuse", "theta_delta": 0.5} and batch_size == 4


@pytest.mark.parametrize("models", ["a/b+./c.gguf", "[a/b,./c.gguf]", ["a/b", "./c.gguf"]])
def test_model_specs_as_a_list(models):
    specs, _, _ = parse({"models": models, "weights": "1+2.5", "decoder": "rerank"})
    assert [s["name"] for s in specs] == ["a/b", "./c.gguf"]
    assert parse({"models": models, "weights": [1, 2.5]})[1]["weights"] == [1.0, 2.5]


def test_decoder_parameters_pass_through():
    _, decoder, _ = parse({"decoder": "greedy", "model_index": 1, "mode": "recompute"})
    assert decoder == {"name": "greedy", "model_index": 1, "mode": "recompute"}
    _, decoder, _ = parse({"decoder": "union_topk", "top_k": 5})
    assert decoder == {"name": "union_topk", "top_k": 5}


@pytest.mark.parametrize("args, named", [
    ({"colour": "red"}, "'colour'"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"batch_size": "auto"}, "batch_size='auto'"),
    ({"decoder": "beam"}, "decoder='beam'"),
    ({"weights": "1+x"}, "weights='x'"),
    ({"max_words": 1.5}, "max_words=1.5"),
    ({"chat_template": "maybe"}, "chat_template='maybe'"),
    ({"models": ""}, "models=''"),
])
def test_bad_values_name_the_key(args, named):
    with pytest.raises(AdaFuseError) as exc:
        parse(args)
    assert named in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("args, named", [
    ({"models": "no-such-model"}, "no-such-model"),
    ({"theta_delta": 2}, "theta_delta=2"),
    ({"decoder": "greedy", "theta_delta": 0.5}, "theta_delta"),
    ({"decoder": "greedy", "model_index": 2}, "model_index=2"),
])
def test_check_needs_no_weights(tiny_dirs, args, named):
    with pytest.raises(AdaFuseError) as exc:
        check({"models": f"{tiny_dirs['llama']}+{tiny_dirs['gemma']}", "device": "cpu", **args})
    assert named in str(exc.value)
