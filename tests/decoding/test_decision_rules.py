"""The decision rules of a round, on scripted toy models whose distributions the test sets."""

from __future__ import annotations

import math

import pytest
import torch

from adafuse import AdaFuse, AdaFuseError, Greedy
from adafuse.decoding.decide import pick_winner
from adafuse.decoding.engine import CachedEngine, RecomputeEngine
from adafuse.decoding.output import ModelCost, Proposal
from adafuse.decoding.pool import pool_proposals
from adafuse.decoding.engine.readout import read_dists
from adafuse.decoding.proposals import propose
from adafuse.decoding.text import complete_word_ends, find_stop
from tests.scripted import EOS, ScriptedLM

WORDS = ["Q:", " w1", " w2", " w3", " w4", " w5", " x", " y", " z", "\n", ".", "\n\n"]


def proposals_of(lm, prompt="Q:", engine=CachedEngine, **kw):
    kw = {"theta": 0.5, "max_words": 3, "num_candidates": 3, "stop": (), **kw}
    eng = engine(lm)
    eng.add("p", lm.encode(prompt), ModelCost(lm.name))
    proposed = propose(eng, ["p"], 0, {"p": ""}, **kw).by_key["p"]
    return proposed.proposals, proposed.margins, proposed.explored


def chain(margins_by_word):
    """A model that writes ' w1 w2 w3 ...' with top-1 margin margins_by_word[j] at word j+1."""

    def script(text):
        j = text.count(" w")
        if j >= len(margins_by_word):
            return {EOS: 1.0}
        m = margins_by_word[j]
        p1 = (1 + m) / 2  # p1 - p2 = m with two tokens
        return {f" w{j + 1}": p1, " x": 1 - p1}

    return ScriptedLM("chain", WORDS, script)


def test_margin_is_top1_minus_top2_after_softmax():
    logits = torch.log(torch.tensor([[0.6, 0.25, 0.15]]))
    (dist,), _ = read_dists(logits, 3)
    assert dist.margin == pytest.approx(0.35)
    assert list(dist.ids) == [0, 1, 2]
    assert dist.probs() == pytest.approx([0.6, 0.25, 0.15])


@pytest.mark.parametrize(
    "margins,theta,max_words,expected",
    [
        # Δ1 < θ: exploring, each proposal one word
        ([0.2, 0.9, 0.9, 0.9], 0.5, 3, " w1"),
        # Δ1 ≥ θ, Δ2 < θ: two words (a confident first word earns its second)
        ([0.9, 0.2, 0.9, 0.9], 0.5, 3, " w1 w2"),
        # Δ1, Δ2 ≥ θ: three words, capped by max_words
        ([0.9, 0.9, 0.9, 0.9], 0.5, 3, " w1 w2 w3"),
        ([0.9, 0.9, 0.2, 0.9], 0.5, 4, " w1 w2 w3"),
        ([0.9, 0.9, 0.9, 0.9, 0.9], 0.5, 4, " w1 w2 w3 w4"),
        ([0.9, 0.9, 0.9], 0.5, 1, " w1"),
        ([0.9, 0.2, 0.9], 0.5, 2, " w1 w2"),
        ([0.9, 0.9, 0.9], 0.5, 2, " w1 w2"),
        # θ just above / below the margins
        ([0.6, 0.6, 0.6, 0.6], 0.61, 3, " w1"),
        ([0.6, 0.6, 0.6, 0.6], 0.59, 3, " w1 w2 w3"),
        # θ = 0: always confident, longest spans; θ = 1: always one word
        ([0.02, 0.02, 0.02, 0.02], 0.0, 4, " w1 w2 w3 w4"),
        ([1.0, 1.0, 1.0, 1.0], 1.0, 4, " w1"),
    ],
)
@pytest.mark.parametrize("engine", [CachedEngine, RecomputeEngine])
def test_word_count_rule(margins, theta, max_words, expected, engine):
    proposals, read, explored = proposals_of(chain(margins), engine=engine, theta=theta,
                                             max_words=max_words)
    assert proposals[0].text == expected
    assert explored == (not (theta < 1 and margins[0] >= theta))
    assert read[0] == pytest.approx(margins[0])
    if not explored:
        n = len(expected.split())
        # Δ1..Δn were read when the span stopped short of max_words (Δn < θ stopped it);
        # a full span needs no margin past Δ(max_words - 1)
        assert len(read) == (n if n < max_words else max(1, max_words - 1))


