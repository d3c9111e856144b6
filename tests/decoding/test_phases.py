"""A round in phases (every model proposes from the same text, then all score, then all
commit) chooses what the folded round and the recompute oracle choose; the engine answers in
tokens, read off the device at most once per forward; the step interface (Session) admits
prompts between rounds and gives the texts of generate_batch."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from adafuse import AdaFuse, Greedy
from adafuse.decoding import Rerank, UnionTopK
from tests import tiny_hf
from tests.tiny_hf import assert_same_choices

PROMPTS = tiny_hf.PROMPTS + ["Question: Who wrote Emma?\nAnswer:", "Question: What is the capital of Peru?\nAnswer:"]


@pytest.mark.parametrize("theta,batch_size", [(0.01, 1), (0.3, 3), (1.0, 2)])
def test_unfolded_phases_choose_what_the_folded_round_and_recompute_choose(tiny, theta, batch_size):
    models = [tiny["llama"], tiny["gemma"]]
    kwargs = {"theta_delta": theta, "max_words": 3, "num_candidates": 3}
    run = dict(max_new_tokens=10, stop=["\n"], batch_size=batch_size)
    folded = AdaFuse(models, engine={"fold_scoring": True}, **kwargs).generate_batch(PROMPTS, **run)
    phases = AdaFuse(models, engine={"fold_scoring": False}, **kwargs).generate_batch(PROMPTS, **run)
    oracle = AdaFuse(models, mode="recompute", **kwargs).generate_batch(PROMPTS, **run)
    for a, b, c in zip(folded, phases, oracle):
        assert_same_choices(a, b)
        assert_same_choices(b, c)
        assert a.text == b.text == c.text
    # folding saves the later model's scoring forwards; unfolded, every model scores
    assert sum(o.stats.models[1].forwards for o in folded) <= sum(o.stats.models[1].forwards for o in phases)


def test_fold_auto_is_on_for_cpu_members_only(tiny):
    from adafuse.decoding.engine import EngineOptions

    assert EngineOptions().folds([torch.device("cpu"), torch.device("cpu")])
    assert not EngineOptions().folds([torch.device("cpu"), torch.device("cuda", 0)])
    assert not EngineOptions(fold_scoring=False).folds([torch.device("cpu")])


class _Reads:
    """Counts host reads of tensors (tolist, item, float, bool, cpu) made by adafuse's code
    (transformers' own forward reads a padded mask once, `_ignore_causal_mask_sdpa`: the
    bench counts those too)."""

    NAMES = ("tolist", "item", "__float__", "__bool__", "__int__", "cpu")

    def __init__(self, monkeypatch):
        self.count = 0
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def wrapper(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if f"{os.sep}adafuse{os.sep}" in caller:
                self.count += 1
            return original(tensor, *args, **kwargs)
        return wrapper


@pytest.mark.parametrize("decoder", ["adafuse", "adafuse-phases", "greedy", "union_topk"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_at_most_one_host_read_per_forward(tiny, monkeypatch, decoder, batch_size):
    models = [tiny["llama"], tiny["gemma"]]
    dec = {"adafuse": lambda: AdaFuse(models, theta_delta=0.3, engine={"fold_scoring": True}),
           "adafuse-phases": lambda: AdaFuse(models, theta_delta=0.3, engine={"fold_scoring": False}),
           "greedy": lambda: Greedy(models, model_index=1),
           "union_topk": lambda: UnionTopK(models, top_k=4)}[decoder]()
    dec.generate(PROMPTS[0], max_new_tokens=4)  # the one-time probes of each model read too
    reads = _Reads(monkeypatch)
    dec.generate_batch(PROMPTS, max_new_tokens=10, stop=["\n"], batch_size=batch_size)
    forwards = sum(t.forwards for t in dec.last_totals)
    assert forwards > 0
    assert 0 < reads.count <= forwards, (reads.count, forwards)


def test_a_session_admits_prompts_between_rounds_and_gives_generate_batchs_texts(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    dec = AdaFuse(models, theta_delta=0.3)
    expected = [o.text for o in dec.generate_batch(PROMPTS, max_new_tokens=10, stop=["\n"])]
    session = dec.session(max_new_tokens=10, stop=["\n"], batch_size=2)
    session.add(PROMPTS[0], key="a")
    first = session.step()  # one round of "a" alone
    assert len(session.active) == 1 or first
    for i, prompt in enumerate(PROMPTS[1:], 1):  # the rest join while "a" is in flight
        session.add(prompt, key=i)
    seen, partials = {}, []
    for key, out in first:
        seen[key] = out.text
    while session.busy:
        assert len(session.active) <= 2
        partials += [session.partial(k) for k in session.active]
        for key, out in session.step():
            seen[key] = out.text
    assert [seen["a"]] + [seen[i] for i in range(1, len(PROMPTS))] == expected
    assert any(partials)  # what a server streams: the text committed so far


def test_a_session_takes_each_prompts_own_budget_and_stop_and_cancels(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    dec = AdaFuse(models, theta_delta=0.3)
    alone = dec.generate(PROMPTS[1], max_new_tokens=3)
    session = dec.session(max_new_tokens=10, stop=["\n"], batch_size=3)
    session.add(PROMPTS[1], key="short", max_new_tokens=3, stop=[])
    session.add(PROMPTS[0], key="gone")
    session.add(PROMPTS[2], key="kept")
    done = dict(session.step())
    assert session.cancel("gone")
    assert not session.cancel("never added")
    while session.busy:
        done.update(session.step())
    assert set(done) == {"short", "kept"}
    assert done["short"].text == alone.text


BUDGETS = [2, 9, 9, 9]  # the first ends early, so its place is refilled mid-decode


def refilled_session(dec) -> tuple[dict, bool]:
    """PROMPTS with BUDGETS through a session of 2: the outputs by index, and whether a step
    after one in which a prompt finished ran with its place filled again."""
    session = dec.session(batch_size=2)
    for i, (prompt, budget) in enumerate(zip(PROMPTS, BUDGETS)):
        session.add(prompt, key=i, max_new_tokens=budget)
    outs, refilled, waiting = {}, False, False
    while session.busy:
        finished = session.step()
        if waiting:  # a place was freed at the last step: this step ran with it filled again
            refilled = refilled or len(session.active) + len(finished) == 2
        outs.update(finished)
        waiting = bool(finished) and bool(session.queue)
    return outs, refilled


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_greedy_refills_a_finished_prompts_place_and_keeps_its_texts(tiny, mode):
    """Greedy admits between steps, as AdaFuse does: after a step in which a prompt finished,
    the next step starts with a queued one in its place; the texts are one-at-a-time's."""
    dec = Greedy([tiny["llama"]], mode=mode)
    alone = [dec.generate(p, max_new_tokens=b).text for p, b in zip(PROMPTS, BUDGETS)]
    outs, refilled = refilled_session(dec)
    assert refilled
    assert [outs[i].text for i in range(len(PROMPTS))] == alone


@pytest.mark.parametrize("mode", ["cached", "recompute"])
def test_rerank_refills_a_finished_prompts_place_and_scores_as_alone(tiny, mode):
    """Rerank admits between steps too: each model's greedy decode goes a token a step, and
    prompts are scored and leave once all their answers are written. A decode that went on
    past a refill has committed part of its answer; its answers are still scored after the
    prompt alone, so candidates, NLLs and winner are one-at-a-time's."""
    dec = Rerank([tiny["llama"], tiny["gemma"]], mode=mode)
    alone = [dec.generate(p, max_new_tokens=b) for p, b in zip(PROMPTS, BUDGETS)]
    outs, refilled = refilled_session(dec)
    assert refilled
    for i, one in enumerate(alone):
        assert_same_choices(outs[i], one)
        assert [v for p in outs[i].trace[0].proposals for v in p.nll] == pytest.approx(
            [v for p in one.trace[0].proposals for v in p.nll], abs=1e-4)
        if mode == "cached":  # a refill costs no forward: the rows' caches are adopted
            assert outs[i].stats.tokens_fed == one.stats.tokens_fed
