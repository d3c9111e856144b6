"""The real code path end to end on tiny random-init transformers models (two tokenizer
families, a Gemma-3 sliding window of 8 tokens): cached decoding must choose exactly what
recompute does, and rollback must restore the cache a fresh encode would give."""

from __future__ import annotations

import pytest
import tiny_hf
from tiny_hf import assert_same_choices
import torch

from adafuse import AdaFuse, Greedy, load_model
from adafuse.decoding.backend import CachedEngine, RecomputeEngine
from adafuse.decoding.output import ModelCost
from adafuse.decoding.text import longest_common_prefix

PROMPTS = tiny_hf.PROMPTS


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {
        "llama": load_model(str(tiny_hf.build("llama", root / "llama", seed=0)), device="cpu"),
        "gemma": load_model(str(tiny_hf.build("gemma", root / "gemma", seed=0)), device="cpu"),
        "llama2": load_model(str(tiny_hf.build("llama", root / "llama2", seed=1)), device="cpu"),
    }


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


@pytest.mark.parametrize("names", [("llama", "gemma"), ("gemma", "llama", "llama2")])
def test_later_models_score_earlier_proposals_in_their_first_branch_forward(tiny, names, monkeypatch):
    """Model m scores the proposals of models < m with its first branch step: the last model
    runs no scoring forward of its own, and the choices are still recompute's."""
    from adafuse.decoding import backend

    calls = {"score": [], "fused": []}
    rows_scored_after = {}
    score, fused = backend.CachedEngine.score, backend._CachedRows._first_with_scoring

    def counted_score(engine, requests):
        calls["score"].append(engine.lm)
        n = sum(len(rows) for rows, _ in requests.values())
        rows_scored_after[id(engine.lm)] = rows_scored_after.get(id(engine.lm), 0) + n
        return score(engine, requests)

    def counted_fused(rows, live, tokens):
        calls["fused"].append(rows.engine.lm)
        return fused(rows, live, tokens)

    monkeypatch.setattr(backend.CachedEngine, "score", counted_score)
    monkeypatch.setattr(backend._CachedRows, "_first_with_scoring", counted_fused)
    monkeypatch.setattr(backend, "SPLIT_WASTE", 10**9)  # never split a forward by width here
    models = [tiny[n] for n in names]
    kwargs = {"theta_delta": 0.5, "max_words": 2, "num_candidates": 3}
    cached = AdaFuse(models, **kwargs).generate(PROMPTS[1], max_new_tokens=12)
    assert_same_choices(cached, AdaFuse(models, mode="recompute", **kwargs).generate(
        PROMPTS[1], max_new_tokens=12))
    rounds = cached.stats.rounds
    first, last = models[0], models[-1]
    assert calls["fused"].count(first) == 0  # nothing was proposed before the first model
    assert calls["fused"].count(last) >= 1
    assert calls["score"].count(first) == rounds
    # what the last model still scores afterwards is only its own proposals, where their
    # re-tokenisation differs from the tokens it generated (random-init models do that)
    own_only = sum(1 for r in cached.trace for p in r.proposals if p.proposers == [len(models) - 1])
    assert rows_scored_after.get(id(last), 0) <= own_only
    if len(models) == 2:
        assert rows_scored_after.get(id(last), 0) < rounds


def test_forwards_split_by_width_make_the_same_choices(tiny, monkeypatch):
    """On CPU a forward that would pad much is split into short and long rows (and the last
    model's first step is not folded with its scoring); the choices stay recompute's."""
    from adafuse.decoding import backend

    feeds = []
    feed = backend.CachedEngine._feed

    def counted_feed(engine, flat, kind="score"):
        feeds.append((kind, sorted(len(row) - p0 for _, row, _, p0 in flat)))
        return feed(engine, flat, kind)

    monkeypatch.setattr(backend.CachedEngine, "_feed", counted_feed)
    monkeypatch.setattr(backend, "SPLIT_WASTE", 0)  # split wherever any padding is saved
    models = [tiny["llama"], tiny["gemma"]]
    kwargs = {"theta_delta": 0.5, "max_words": 2, "num_candidates": 3}
    outs = AdaFuse(models, **kwargs).generate_batch(PROMPTS[:2], max_new_tokens=12, batch_size=2)
    for prompt, out in zip(PROMPTS[:2], outs):
        assert_same_choices(out, AdaFuse(models, mode="recompute", **kwargs).generate(prompt, max_new_tokens=12))
    assert all(kind == "score" for kind, _ in feeds)  # every first step ran on its own
    # some score forwards held only rows of one width, the shorter ones of a split request
    assert any(len(set(w)) == 1 and w[0] < max(v[-1] for _, v in feeds) for _, w in feeds)


