"""The ensemble baselines (fixed_span, union_topk, rerank): their decision rules on scripted toy
models, then the real code path on tiny transformers models (cached = recompute, batch = one
at a time)."""

from __future__ import annotations

import math

import pytest

from adafuse import AdaFuse, AdaFuseError, Greedy, build_decoder, load_model
from adafuse.decoding import DECODERS, FixedSpan, Rerank, UnionTopK
from tests import tiny_hf
from tests.scripted import EOS, ScriptedLM
from tests.tiny_hf import assert_same_choices

WORDS = ["Q:", " w1", " w2", " w3", " w4", " w5", " x", " y", " z", "\n", ".", "\n\n"]


def low_margin_chain(n_words=5, margin=0.02):
    """Writes ' w1 w2 ...' with a tiny top-1 margin at every step (AdaFuse would explore)."""

    def script(text):
        j = text.count(" w")
        if j >= n_words:
            return {EOS: 1.0}
        p1 = (1 + margin) / 2
        return {f" w{j + 1}": p1, " x": 1 - p1}

    return ScriptedLM("chain", WORDS, script)


def winner(r):
    return r.proposals[r.winner]


# --- fixed_span -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_fixed_span_proposes_exactly_k_words_with_no_exploration(k):
    lm = low_margin_chain()
    out = FixedSpan([lm], span_words=k).generate("Q:", max_new_tokens=40)
    assert out.text == " w1 w2 w3 w4 w5"
    for r in out.trace:
        assert r.explored == [False]
        assert len(r.proposals) == 1 and r.proposals[0].kind == "greedy"
        p = r.proposals[0]
        if p.terminal is None:
            assert len(p.text.split()) == k
    # the same model under AdaFuse's default θ explores: B one-word proposals
    adaptive = AdaFuse([lm], theta_delta=0.7).generate("Q:", max_new_tokens=40)
    assert all(r.explored == [True] and len(r.proposals) > 1 for r in adaptive.trace)


@pytest.mark.parametrize("k", [1, 3])
def test_fixed_span_is_adafuse_with_theta_0_one_candidate_and_max_words_k(k):
    a = low_margin_chain()
    b = ScriptedLM("b", WORDS, lambda t: {" x": 0.45, " w1": 0.3, " y": 0.25}
                   if t.count(" ") < 5 else {EOS: 1.0})
    fixed = FixedSpan([a, b], span_words=k).generate("Q:", max_new_tokens=20, stop=["\n"])
    same = AdaFuse([a, b], theta_delta=0.0, num_candidates=1, max_words=k).generate(
        "Q:", max_new_tokens=20, stop=["\n"])
    assert fixed.text == same.text
    assert [r.to_dict() for r in fixed.trace] == [r.to_dict() for r in same.trace]
    first = fixed.trace[0]
    assert [p.text for p in first.proposals] == [" w1 w2 w3"[: 3 * k], " x x x"[: 2 * k]]


# --- union_topk -------------------------------------------------------------------------------


def two_voters(a_dist, b_dist, b_vocab=None):
    vocab = ["Q:", " x", " y", " z", " ", "y"]
    a = ScriptedLM("a", vocab, lambda t: a_dist if t == "Q:" else {EOS: 1.0})
    b = ScriptedLM("b", b_vocab or vocab, lambda t: b_dist if t == "Q:" else {EOS: 1.0})
    return a, b


def test_union_topk_picks_a_piece_no_single_model_ranks_first():
    a, b = two_voters({" x": 0.5, " y": 0.4, " z": 0.1}, {" z": 0.5, " y": 0.4, " x": 0.1})
    out = UnionTopK([a, b], top_k=2).generate("Q:", max_new_tokens=1)
    r = out.trace[0]
    assert [(p.text, p.proposers) for p in r.proposals] == [(" x", [0]), (" y", [0, 1]), (" z", [1])]
    by_text = {p.text: p for p in r.proposals}
    assert by_text[" y"].nll == pytest.approx([-math.log(0.4)] * 2, rel=1e-4)
    assert by_text[" x"].score == pytest.approx((-math.log(0.5) - math.log(0.1)) / 2, rel=1e-4)
    assert out.text == " y"
    # with k = 1 " y" is nobody's piece: the tie between " x" and " z" goes to the first
    out = UnionTopK([a, b], top_k=1).generate("Q:", max_new_tokens=1)
    assert [p.text for p in out.trace[0].proposals] == [" x", " z"] and out.text == " x"


