"""The real code path end to end on tiny random-init transformers models (two tokenizer
families, a Gemma-3 sliding window of 8 tokens): cached decoding must choose exactly what
recompute does; greedy equals transformers' generate(). The engines' own tests are in
engine/ (the `tiny` models come from conftest.py)."""

from __future__ import annotations

import pytest
import torch

from adafuse import AdaFuse, Greedy
from tests import tiny_hf
from tests.tiny_hf import assert_same_choices

PROMPTS = tiny_hf.PROMPTS


def winners(out):
    return [(r.proposals[r.winner].text, r.proposals[r.winner].terminal) for r in out.trace]


@pytest.mark.parametrize("names,theta,max_words", [
    (("llama", "gemma"), 0.0, 3),
    (("llama", "gemma"), 0.01, 2),
    (("llama", "gemma"), 0.3, 1),
    (("gemma", "llama"), 1.0, 4),
    (("gemma", "llama", "llama2"), 0.01, 3),
    (("llama", "gemma", "llama2", "gemma"), 0.0, 2),
])
def test_cached_chooses_what_recompute_chooses(tiny, names, theta, max_words):
    models = [tiny[n] for n in names]
    for prompt in PROMPTS:
        kwargs = {"theta_delta": theta, "max_words": max_words, "num_candidates": 3}
        cached = AdaFuse(models, mode="cached", **kwargs).generate(prompt, max_new_tokens=12, stop=["\n"])
        again = AdaFuse(models, mode="recompute", **kwargs).generate(prompt, max_new_tokens=12, stop=["\n"])
        assert_same_choices(cached, again)
        assert cached.stats.rounds >= 1
        assert len(cached.stats.models) == len(models)
        # the cached engine feeds each prompt token once, not once per call
        assert cached.stats.tokens_fed < again.stats.tokens_fed


def test_traces_hold_every_models_view(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    out = AdaFuse(models, theta_delta=0.01, max_words=3).generate(PROMPTS[0], max_new_tokens=10)
    for r in out.trace:
        assert len(r.margins) == 2 and len(r.explored) == 2
        for p in r.proposals:
            assert len(p.nll) == 2 and p.proposers
            assert all(0 <= m < 2 for m in p.proposers)
            assert len(p.text.split()) <= 3
        best = min(p.score for p in r.proposals)
        assert r.proposals[r.winner].score == best


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_greedy_matches_transformers_generate(tiny, name):
    lm = tiny[name]
    ids = torch.tensor([lm.encode(PROMPTS[1])])
    ref = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                            do_sample=False, eos_token_id=None, pad_token_id=lm.tokenizer.pad_token_id)
    expected = lm.decode(ref[0, ids.shape[1]:].tolist())
    for mode in ("cached", "recompute"):
        out = Greedy([lm], mode=mode).generate(PROMPTS[1], max_new_tokens=20)
        if out.finish_reason != "eos":
            assert out.text == expected


def test_batched_decoding_gives_the_texts_of_one_at_a_time(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    prompts = [PROMPTS[0], PROMPTS[1], "Question: Who wrote Emma?\nAnswer:",
               "Question: What is the capital of Peru?\nAnswer:"]
    dec = AdaFuse(models, theta_delta=0.01, max_words=3)
    one = dec.generate_batch(prompts, max_new_tokens=10, stop=["\n"])
    many = dec.generate_batch(prompts, max_new_tokens=10, stop=["\n"], batch_size=3)
    for a, b in zip(one, many):
        assert_same_choices(a, b)
    for i in range(2):
        greedy = Greedy(models, model_index=i)
        assert ([o.text for o in greedy.generate_batch(prompts, max_new_tokens=10, batch_size=4)]
                == [o.text for o in greedy.generate_batch(prompts, max_new_tokens=10)])


def test_shared_prefix_is_prefilled_once_and_changes_nothing(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    prefix = PROMPTS[1][: PROMPTS[1].index("Question: Who")]
    prompts = [prefix + "Question: Who wrote Emma?\nAnswer:",
               prefix + "Question: What is the capital of Peru?\nAnswer:"]
    dec = AdaFuse(models, theta_delta=0.01)
    plain = [dec.generate(p, max_new_tokens=8, stop=["\n"]) for p in prompts]
    shared = dec.generate_batch(prompts, max_new_tokens=8, stop=["\n"], shared_prefix=prefix)
    assert [o.text for o in shared] == [o.text for o in plain]
    for o_plain, o_shared in zip(plain, shared):
        assert winners(o_plain) == winners(o_shared)
    # the second item reuses the prefix: it feeds far fewer tokens than without reuse
    assert shared[1].stats.tokens_fed < plain[1].stats.tokens_fed - 30


def test_chat_template_wraps_the_prompt_as_the_user_turn(tiny):
    import dataclasses

    base = tiny["llama"]
    tokenizer = base.tokenizer
    template = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    old, tokenizer.chat_template = getattr(tokenizer, "chat_template", None), template
    try:
        chat = dataclasses.replace(base, chat_template=True)
        formatted = chat.format_prompt(PROMPTS[0])
        assert formatted == "<|user|>\n" + PROMPTS[0] + "\n<|assistant|>\n"
        prefix = PROMPTS[1][: PROMPTS[1].index("Question: Who")]
        prompts = [prefix + "Question: Who wrote Emma?\nAnswer:", PROMPTS[1]]
        dec = AdaFuse([chat, tiny["gemma"]], theta_delta=0.01)
        plain = [dec.generate(p, max_new_tokens=6, stop=["\n"]) for p in prompts]
        shared = dec.generate_batch(prompts, max_new_tokens=6, stop=["\n"], shared_prefix=prefix,
                                    batch_size=2)
        assert [o.text for o in shared] == [o.text for o in plain]
        assert shared[0].trace and all(len(r.margins) == 2 for r in shared[0].trace)
    finally:
        tokenizer.chat_template = old
