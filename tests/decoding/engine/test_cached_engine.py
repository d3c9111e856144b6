"""The cached engine against the recompute oracle on tiny models: rollback restores the cache a
fresh encode would give, and rows of several prompts share one batch with each prompt's own
logits and NLLs."""

from __future__ import annotations

import pytest
import torch

from adafuse.decoding.engine import CachedEngine, RecomputeEngine
from adafuse.decoding.output import ModelCost
from adafuse.decoding.text import longest_common_prefix
from tests.decoding.engine.logits import context_logits, step_logits
from tests.tiny_hf import PROMPTS


def _recompute_logits(lm, ids):
    engine = RecomputeEngine(lm)
    engine.add(0, ids, ModelCost(lm.name))
    return context_logits(engine, 0)


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
    step_logits(rows, [0, 1], [5, 6])
    step_logits(rows, [0, 1], [7, 8])
    engine.score({0: ([base + [9, 10], base + [11]], [len(base), len(base)])})
    # commit a context whose last 5 tokens differ: roll back 5, feed 3
    new = base[:-5] + [12, 13, 14]
    engine.commit({0: new})
    assert engine.ids[0] == new
    assert torch.allclose(context_logits(engine, 0), _recompute_logits(lm, new), atol=1e-4)
    # and a winner adopted from the scoring rows
    winner = new + [21, 22]
    scored = engine.score({0: ([new + [20], winner], [len(new), len(new)])})
    engine.commit({0: winner}, [scored])
    assert torch.allclose(context_logits(engine, 0), _recompute_logits(lm, winner), atol=1e-4)


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
    assert torch.allclose(context_logits(engine, 0), _recompute_logits(lm, full), atol=1e-4)


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_prompts_of_different_lengths_share_a_batch(tiny, name):
    """Left-padded rows of several prompts give each prompt's own logits."""
    lm = tiny[name]
    contexts = [lm.encode(PROMPTS[1]), lm.encode(PROMPTS[0]), lm.encode(PROMPTS[1][:50])]
    engine = CachedEngine(lm)
    for k, ids in enumerate(contexts):
        engine.add(k, ids, ModelCost(lm.name))
    rows = engine.open_rows([0, 1, 1, 2])
    logits = step_logits(rows, [0, 1, 2, 3], [5, 6, 7, 8])
    for j, (k, t) in enumerate([(0, 5), (1, 6), (1, 7), (2, 8)]):
        assert torch.allclose(logits[j], _recompute_logits(lm, contexts[k] + [t]), atol=1e-4)
    logits = step_logits(rows, [1, 3], [9, 10])
    assert torch.allclose(logits[1], _recompute_logits(lm, contexts[2] + [8, 10]), atol=1e-4)
    nlls = engine.score({0: ([contexts[0] + [3, 4]], [len(contexts[0])]),
                         2: ([contexts[2] + [5], contexts[2][:-2] + [6, 7, 8]],
                             [len(contexts[2]), len(contexts[2]) - 2])}).nll
    ref = RecomputeEngine(lm)
    for k in (0, 2):
        ref.add(k, contexts[k], ModelCost(lm.name))
    expected = ref.score({0: ([contexts[0] + [3, 4]], [len(contexts[0])]),
                          2: ([contexts[2] + [5], contexts[2][:-2] + [6, 7, 8]],
                              [len(contexts[2]), len(contexts[2]) - 2])}).nll
    for k in (0, 2):
        assert nlls[k] == pytest.approx(expected[k], abs=1e-4)
    engine.commit({2: contexts[2][:-2] + [6, 7, 8]})
    assert torch.allclose(context_logits(engine, 2),
                          _recompute_logits(lm, contexts[2][:-2] + [6, 7, 8]), atol=1e-4)