def test_union_topk_piece_split_by_another_tokenizer_is_scored_over_its_tokens():
    # model b has no " y" token: it writes the piece as " " + "y", and scores both tokens
    table = {"Q:": {" ": 0.8, " x": 0.2}, "Q: ": {"y": 0.5, "x": 0.5}}
    vocab_b = ["Q:", " x", " ", "y", "x"]
    a = ScriptedLM("a", ["Q:", " x", " y", " "], lambda t: {" y": 0.6, " x": 0.4} if t == "Q:" else {EOS: 1.0})
    b = ScriptedLM("b", vocab_b, lambda t: table.get(t, {EOS: 1.0}))
    out = UnionTopK([a, b], top_k=2).generate("Q:", max_new_tokens=1)
    by_text = {p.text: p for p in out.trace[0].proposals}
    assert set(by_text) == {" y", " x", " "}
    # mean NLL over b's two tokens of " y": (-log 0.8 - log 0.5) / 2
    assert by_text[" y"].nll[1] == pytest.approx((-math.log(0.8) - math.log(0.5)) / 2, rel=1e-4)
    assert by_text[" y"].nll[0] == pytest.approx(-math.log(0.6), rel=1e-4)
    # " " is no token of model a: it gets no mass there and loses
    assert by_text[" "].nll[0] > 100
    assert out.text == " y"


def test_union_topk_decodes_token_by_token_and_stops_on_a_stop_piece():
    table = {"Q:": {" x": 0.9, " y": 0.1}, "Q: x": {" y": 0.7, "\n": 0.3}, "Q: x y": {"\n": 0.9, " z": 0.1}}
    lm = ScriptedLM("m", WORDS, lambda t: table.get(t, {EOS: 1.0}))
    out = UnionTopK([lm, lm], top_k=2).generate("Q:", max_new_tokens=10, stop=["\n"])
    assert out.text == " x y" and out.finish_reason == "stop"
    assert [winner(r).text for r in out.trace] == [" x", " y", "\n"]
    assert [(p.text, p.terminal) for p in out.trace[2].proposals] == [("\n", "stop"), (" z", None)]
    assert all(r.explored == [False, False] and len(r.margins[0]) == 1 for r in out.trace)
    assert out.stats.rounds == 3


def test_union_topk_eos_piece_can_win():
    vocab = ["Q:", " yes", " no"]
    a = ScriptedLM("a", vocab, lambda t: {EOS: 0.6, " yes": 0.4} if t == "Q:" else {EOS: 1.0})
    b = ScriptedLM("b", vocab, lambda t: {EOS: 0.5, " no": 0.5} if t == "Q:" else {EOS: 1.0})
    out = UnionTopK([a, b], top_k=2).generate("Q:", max_new_tokens=5)
    r = out.trace[0]
    assert (winner(r).text, winner(r).terminal) == ("", "eos")
    assert winner(r).proposers == [0, 1]
    assert out.text == "" and out.finish_reason == "eos"


def test_union_topk_budget_counts_rounds_and_tokens():
    lm = low_margin_chain()
    out = UnionTopK([lm, lm], top_k=3).generate("Q:", max_new_tokens=4)
    assert out.text == " w1 w2 w3 w4" and out.finish_reason == "length"


def test_union_topk_pieces_that_are_incomplete_characters_are_dropped():
    # "\ufffd" stands for what a byte-fallback token of a partial UTF-8 sequence decodes to
    vocab = ["Q:", " x", "\ufffd"]
    lm = ScriptedLM("m", vocab, lambda t: {"\ufffd": 0.7, " x": 0.3} if t == "Q:" else {EOS: 1.0})
    out = UnionTopK([lm], top_k=2).generate("Q:", max_new_tokens=1)
    assert [p.text for p in out.trace[0].proposals] == [" x"] and out.text == " x"
    only = ScriptedLM("m", vocab, lambda t: {"\ufffd": 1.0})
    out = UnionTopK([only], top_k=1).generate("Q:", max_new_tokens=5)
    assert out.text == "" and out.finish_reason == "length"


# --- rerank -----------------------------------------------------------------------------------


