"""The `adafuse` lm-eval model in this process: its log-likelihoods against lm-eval's own `hf`
model on the same tiny model, is_greedy, the ensemble's weighted mean, and its generations
against adafuse's own API."""

from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from adafuse import AdaFuse, Greedy, load_model
from adafuse.errors import AdaFuseError
from adafuse.lm_eval.model import AdaFuseLM, shared_text

PAIRS = [
    ("Question: Who wrote Emma?\nAnswer:", " Jane Austen"),
    ("Question: Who wrote Emma?\nAnswer:", " Charles Dickens"),
    ("Question: What is the capital of France?\nAnswer:", " Paris."),
    ("The capital of France is", " Paris"),
    ("Question: Who wrote Emma?\nAnswer: ", "Jane Austen"),  # the space merges into the continuation
]
TEXTS = ["Question: Who wrote Emma?\nAnswer: Jane Austen", "Paris is the capital of France."]


def requests(kind, items):
    return [Instance(kind, {}, item, i) for i, item in enumerate(items)]


@pytest.fixture(scope="module")
def loaded(tiny_dirs):
    return {kind: load_model(str(path), device="cpu", dtype="float32") for kind, path in tiny_dirs.items()}


# the Gemma-style tokenizer adds a BOS to raw text, as adafuse's encode does; lm-eval's `hf`
# needs add_bos_token=True to score the same ids (for loglikelihood_rolling it prepends BOS
# itself, so there it takes add_bos_token=False)
@pytest.mark.parametrize("kind, bos", [("llama", None), ("gemma", True)])
def test_one_model_loglikelihood_equals_lm_eval_hf(tiny_dirs, loaded, kind, bos):
    ours = AdaFuseLM(models=[loaded[kind]], batch_size=2)
    hf = HFLM(pretrained=str(tiny_dirs[kind]), device="cpu", dtype="float32", batch_size=2,
              **({"add_bos_token": bos} if bos else {}))
    # with the model's own greedy continuation, and that continuation followed by a word
    # (greedy for its first tokens only): is_greedy is checked at every position
    greedy = Greedy([loaded[kind]]).generate(PAIRS[0][0], max_new_tokens=4).text
    pairs = [*PAIRS, (PAIRS[0][0], greedy), (PAIRS[0][0], greedy + " Paris")]
    mine, theirs = ours.loglikelihood(requests("loglikelihood", pairs), disable_tqdm=True), \
        hf.loglikelihood(requests("loglikelihood", pairs), disable_tqdm=True)
    assert [g for _, g in mine] == [g for _, g in theirs] and mine[-2][1]
    assert [v for v, _ in mine] == pytest.approx([v for v, _ in theirs], abs=1e-4)
    rolling = [(t,) for t in TEXTS]
    hf_rolling = HFLM(pretrained=str(tiny_dirs[kind]), device="cpu", dtype="float32", add_bos_token=False)
    assert ours.loglikelihood_rolling(requests("loglikelihood_rolling", rolling), disable_tqdm=True) == \
        pytest.approx(hf_rolling.loglikelihood_rolling(requests("loglikelihood_rolling", rolling),
                                                       disable_tqdm=True), abs=1e-4)


def test_is_greedy_on_each_models_own_greedy_continuation(loaded):
    """A continuation every model writes greedily is greedy; one model's alone is not the
    ensemble's unless the other model writes it too."""
    context = "Question: Who wrote Emma?\nAnswer:"
    own = {k: Greedy([lm]).generate(context, max_new_tokens=4).text for k, lm in loaded.items()}
    assert all(len(text.split()) >= 1 for text in own.values())
    for kind, lm in loaded.items():
        single = AdaFuseLM(models=[lm])
        (value, greedy), = single.loglikelihood(requests("loglikelihood", [(context, own[kind])]), disable_tqdm=True)
        assert greedy and value < 0
        other = own["gemma" if kind == "llama" else "llama"]
        if other != own[kind]:
            (_, greedy_other), = single.loglikelihood(requests("loglikelihood", [(context, other)]),
                                                      disable_tqdm=True)
            assert greedy_other is False
        # batched with other contexts (a shared-prefix chunk, rows leaving at different steps)
        mixed = [(context, own[kind]), *PAIRS, (context, own[kind][:-1])]
        batched = AdaFuseLM(models=[lm], batch_size=4).loglikelihood(requests("loglikelihood", mixed),
                                                                     disable_tqdm=True)
        alone = [single.loglikelihood(requests("loglikelihood", [pair]), disable_tqdm=True)[0] for pair in mixed]
        assert [g for _, g in batched] == [g for _, g in alone] and batched[0][1]
        assert [v for v, _ in batched] == pytest.approx([v for v, _ in alone], abs=1e-4)


