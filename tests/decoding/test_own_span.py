"""A proposer's own span is scored from the logits it was generated with, without a forward."""

import pytest
import torch

from adafuse.decoding.engine import mean_nll
from adafuse.decoding.proposals import OwnSpan


@pytest.fixture
def span():
    """A 3-token span over a 7-token vocabulary: context logits, then the logits after each of
    its first two tokens (the last token was drawn, not fed)."""
    g = torch.Generator().manual_seed(0)
    context = torch.randn(7, generator=g)
    after = [torch.randn(7, generator=g) for _ in range(2)]
    tokens = [3, 5, 1]
    dists = [context, *after]
    logprobs = [float(torch.log_softmax(d, -1)[t]) for d, t in zip(dists, tokens)]
    return OwnSpan(tokens, logprobs, after, context), dists


@pytest.mark.parametrize("row", [[3], [3, 5], [3, 5, 1], [6], [3, 0], [3, 5, 4]])
def test_nll_equals_a_forwards_mean_nll_when_all_but_the_last_token_were_generated(span, row):
    own, dists = span
    expected = mean_nll(torch.stack(dists[: len(row)]), row)
    assert own.nll(row) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("row", [[], [4, 5], [3, 2, 1], [3, 5, 1, 2], [3, 5, 4, 2]])
def test_nll_is_none_where_the_generation_logits_do_not_cover_the_row(span, row):
    own, _ = span
    assert own.nll(row) is None


def test_a_different_first_token_needs_the_context_logits():
    own = OwnSpan([3], [-1.0], [], None)
    assert own.nll([3]) == pytest.approx(1.0)
    assert own.nll([4]) is None
