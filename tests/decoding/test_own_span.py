"""A proposer's own span is scored from the log-probabilities it was generated with, without a
forward; a different last token's log-probability is asked of the branch rows, which keep the
distributions on their device."""

import pytest
import torch

from adafuse.decoding.engine import mean_nll
from adafuse.decoding.engine.readout import token_logprobs
from adafuse.decoding.proposals import OwnSpan, own_span_nlls


class _Rows:
    """Rows that kept a context distribution and the ones after each fed token."""

    def __init__(self, dists):
        self.dists = dists
        self.asked = []

    def logprobs(self, queries):
        self.asked.append(list(queries))
        return token_logprobs(torch.stack([self.dists[p] for _, p, _ in queries]), [t for *_, t in queries])


@pytest.fixture
def span():
    """A 3-token span over a 7-token vocabulary: context logits, then the logits after each of
    its first two tokens (the last token was drawn, not fed)."""
    g = torch.Generator().manual_seed(0)
    dists = [torch.randn(7, generator=g) for _ in range(3)]
    tokens = [3, 5, 1]
    logprobs = [float(torch.log_softmax(d, -1)[t]) for d, t in zip(dists, tokens)]
    return OwnSpan(tokens, logprobs, _Rows(dists), row=0, fed=2), dists


def nll(own, row):
    return own_span_nlls([own.plan(row)])[0]


@pytest.mark.parametrize("row", [[3], [3, 5], [3, 5, 1], [6], [3, 0], [3, 5, 4]])
def test_nll_equals_a_forwards_mean_nll_when_all_but_the_last_token_were_generated(span, row):
    own, dists = span
    expected = mean_nll(torch.stack(dists[: len(row)]), row)
    assert nll(own, row) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("row", [[], [4, 5], [3, 2, 1], [3, 5, 1, 2], [3, 5, 4, 2]])
def test_nll_is_none_where_the_generation_logits_do_not_cover_the_row(span, row):
    own, _ = span
    assert own.plan(row) is None


def test_a_different_first_token_needs_the_rows():
    own = OwnSpan([3], [-1.0])
    assert nll(own, [3]) == pytest.approx(1.0)
    assert own.plan([4]) is None


def test_the_rows_are_asked_once_for_all_spans(span):
    own, dists = span
    values = own_span_nlls([own.plan([6]), own.plan([3, 0]), own.plan([3, 5, 1]), None])
    assert values[3] is None and all(v is not None for v in values[:3])
    assert own.rows.asked == [[(0, 0, 6), (0, 1, 0)]]
