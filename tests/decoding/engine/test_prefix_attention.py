"""The shared-prefix attention: every row reads one copy of a task's prefix in place.

On tiny models of both families (Gemma's sliding window of 8 is far shorter than the prefix),
the engine with a shared prefix must give the logits and NLLs a full re-encode gives: for
branch rows, padded rows of several prompts, scored rows, rows whose re-tokenisation reaches
back into the prefix, and commits that roll back into it.
"""

from __future__ import annotations

import pytest
import torch

from adafuse import AdaFuse
from adafuse.decoding.engine import CachedEngine, RecomputeEngine, prefix_attention
from adafuse.decoding.engine.executor import cache_arg
from adafuse.decoding.output import ModelCost
from tests import tiny_hf
from tests.decoding.engine.logits import context_logits, step_logits

PREFIX = tiny_hf.PROMPTS[1][: tiny_hf.PROMPTS[1].index("Question: Who")]
ITEMS = ["Question: Who wrote Emma?\nAnswer:", "Question: What is the capital of Peru?\nAnswer:"]


def _recompute(lm, contexts):
    engine = RecomputeEngine(lm)
    for k, ids in contexts.items():
        engine.add(k, ids, ModelCost(lm.name))
    return engine


def _shared_engine(lm, contexts):
    engine = CachedEngine(lm)
    prefix = engine.prefill(lm.encode(PREFIX), ModelCost(lm.name))
    for k, ids in contexts.items():
        engine.add(k, ids, ModelCost(lm.name), prefix)
    assert engine.shared is prefix, "the model should pass the shared-prefix check"
    assert all(engine.ctx[k].plen > 8 for k in contexts)  # longer than Gemma's window
    return engine


def _setup(lm):
    """The two items' ids, an engine reading the prefix in place, and the recompute oracle."""
    contexts = {k: lm.encode(PREFIX + item) for k, item in enumerate(ITEMS)}
    return contexts, _shared_engine(lm, contexts), _recompute(lm, contexts)


def _assert_logits_of(lm, logits, contexts_fed):
    """logits[j] are the next-token logits after contexts_fed[j], as a full encode gives them."""
    for got, ids in zip(logits, contexts_fed):
        want = context_logits(_recompute(lm, {0: ids}), 0)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_check_passes_and_catches_a_prefix_that_is_not_read(tiny, name, dtype, monkeypatch):
    import copy

    lm = tiny[name]
    model = lm.model if dtype == torch.float32 else copy.deepcopy(lm.model).to(dtype)
    assert prefix_attention.check(model, cache_arg(model))  # bf16: within its noise

    def blind(self, window, device):  # forget the prefix: the check must notice
        pre, tail = original(self, window, device)
        return torch.zeros_like(pre), tail

    original = prefix_attention.PrefixContext.masks
    monkeypatch.setattr(prefix_attention.PrefixContext, "masks", blind)
    assert not prefix_attention.check(model, cache_arg(model))


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_engine_with_a_shared_prefix_gives_the_logits_of_a_full_encode(tiny, name):
    lm = tiny[name]
    contexts, engine, ref = _setup(lm)
    for k in contexts:
        torch.testing.assert_close(context_logits(engine, k), context_logits(ref, k), atol=1e-4, rtol=1e-4)
    # branch rows of two prompts of different lengths, one step after another
    rows = engine.open_rows([0, 0, 1])
    logits = step_logits(rows, [0, 1, 2], [5, 6, 7])
    _assert_logits_of(lm, logits, [contexts[0] + [5], contexts[0] + [6], contexts[1] + [7]])
    logits = step_logits(rows, [0, 2], [8, 9])
    _assert_logits_of(lm, logits[1:], [contexts[1] + [7, 9]])
    # scoring, including a row whose tokens differ from position 3 of the prompt: it reads
    # only the first 2 prefix positions, the rest from its own re-encoded tokens
    requests = {0: ([contexts[0] + [3, 4], contexts[0][:3] + [11, 12]], [len(contexts[0]), 3]),
                1: ([contexts[1] + [5]], [len(contexts[1])])}
    scored = engine.score(requests)
    want = ref.score(requests).nll
    for k in requests:
        assert scored.nll[k] == pytest.approx(want[k], abs=1e-4)
    # the winner is adopted from its scoring row; a later commit rolls back into the prefix
    committed = {0: contexts[0] + [3, 4], 1: contexts[1][:5] + [13, 14]}
    engine.commit(committed, [scored])
    _assert_logits_of(lm, [context_logits(engine, k) for k in committed], committed.values())
    assert engine.ctx[1].plen == 5


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_first_branch_step_with_scoring_and_branch_adoption(tiny, name):
    lm = tiny[name]
    contexts, engine, ref = _setup(lm)
    requests = {k: ([ids + [3, 4]], [len(ids)]) for k, ids in contexts.items()}
    rows = engine.open_rows([0, 1, 1], score=requests)
    logits = step_logits(rows, [0, 1, 2], [5, 6, 7])
    _assert_logits_of(lm, logits, [contexts[0] + [5], contexts[1] + [6], contexts[1] + [7]])
    want = ref.score(requests).nll
    for k in contexts:
        assert rows.folded[k][(tuple(contexts[k] + [3, 4]), len(contexts[k]))] == pytest.approx(want[k][0], abs=1e-4)
    after = step_logits(rows, [0, 2], [8, 9])
    committed = {0: contexts[0] + [5, 8], 1: contexts[1] + [7, 9]}
    engine.commit(committed, [rows])
    _assert_logits_of(lm, [context_logits(engine, k) for k in committed], committed.values())
    # and the adopted caches carry on correctly
    rows = engine.open_rows([0, 1])
    logits = step_logits(rows, [0, 1], [10, 11])
    _assert_logits_of(lm, logits, [committed[0] + [10], committed[1] + [11]])


def test_decoding_with_the_prefix_read_in_place_chooses_what_copies_choose(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    prompts = [PREFIX + item for item in ITEMS + ["Question: Who painted the Mona Lisa?\nAnswer:"]]
    shared = AdaFuse(models, theta_delta=0.3).generate_batch(
        prompts, max_new_tokens=12, stop=["\n"], shared_prefix=PREFIX, batch_size=2)
    copied = AdaFuse(models, theta_delta=0.3, engine={"share_prefix": False}).generate_batch(prompts, max_new_tokens=12, stop=["\n"], shared_prefix=PREFIX, batch_size=2)
    for a, b in zip(shared, copied):
        tiny_hf.assert_same_choices(a, b)
        assert a.text == b.text


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_prompts_joining_together_are_prefilled_in_one_forward(tiny, name):
    lm = tiny[name]
    contexts = {k: lm.encode(PREFIX + item) for k, item in enumerate(ITEMS)}
    engine = CachedEngine(lm)
    prefix = engine.prefill(lm.encode(PREFIX), ModelCost(lm.name))
    before = engine.total.forwards
    engine.add_many([(k, ids, ModelCost(lm.name), prefix) for k, ids in contexts.items()])
    assert engine.total.forwards == before + 1
    ref = _recompute(lm, contexts)
    for k, ids in contexts.items():
        assert engine.costs[k].tokens_fed == len(ids) - engine.ctx[k].plen
        torch.testing.assert_close(context_logits(engine, k), context_logits(ref, k), atol=1e-4, rtol=1e-4)
    rows = engine.open_rows([0, 1])
    logits = step_logits(rows, [0, 1], [5, 6])
    _assert_logits_of(lm, logits, [contexts[0] + [5], contexts[1] + [6]])