def test_exploration_gives_b_one_word_proposals_by_probability():
    def script(text):
        if text == "Q:":
            return {" x": 0.4, " y": 0.35, " z": 0.25}
        return {" w1": 1.0}  # confident afterwards: exploration still stops at one word

    lm = ScriptedLM("m", WORDS, script)
    for b in (1, 2, 3):
        proposals, _, explored = proposals_of(lm, num_candidates=b, theta=0.9)
        assert explored
        assert [p.text for p in proposals] == [" x", " y", " z"][:b]
        assert all(p.kind == "explore" for p in proposals)
        assert [p.first_token_prob for p in proposals] == pytest.approx([0.4, 0.35, 0.25][:b])


def test_word_continues_over_several_tokens_and_keeps_newlines():
    vocab = ["Q:", "\n", "Ste", "p", " 2", ":", " x", " y"]

    def script(text):
        table = {"Q:": {"\n": 0.55, " x": 0.45}, "Q:\n": {"Ste": 1.0}, "Q:\nSte": {"p": 1.0},
                 "Q:\nStep": {" 2": 1.0}, "Q:\nStep 2": {":": 1.0}, "Q:\nStep 2:": {" x": 1.0}}
        return table.get(text, {" y": 1.0})

    lm = ScriptedLM("m", vocab, script)
    proposals, _, _ = proposals_of(lm, theta=0.9, num_candidates=2)
    assert [p.text for p in proposals] == ["\nStep", " x"]


def test_pool_merges_identical_text_and_keeps_first_appearance_order():
    a = [Proposal(" x", None, [0], "explore"), Proposal(" y", None, [0], "explore")]
    b = [Proposal(" y", None, [1], "greedy"), Proposal(" x", "stop", [1], "explore")]
    pool = pool_proposals([a, b])
    assert [(p.text, p.terminal, p.proposers) for p in pool] == [
        (" x", None, [0]), (" y", None, [0, 1]), (" x", "stop", [1])]
    for p, s in zip(pool, [1.0, 0.5, 0.5]):
        p.score = s
    assert pick_winner(pool) == 1  # tie between " y" and " x"[stop]: the earlier one


def test_stop_string_makes_a_terminal_proposal_and_is_cut():
    vocab = ["Q:", " Paris", ".", "\n", " is"]

    def script(text):
        if text.endswith("Q:"):
            return {" Paris": 1.0}
        if text.endswith("Paris"):
            return {".": 1.0}
        if text.endswith("."):
            return {"\n": 1.0}
        return {" is": 1.0}

    lm = ScriptedLM("m", vocab, script)
    proposals, _, _ = proposals_of(lm, theta=0.5, stop=["\n"])
    assert [(p.text, p.terminal) for p in proposals] == [(" Paris.\n", "stop")]
    out = AdaFuse([lm, lm], theta_delta=0.5).generate("Q:", max_new_tokens=10, stop=["\n"])
    assert out.text == " Paris."
    assert out.finish_reason == "stop"
    assert out.stats.rounds == 1  # "Paris.\n" under stop "\n" is one round, not two


def test_stop_string_spanning_the_committed_text_is_found():
    assert find_stop("abc\nQuest", 4, ["\nQuestion:"]) is None
    assert find_stop("abc\nQuestion:", 5, ["\nQuestion:"]) == (3, 13)
    assert find_stop("a\nb\n", 2, ["\n"]) == (3, 4)  # the old one is ignored