def test_width_groups():
    from adafuse.decoding.backend import width_groups

    assert width_groups([1, 1, 1, 8, 8], "cuda") == [[0, 1, 2, 3, 4]]
    assert width_groups([3, 3, 3], "cpu") == [[0, 1, 2]]  # nothing to save
    assert width_groups([1] * 24 + [8] * 24, "cpu") == [list(range(24)), list(range(24, 48))]
    assert width_groups([8, 1, 8, 1], "cpu") == [[0, 1, 2, 3]]  # saves 14 positions: not worth a forward
    assert width_groups([8, 1] * 10, "cpu") == [list(range(1, 20, 2)), list(range(0, 20, 2))]


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


def _recompute_logits(lm, ids):
    engine = RecomputeEngine(lm)
    engine.add(0, ids, ModelCost(lm.name))
    return engine.context_logits(0)


def _cached(lm, ids):
    engine = CachedEngine(lm)
    engine.add(0, ids, ModelCost(lm.name))
    return engine


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_rollback_restores_the_cache_of_a_fresh_encode(tiny, name):
    lm = tiny[name]
    base = lm.encode(PROMPTS[1])  # ~3-4x Gemma's window of 8
    engine = _cached(lm, base)
    # speculative branches and a scoring pass must not leak into the committed cache
    rows = engine.open_rows([0, 0])
    rows.extend([0, 1], [5, 6])
    rows.extend([0, 1], [7, 8])
    engine.score({0: ([base + [9, 10], base + [11]], [len(base), len(base)])})
    # commit a context whose last 5 tokens differ: roll back 5, feed 3
    new = base[:-5] + [12, 13, 14]
    engine.commit({0: new})
    assert engine.ids[0] == new
    assert torch.allclose(engine.context_logits(0), _recompute_logits(lm, new), atol=1e-4)
    # and a winner adopted from the scoring rows
    winner = new + [21, 22]
    engine.score({0: ([new + [20], winner], [len(new), len(new)])})
    engine.commit({0: winner})
    assert torch.allclose(engine.context_logits(0), _recompute_logits(lm, winner), atol=1e-4)


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_rollback_when_retokenisation_merges_across_the_boundary(tiny, name):
    """Find a real text split where encode(a + b) does not extend encode(a), then commit it."""
    lm = tiny[name]
    text = PROMPTS[1]
    split = None
    for k in range(40, len(text)):
        a, full = lm.encode(text[:k]), lm.encode(text)
        if longest_common_prefix(a, full) < len(a):
            split = k
            break
    assert split is not None, "no boundary merge found in the prompt"
    a, full = lm.encode(text[:split]), lm.encode(text[: split + 12])
    engine = _cached(lm, a)
    engine.commit({0: full})
    assert torch.allclose(engine.context_logits(0), _recompute_logits(lm, full), atol=1e-4)


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_prompts_of_different_lengths_share_a_batch(tiny, name):
    """Left-padded rows of several prompts give each prompt's own logits."""
    lm = tiny[name]
    contexts = [lm.encode(PROMPTS[1]), lm.encode(PROMPTS[0]), lm.encode(PROMPTS[1][:50])]
    engine = CachedEngine(lm)
    for k, ids in enumerate(contexts):
        engine.add(k, ids, ModelCost(lm.name))
    rows = engine.open_rows([0, 1, 1, 2])
    logits = rows.extend([0, 1, 2, 3], [5, 6, 7, 8])
    for j, (k, t) in enumerate([(0, 5), (1, 6), (1, 7), (2, 8)]):
        assert torch.allclose(logits[j], _recompute_logits(lm, contexts[k] + [t]), atol=1e-4)
    logits = rows.extend([1, 3], [9, 10])
    assert torch.allclose(logits[1], _recompute_logits(lm, contexts[2] + [8, 10]), atol=1e-4)
    nlls = engine.score({0: ([contexts[0] + [3, 4]], [len(contexts[0])]),
                         2: ([contexts[2] + [5], contexts[2][:-2] + [6, 7, 8]],
                             [len(contexts[2]), len(contexts[2]) - 2])})
    ref = RecomputeEngine(lm)
    for k in (0, 2):
        ref.add(k, contexts[k], ModelCost(lm.name))
    expected = ref.score({0: ([contexts[0] + [3, 4]], [len(contexts[0])]),
                          2: ([contexts[2] + [5], contexts[2][:-2] + [6, 7, 8]],
                              [len(contexts[2]), len(contexts[2]) - 2])})
    for k in (0, 2):
        assert nlls[k] == pytest.approx(expected[k], abs=1e-4)
    engine.commit({2: contexts[2][:-2] + [6, 7, 8]})
    assert torch.allclose(engine.context_logits(2),
                          _recompute_logits(lm, contexts[2][:-2] + [6, 7, 8]), atol=1e-4)


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