def answering(name, answer_words, likes):
    """Writes `answer_words`, then "\n", then EOS; `likes[response so far]`, where given, is
    the distribution instead."""

    def script(text):
        rest = text[len("Q:"):]
        if rest in likes:
            return likes[rest]
        if rest.endswith("\n"):
            return {EOS: 1.0}
        said = rest.split()
        if len(said) < len(answer_words):
            return {" " + answer_words[len(said)]: 1.0}
        return {"\n": 1.0}

    return ScriptedLM(name, WORDS, script)


def test_rerank_picks_the_answer_with_the_lowest_ensemble_mean_nll():
    # a answers " x", b answers " y z"; a prefers its own, b much prefers its own
    a = answering("a", ["x"], {"": {" x": 0.7, " y": 0.3}, " y": {" z": 0.9, "\n": 0.1}})
    b = answering("b", ["y", "z"], {"": {" y": 0.6, " x": 0.1, " z": 0.3}, " x": {"\n": 1.0}})
    out = Rerank([a, b]).generate("Q:", max_new_tokens=10, stop=["\n"])
    (r,) = out.trace
    assert [(p.text, p.terminal, p.proposers, p.kind) for p in r.proposals] == [
        (" x\n", "stop", [0], "answer"), (" y z\n", "stop", [1], "answer")]
    x, yz = r.proposals
    # mean NLL of the answer and its stop string, given the prompt
    assert x.nll == pytest.approx([-math.log(0.7) / 2, -math.log(0.1) / 2], rel=1e-4)
    assert yz.nll == pytest.approx([(-math.log(0.3) - math.log(0.9)) / 3, -math.log(0.6) / 3], rel=1e-4)
    assert r.winner == 1 and out.text == " y z" and out.finish_reason == "stop"
    assert out.stats.rounds == 1 and out.stats.words == 2
    # with b's weight at 0, a's own view decides
    assert Rerank([a, b], weights=[1, 0]).generate("Q:", max_new_tokens=10, stop=["\n"]).text == " x"


def test_rerank_merges_identical_answers_and_counts_both_decodes():
    lm = answering("a", ["x", "y"], {})
    dec = Rerank([lm, lm])
    out = dec.generate("Q:", max_new_tokens=10, stop=["\n"])
    (r,) = out.trace
    assert [(p.text, p.proposers) for p in r.proposals] == [(" x y\n", [0, 1])]
    assert out.text == " x y"
    greedy = Greedy([lm]).generate("Q:", max_new_tokens=10, stop=["\n"])
    # two greedy decodes plus one scoring forward per model
    assert out.stats.models[0].forwards == greedy.stats.forwards + 1
    assert out.stats.forwards == 2 * (greedy.stats.forwards + 1)
    assert [t.forwards for t in dec.last_totals] == [m.forwards for m in out.stats.models]


def test_rerank_answers_follow_the_greedy_budget_and_eos():
    vocab = ["Q:", " yes", " no"]
    a = ScriptedLM("a", vocab, lambda t: {" yes": 0.9, " no": 0.1} if t == "Q:" else {EOS: 0.9, " no": 0.1})
    b = ScriptedLM("b", vocab, lambda t: {" no": 0.9, " yes": 0.05, EOS: 0.05})
    out = Rerank([a, b]).generate("Q:", max_new_tokens=3)
    (r,) = out.trace
    assert [(p.text, p.terminal) for p in r.proposals] == [(" yes", "eos"), (" no no no", None)]
    yes, no = r.proposals
    # each model scores its own EOS after " yes"; the budget-cut answer has no end to score
    assert yes.nll == pytest.approx([-math.log(0.9), -math.log(0.05)], rel=1e-4)
    assert no.nll == pytest.approx([-math.log(0.1), -math.log(0.9)], rel=1e-4)
    assert (out.text, out.finish_reason) == (" no no no", "length")


# --- shared: parameters, registry -----------------------------------------------------------