def test_eos_proposal_can_win():
    vocab = ["Q:", " yes", " no"]

    def a(text):
        return {EOS: 0.5, " yes": 0.5} if text == "Q:" else {EOS: 1.0}

    def b(text):
        return {EOS: 0.6, " no": 0.4} if text == "Q:" else {EOS: 1.0}

    out = AdaFuse([ScriptedLM("a", vocab, a), ScriptedLM("b", vocab, b)], theta_delta=0.9,
                  num_candidates=2).generate("Q:", max_new_tokens=10)
    first = out.trace[0]
    win = first.proposals[first.winner]
    assert (win.text, win.terminal) == ("", "eos")
    assert out.text == "" and out.finish_reason == "eos"


def test_ensemble_score_is_mean_nll_and_every_model_scores_every_proposal():
    vocab = ["Q:", " x", " y"]

    def a(text):
        return {" x": 0.7, " y": 0.3} if text == "Q:" else {EOS: 1.0}

    def b(text):
        return {" x": 0.2, " y": 0.8} if text == "Q:" else {EOS: 1.0}

    out = AdaFuse([ScriptedLM("a", vocab, a), ScriptedLM("b", vocab, b)], theta_delta=0.0,
                  max_words=1).generate("Q:", max_new_tokens=1)
    r = out.trace[0]
    by_text = {p.text: p for p in r.proposals}
    assert set(by_text) == {" x", " y"}
    # the word is followed by EOS, so both proposals are EOS-terminal: mean over 2 tokens
    assert all(p.terminal == "eos" for p in r.proposals)
    assert by_text[" x"].proposers == [0] and by_text[" y"].proposers == [1]
    assert by_text[" x"].nll == pytest.approx([-math.log(0.7) / 2, -math.log(0.2) / 2], rel=1e-4)
    assert by_text[" y"].score == pytest.approx((-math.log(0.3) - math.log(0.8)) / 4, rel=1e-4)
    assert out.text == " y"


def test_weights_change_the_vote():
    vocab = ["Q:", " x", " y"]
    a = ScriptedLM("a", vocab, lambda t: {" x": 0.7, " y": 0.3} if t == "Q:" else {EOS: 1.0})
    b = ScriptedLM("b", vocab, lambda t: {" x": 0.2, " y": 0.8} if t == "Q:" else {EOS: 1.0})
    out = AdaFuse([a, b], theta_delta=0.0, max_words=1, weights=[10, 1]).generate(
        "Q:", max_new_tokens=1)
    assert out.text == " x"


def test_boundary_merge_is_scored_from_the_earlier_position():
    # ".\n" is one token: after committing " a.", proposal "\nb" re-tokenises the "." with it
    vocab = ["Q:", " a", ".", "\n", ".\n", "b", " c"]
    table = {"Q:": {" a": 1.0}, "Q: a": {".": 1.0}, "Q: a.": {"\n": 0.6, " c": 0.4},
             "Q: a.\n": {"b": 1.0}}
    lm = ScriptedLM("m", vocab, lambda text: table.get(text, {EOS: 1.0}))
    out = AdaFuse([lm], theta_delta=0.9, num_candidates=2, max_words=1).generate(
        "Q:", max_new_tokens=8)
    assert out.trace[0].proposals[0].text == " a."
    second = out.trace[1]
    assert second.boundary_merge == [0]
    assert out.stats.boundary_merges == 1
    by_text = {p.text: p for p in second.proposals}
    # "\nb" is scored from ".\n" on, after "Q: a", where the model gives ".\n" no mass
    assert by_text["\nb"].nll[0] > 100
    assert by_text[" c"].nll[0] == pytest.approx(-math.log(0.4) / 2, rel=1e-4)  # " c", EOS
    assert out.text == " a. c"


