"""Batching policy on tiny models: a later model scores the earlier models' proposals in its
first branch forward, a padded forward is split by width on CPU, and neither changes a
choice. Forwards are counted through the decoders' public totals (`ModelCost.by_kind`)."""

from __future__ import annotations

import pytest

from adafuse import AdaFuse
from adafuse.decoding.engine.batching import width_groups
from tests.tiny_hf import PROMPTS, assert_same_choices

NO_SPLIT = {"split_waste": 10**9}  # never split a forward by width


def forwards(total, kind: str) -> int:
    return total.by_kind.get(kind, [0, 0.0])[0]


@pytest.mark.parametrize("names", [("llama", "gemma"), ("gemma", "llama", "llama2")])
def test_later_models_score_earlier_proposals_in_their_first_branch_forward(tiny, names):
    """Model m scores the proposals of models < m with its first branch step: the last model
    runs no scoring forward of its own, and the choices are still recompute's."""
    models = [tiny[n] for n in names]
    kwargs = {"theta_delta": 0.5, "max_words": 2, "num_candidates": 3}
    dec = AdaFuse(models, engine=NO_SPLIT, **kwargs)
    cached = dec.generate(PROMPTS[1], max_new_tokens=12)
    assert_same_choices(cached, AdaFuse(models, mode="recompute", **kwargs).generate(
        PROMPTS[1], max_new_tokens=12))
    rounds = cached.stats.rounds
    first, last = dec.last_totals[0], dec.last_totals[-1]
    assert forwards(first, "step+score") == 0  # nothing was proposed before the first model
    assert forwards(last, "step+score") >= 1
    assert forwards(first, "score") == rounds  # one scoring forward a round, for the later models' proposals
    # what the last model still scores afterwards is only its own proposals, where their
    # re-tokenisation differs from the tokens it generated (random-init models do that)
    own_only = sum(1 for r in cached.trace if any(p.proposers == [len(models) - 1] for p in r.proposals))
    assert forwards(last, "score") <= own_only
    if len(models) == 2:
        assert forwards(last, "score") < rounds


def test_forwards_split_by_width_make_the_same_choices(tiny):
    """On CPU a forward that would pad much is split into short and long rows (and the last
    model's first step is not folded with its scoring); the choices stay recompute's."""
    models = [tiny["llama"], tiny["gemma"]]
    kwargs = {"theta_delta": 0.5, "max_words": 2, "num_candidates": 3}
    split = AdaFuse(models, engine={"split_waste": 0}, **kwargs)  # split wherever padding is saved
    outs = split.generate_batch(PROMPTS[:2], max_new_tokens=12, batch_size=2)
    for prompt, out in zip(PROMPTS[:2], outs):
        assert_same_choices(out, AdaFuse(models, mode="recompute", **kwargs).generate(prompt, max_new_tokens=12))
    assert all(forwards(t, "step+score") == 0 for t in split.last_totals)  # every first step ran on its own
    whole = AdaFuse(models, engine=NO_SPLIT, **kwargs)
    same = whole.generate_batch(PROMPTS[:2], max_new_tokens=12, batch_size=2)
    for a, b in zip(outs, same):
        assert_same_choices(a, b)
    # some scoring requests became two forwards (short rows, long rows)
    assert sum(forwards(t, "score") for t in split.last_totals) > sum(
        forwards(t, "score") + forwards(t, "step+score") for t in whole.last_totals)


def test_width_groups():
    assert width_groups([1, 1, 1, 8, 8], "cuda") == [[0, 1, 2, 3, 4]]
    assert width_groups([3, 3, 3], "cpu") == [[0, 1, 2]]  # nothing to save
    assert width_groups([1] * 24 + [8] * 24, "cpu") == [list(range(24)), list(range(24, 48))]
    assert width_groups([8, 1, 8, 1], "cpu") == [[0, 1, 2, 3]]  # saves 14 positions: not worth a forward
    assert width_groups([8, 1] * 10, "cpu") == [list(range(1, 20, 2)), list(range(0, 20, 2))]
    assert width_groups([8, 1, 8, 1], "cpu", split_waste=10) == [[1, 3], [0, 2]]  # a lower threshold
