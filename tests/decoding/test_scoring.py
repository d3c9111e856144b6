"""Step 3 on scripted models: every model's NLL of every pooled proposal, and where each came
from (the proposer's own span, a later model's first branch forward, a scoring forward); the
NLLs are the same whatever their source, and the recompute oracle takes no shortcut."""

from __future__ import annotations

import pytest
import torch

from adafuse.decoding import AdaFuse
from adafuse.decoding.scoring import BRANCH_FORWARD, OWN_SPAN, SCORING_FORWARD, proposal_rows
from adafuse.decoding.session import Request
from tests.scripted import EOS, ScriptedLM

WORDS = ["Q:", " a", " b", " c", " d", "\n"]
PROMPT = "Q:"


def pair():
    def first(text):
        return {" a": 0.5, " b": 0.3, EOS: 0.2} if text.count(" ") < 3 else {EOS: 1.0}

    def second(text):
        return {" c": 0.4, " a": 0.35, " d": 0.25} if text.count(" ") < 3 else {EOS: 1.0}

    return [ScriptedLM("m0", WORDS, first), ScriptedLM("m1", WORDS, second)]


def one_round(mode: str, reuse_own_spans: bool):
    """Steps 1-3 of AdaFuse's first round for one prompt: the decoder's own `propose`, `pool`
    and `score` (ensemble.AdaFuse._round's first three steps), on a run opened and the
    prompt admitted by its session hooks. On a CPU a cached run folds: the second model
    scores the first one's proposals in its first branch forward."""
    decoder = AdaFuse(pair(), theta_delta=0.9, max_words=2, num_candidates=3, mode=mode)
    decoder.reuse_own_spans = reuse_own_spans
    with torch.inference_mode():
        run = decoder._open()
        decoder._admit(run, [Request(0, PROMPT, 8, [])])
        proposed = decoder.propose(run.engines, run.states, [0], run.fold)
        pools = {0: decoder.pool([p.by_key[0].proposals for p in proposed])}
        scores, _ = decoder.score(run.engines, run.states, pools, proposed)
    assert run.fold == (mode == "cached")
    return pools[0], [s[0] for s in scores]


def test_each_nll_says_where_it_came_from():
    pool, (first, second) = one_round("cached", reuse_own_spans=True)
    texts = [p.text for p in pool]
    assert texts == [" a", " b", "", " c", " d"]  # m0 explored 3 (EOS among them), then m1's new ones
    mine = [0 in p.proposers for p in pool]
    # the first model: its own spans from the logits it generated them with, m1's by a forward
    assert [s == OWN_SPAN for s in first.source] == mine
    assert all(s == SCORING_FORWARD for s, own in zip(first.source, mine) if not own)
    # the second model: its own spans (" a" too, proposed by both), and m0's other proposals
    # scored in its first branch forward
    assert pool[0].proposers == [0, 1]
    for p, source in zip(pool, second.source):
        assert source == (OWN_SPAN if 1 in p.proposers else BRANCH_FORWARD), p.text


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_the_nlls_do_not_depend_on_their_source(mode):
    pool, shortcut = one_round("cached", reuse_own_spans=True)
    _, forward = one_round(mode, reuse_own_spans=False)
    for a, b in zip(shortcut, forward):
        assert a.nll == pytest.approx(b.nll, abs=1e-5)
    if mode == "recompute":  # the oracle folds nothing into a branch forward
        assert all(s == SCORING_FORWARD for scores in forward for s in scores.source)


def test_longest_common_prefix_is_the_first_difference():
    import random

    from adafuse.decoding.text import longest_common_prefix

    rng = random.Random(0)
    for _ in range(2000):
        n = rng.randrange(0, 70)
        a = [rng.randrange(3) for _ in range(n)]
        b = a[: rng.randrange(0, n + 1)] + [rng.randrange(3) for _ in range(rng.randrange(0, 5))]
        naive = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        assert longest_common_prefix(a, b) == naive == longest_common_prefix(tuple(b), a)


def test_proposals_of_several_prompts_encode_as_one_at_a_time(tiny):
    """One tokenizer call for every prompt's proposals gives each its own encode's rows."""
    from adafuse.decoding.output import Proposal
    from adafuse.decoding.scoring import proposal_rows_many

    for lm in (tiny["llama"], tiny["gemma"]):
        contexts = {"a": "Question: who?\nAnswer:", "b": "Q: 2+2=", "c": "x"}
        pools = {"a": [Proposal(" Tom", None, [0], "greedy"), Proposal(" Tom Hanks.", "eos", [0], "explore")],
                 "b": [Proposal(" 4", None, [1], "greedy")], "c": []}
        requests = {k: (lm.encode(contexts[k]), contexts[k], pools[k]) for k in contexts}
        many = proposal_rows_many(lm, requests)
        assert many == {k: proposal_rows(lm, *requests[k]) for k in contexts}
        rows, starts = many["a"]
        alone = lm.tokenizer(contexts["a"] + " Tom", add_special_tokens=True)["input_ids"]  # one text a call
        assert rows[0] == alone and rows[1][-1] == lm.eos_id