def test_model_that_never_emits_whitespace_terminates():
    lm = ScriptedLM("m", ["Q:", "a"], lambda text: {"a": 1.0})
    out = AdaFuse([lm], theta_delta=0.5, max_words=3).generate("Q:", max_new_tokens=40)
    assert out.finish_reason == "length"
    assert out.stats.new_tokens >= 40
    # each round proposes a partial word capped at 16 tokens
    assert all(len(r.proposals[r.winner].text) == 16 for r in out.trace)


def test_model_that_emits_only_whitespace_terminates():
    lm = ScriptedLM("m", ["Q:", " "], lambda text: {" ": 1.0})
    out = AdaFuse([lm], theta_delta=0.5).generate("Q:", max_new_tokens=20)
    assert out.stats.rounds <= 20 and out.finish_reason == "length"


def test_complete_word_ends_uses_str_isspace():
    assert complete_word_ends(" Paris is") == [6]
    assert complete_word_ends("a\u00a0b\u2003c ") == [1, 3, 5]
    assert complete_word_ends("\n\nStep") == []


def test_greedy_shares_the_interface_and_stops():
    vocab = ["Q:", " a", " b", "\n"]
    lm = ScriptedLM("m", vocab, lambda t: {" a": 0.6, " b": 0.4} if t.count(" a") < 2 else {"\n": 1.0})
    out = Greedy([lm]).generate("Q:", max_new_tokens=10, stop=["\n"])
    assert out.text == " a a" and out.finish_reason == "stop"
    out = Greedy([lm]).generate("Q:", max_new_tokens=1, stop=["\n"])
    assert out.text == " a" and out.finish_reason == "length"


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"theta_delta": 1.5}, "theta_delta=1.5"),
        ({"theta_delta": -0.1}, "theta_delta=-0.1"),
        ({"max_words": 0}, "max_words=0"),
        ({"num_candidates": 0}, "num_candidates=0"),
        ({"weights": [1.0]}, "weights"),
        ({"mode": "turbo"}, "turbo"),
    ],
)
def test_bad_parameters_are_one_line_errors(kwargs, needle):
    lm = ScriptedLM("m", ["Q:"], lambda t: {EOS: 1.0})
    with pytest.raises(AdaFuseError) as err:
        AdaFuse([lm, lm], **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_zero_models_is_an_error():
    with pytest.raises(AdaFuseError, match="at least one model"):
        AdaFuse([])


def test_several_prompts_advance_together_and_match_one_at_a_time():
    """batch_size > 1: the same outputs as one prompt at a time, in fewer forwards."""
    lm = chain([0.9, 0.2, 0.9, 0.9, 0.1])
    other = ScriptedLM("b", WORDS, lambda t: {" w1": 0.4, " x": 0.35, "\n": 0.25}
                       if t.count(" ") < 4 else {EOS: 1.0})
    prompts = ["Q:", "Q: x", "Q: w1", "Q: x x"]
    dec = AdaFuse([lm, other], theta_delta=0.5)
    one = dec.generate_batch(prompts, max_new_tokens=12, stop=["\n"], batch_size=1)
    forwards_one = sum(t.forwards for t in dec.last_totals)
    many = dec.generate_batch(prompts, max_new_tokens=12, stop=["\n"], batch_size=3)
    forwards_many = sum(t.forwards for t in dec.last_totals)
    assert [o.text for o in many] == [o.text for o in one]
    assert [[r.winner for r in o.trace] for o in many] == [[r.winner for r in o.trace] for o in one]
    assert forwards_many < forwards_one
    seen = []
    dec.generate_batch(prompts, max_new_tokens=12, stop=["\n"], batch_size=3,
                       on_output=lambda i, out: seen.append((i, out.text, out.prompt)))
    assert sorted(seen) == [(i, o.text, p) for i, (o, p) in enumerate(zip(one, prompts))]
    greedy = Greedy([lm])
    assert ([o.text for o in greedy.generate_batch(prompts, max_new_tokens=6, batch_size=4)]
            == [o.text for o in greedy.generate_batch(prompts, max_new_tokens=6)])