def test_ensemble_value_is_weighted_mean_of_model_totals(loaded):
    pair = [loaded["llama"], loaded["gemma"]]
    alone = [AdaFuseLM(models=[lm]).loglikelihood(requests("loglikelihood", PAIRS), disable_tqdm=True)
             for lm in pair]
    both = AdaFuseLM(models=pair, weights="1+3", batch_size=3).loglikelihood(
        requests("loglikelihood", PAIRS), disable_tqdm=True)
    for i, (value, greedy) in enumerate(both):
        assert value == pytest.approx((alone[0][i][0] + 3 * alone[1][i][0]) / 4, abs=1e-4)
        assert greedy == (alone[0][i][1] and alone[1][i][1])
    picked = AdaFuseLM(models=pair, decoder="greedy", model_index=1).loglikelihood(
        requests("loglikelihood", PAIRS), disable_tqdm=True)
    assert [v for v, _ in picked] == pytest.approx([v for v, _ in alone[1]], abs=1e-4)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_cached_engine_scores_as_the_recompute_oracle(loaded, batch_size):
    """mode=recompute (every forward re-encodes from scratch, one prompt at a time) gives the
    same values and flags as the cached engine's batched forwards, whose contexts read their
    common prefix (a few-shot example) in place, chunk after chunk."""
    pair = [loaded["llama"], loaded["gemma"]]
    shots = "Question: What is two plus two?\nAnswer: 4\n\n"
    pairs = [(shots + context, continuation) for context, continuation in PAIRS]
    cached = AdaFuseLM(models=pair, batch_size=batch_size).loglikelihood(requests("loglikelihood", pairs),
                                                                         disable_tqdm=True)
    oracle = AdaFuseLM(models=pair, mode="recompute").loglikelihood(requests("loglikelihood", pairs),
                                                                    disable_tqdm=True)
    assert [g for _, g in cached] == [g for _, g in oracle]
    assert [v for v, _ in cached] == pytest.approx([v for v, _ in oracle], abs=1e-4)


def test_generate_until_gives_adafuse_text(loaded):
    """The same text as AdaFuse's own generate for each prompt, with lm-eval's `until` and
    `max_gen_toks`; prompts decoded together with their shared few-shot prefix."""
    pair = [loaded["llama"], loaded["gemma"]]
    shots = "Question: What is two plus two?\nAnswer: 4\n\n"
    prompts = [shots + c for c in dict.fromkeys(c for c, _ in PAIRS)]
    gen = {"until": ["\n"], "max_gen_toks": 12, "do_sample": False}
    ours = AdaFuseLM(models=pair, theta_delta=0.5, batch_size=2)
    texts = ours.generate_until(requests("generate_until", [(p, gen) for p in prompts]), disable_tqdm=True)
    api = AdaFuse(pair, theta_delta=0.5)
    assert texts == [api.generate(p, max_new_tokens=12, stop=["\n"]).text for p in prompts]
    assert any(texts) and all("\n" not in t for t in texts)
    assert shared_text(prompts) == shots
    short = ours.generate_until(requests("generate_until", [(prompts[0], {"until": "Jane", "max_gen_toks": 2})]),
                                disable_tqdm=True)
    assert short == [api.generate(prompts[0], max_new_tokens=2, stop=["Jane"]).text]


def test_sampling_is_refused(loaded):
    ours = AdaFuseLM(models=[loaded["llama"]])
    with pytest.raises(AdaFuseError, match="do_sample"):
        ours.generate_until(requests("generate_until", [("Q:", {"until": ["\n"], "do_sample": True})]))


def test_registered_and_declared_as_an_entry_point():
    """`adafuse` is in lm-eval's registry beside its own models, and pyproject's entry point
    names that class (for an lm-eval that loads models from entry points)."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from lm_eval.api.registry import get_model

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    module, _, name = pyproject["project"]["entry-points"]["lm_eval.models"]["adafuse"].partition(":")
    from importlib import import_module

    assert getattr(import_module(module), name) is get_model("adafuse") is AdaFuseLM
    assert get_model("hf") is HFLM


def test_boundary_merge_scores_the_retokenised_tail(loaded):
    """A continuation that merges with the end of the context (its trailing space joins the
    continuation's first word, which lm-eval's own models handle by moving the space): the scored tokens
    are those of encode(context + continuation) after its common prefix with encode(context),
    as the decoders score a span; checked against the model's own full forward."""
    import torch

    for lm in loaded.values():
        context, continuation = "Question: Who wrote Emma?\nAnswer: ", "Jane Austen"
        whole, ctx = lm.encode(context + continuation), lm.encode(context)
        start = next(i for i, (a, b) in enumerate(zip(whole, ctx + [-1])) if a != b)
        assert start < len(ctx)  # the tokenizer merges across the boundary
        with torch.no_grad():
            logprobs = torch.log_softmax(lm.model(torch.tensor([whole])).logits[0].float(), -1)
        expected = sum(float(logprobs[t - 1, whole[t]]) for t in range(start, len(whole)))
        (value, _), = AdaFuseLM(models=[lm]).loglikelihood(requests("loglikelihood", [(context, continuation)]),
                                                          disable_tqdm=True)
        assert value == pytest.approx(expected, abs=1e-4)


def test_rows_of_one_context_split_across_chunks(loaded, monkeypatch):
    """loglikelihood_rolling's texts share one context (BOS); a context's rows are cut into
    several engine prompts past SCORED_POSITIONS tokens, with the same values."""
    import adafuse.lm_eval.model as module

    lm = AdaFuseLM(models=[loaded["llama"], loaded["gemma"]], batch_size=2)
    rolling = requests("loglikelihood_rolling", [(t,) for t in TEXTS * 2])
    whole = lm.loglikelihood_rolling(rolling, disable_tqdm=True)
    choices = lm.loglikelihood(requests("loglikelihood", PAIRS), disable_tqdm=True)
    monkeypatch.setattr(module, "SCORED_POSITIONS", 3)
    assert lm.loglikelihood_rolling(rolling, disable_tqdm=True) == pytest.approx(whole, abs=1e-4)
    split = lm.loglikelihood(requests("loglikelihood", PAIRS), disable_tqdm=True)
    assert [g for _, g in split] == [g for _, g in choices]
    assert [v for v, _ in split] == pytest.approx([v for v, _ in choices], abs=1e-4)