@pytest.mark.parametrize("cls,kwargs,needle", [
    (FixedSpan, {"span_words": 0}, "span_words=0"),
    (FixedSpan, {"span_words": 2.5}, "span_words=2.5"),
    (UnionTopK, {"top_k": 0}, "top_k=0"),
    (UnionTopK, {"top_k": -3}, "top_k=-3"),
    (Rerank, {"weights": [1.0]}, "weights"),
    (Rerank, {"mode": "turbo"}, "turbo"),
])
def test_bad_parameters_are_one_line_errors(cls, kwargs, needle):
    lm = ScriptedLM("m", ["Q:"], lambda t: {EOS: 1.0})
    with pytest.raises(AdaFuseError) as err:
        cls([lm, lm], **kwargs)
    message = str(err.value)
    assert needle in message and "\n" not in message
    if "top_k" in needle:
        assert "must be an integer in [1, 1000]" in message
    if "span_words" in needle:
        assert "must be an integer in [1, 64]" in message


def test_build_decoder_knows_every_baseline():
    lm = ScriptedLM("m", ["Q:"], lambda t: {EOS: 1.0})
    assert set(DECODERS) == {"adafuse", "greedy", "fixed_span", "union_topk", "rerank"}
    assert isinstance(build_decoder({"name": "union_topk", "top_k": 4}, [lm, lm]), UnionTopK)
    assert build_decoder({"name": "fixed_span", "span_words": 2}, [lm]).max_words == 2
    with pytest.raises(AdaFuseError, match="allowed: adafuse, fixed_span, greedy, rerank, union_topk"):
        build_decoder({"name": "unite"}, [lm])
    with pytest.raises(AdaFuseError, match="top_k=0"):
        build_decoder({"name": "union_topk", "top_k": 0}, [lm])


# --- tiny real models: cached = recompute, batch = one at a time --------------------------------

PROMPTS = [*tiny_hf.PROMPTS, "Question: Who wrote Emma?\nAnswer:"]

BASELINES = [("fixed_span", {"span_words": 1}), ("fixed_span", {"span_words": 3}),
             ("union_topk", {"top_k": 4}), ("rerank", {})]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return [load_model(str(tiny_hf.build("llama", root / "llama", seed=0)), device="cpu"),
            load_model(str(tiny_hf.build("gemma", root / "gemma", seed=0)), device="cpu")]


@pytest.mark.parametrize("name,kwargs", BASELINES)
def test_cached_chooses_what_recompute_chooses(tiny, name, kwargs):
    for prompt in PROMPTS[:2]:
        cached = build_decoder({"name": name, "mode": "cached", **kwargs}, tiny).generate(
            prompt, max_new_tokens=10, stop=["\n"])
        again = build_decoder({"name": name, "mode": "recompute", **kwargs}, tiny).generate(
            prompt, max_new_tokens=10, stop=["\n"])
        assert_same_choices(cached, again)
        assert cached.stats.rounds >= 1 and len(cached.stats.models) == 2
        assert all(m.forwards > 0 for m in cached.stats.models)
        # the cached engine feeds each prompt token once, not once per call
        assert cached.stats.tokens_fed < again.stats.tokens_fed


@pytest.mark.parametrize("name,kwargs", BASELINES)
def test_batched_decoding_gives_the_outputs_of_one_at_a_time(tiny, name, kwargs):
    dec = build_decoder({"name": name, **kwargs}, tiny)
    one = dec.generate_batch(PROMPTS, max_new_tokens=8, stop=["\n"])
    one_totals = [t.forwards for t in dec.last_totals]
    # one prompt at a time, the real forwards are the items' forwards added up (in a batch a
    # forward counts once for each item it serves, and once in the totals)
    assert one_totals == [sum(o.stats.models[m].forwards for o in one) for m in range(2)]
    many = dec.generate_batch(PROMPTS, max_new_tokens=8, stop=["\n"], batch_size=3)
    for a, b in zip(one, many):
        assert_same_choices(a, b)
    assert sum(t.forwards for t in dec.last_totals) < sum(one_totals)


def test_rerank_candidates_are_the_greedy_answers(tiny):
    out = Rerank(tiny).generate(PROMPTS[1], max_new_tokens=10, stop=["\n"])
    greedy = [Greedy(tiny, model_index=m).generate(PROMPTS[1], max_new_tokens=10, stop=["\n"])
              for m in range(2)]
    (r,) = out.trace
    texts = {g.text for g in greedy}
    assert {p.text.removesuffix("\n") for p in r.proposals} == texts
    assert out.text in texts
    assert r.proposals[r.winner].score == min(p.score for p in r.proposals)
    # both decodes and a scoring forward per model are counted
    for m in range(2):
        assert out.stats.models[m].forwards == greedy[m].stats.forwards + 1
