"""What crosses from an engine to a decoder: tokens and log-probabilities, never logits.

Every function here turns device tensors into host numbers with ONE read (`tolist`) for all
rows it is given, so that a decoder costs one device sync per forward, not one per row:

- `read_dists(logits, k)`: each row's top-k token ids with their log-probabilities (`Dist`),
  and optionally the log-probability of a token under another distribution (the token fed);
- `mean_nlls(logits, spans, targets)`: the mean NLL of several rows' target tokens;
- `token_logprobs(logits, tokens)`: one token's log-probability per row.

Log-probabilities are computed in float64 from the logits (top-k values minus logsumexp), so a
margin p1 - p2 equals the one a float64 softmax of the whole vocabulary gives within 1e-15.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    """A next-token distribution as a decoder sees it: its k most likely tokens, most likely
    first, with their log-probabilities."""

    ids: tuple[int, ...]
    logprobs: tuple[float, ...]

    @property
    def margin(self) -> float:
        """Top-1 margin Δ = p1 - p2 (p2 = 0 for a one-token vocabulary)."""
        p = [math.exp(v) for v in self.logprobs[:2]]
        return p[0] - (p[1] if len(p) > 1 else 0.0)

    def probs(self, k: int | None = None) -> list[float]:
        return [math.exp(v) for v in self.logprobs[:k]]


@dataclass(frozen=True)
class Step:
    """One row's result of a step: the log-probability of the token it was fed (under the
    distribution before it) and the distribution after it."""

    fed_logprob: float
    dist: Dist


def read_dists(logits: torch.Tensor, k: int, before: torch.Tensor | None = None,
               fed: Sequence[int] | None = None) -> tuple[list[Dist], list[float]]:
    """Dists of the rows of `logits` [rows, vocab] (top `k`, at least 2 where the vocabulary
    allows), and with `before` [rows, vocab] and `fed`, each fed token's log-probability under
    `before`'s row; one host read for all of it."""
    rows, vocab = logits.shape
    if rows == 0:
        return [], []
    k = min(max(k, 2), vocab)
    top = torch.topk(logits, k, dim=-1)
    lse = torch.logsumexp(logits.double(), dim=-1, keepdim=True)
    parts = [top.indices.double(), top.values.double() - lse]
    if before is not None:
        picked = torch.tensor(list(fed), dtype=torch.long, device=before.device)[:, None]
        before = before.double()
        parts.append(before.gather(1, picked) - torch.logsumexp(before, dim=-1, keepdim=True))
    table = torch.cat(parts, dim=1).tolist()
    dists = [Dist(tuple(int(i) for i in row[:k]), tuple(row[k : 2 * k])) for row in table]
    return dists, [row[2 * k] for row in table] if before is not None else []


def mean_nlls(logits: torch.Tensor, spans: Sequence[tuple[int, int]], targets: Sequence[int]) -> list[float]:
    """Mean of -log p(target) per span: span i is (first, n), the logits rows first .. first+n-1
    predicting its n targets (`targets` holds every span's targets in order). NaN for n = 0."""
    if not spans:
        return []
    index, segment, counts = [], [], []
    for i, (first, n) in enumerate(spans):
        index += range(first, first + n)
        segment += [i] * n
        counts.append(n)
    if not index:
        return [float("nan")] * len(spans)
    device = logits.device
    picked = logits[torch.tensor(index, dtype=torch.long, device=device)].float()
    logprobs = torch.log_softmax(picked, dim=-1).gather(
        1, torch.tensor(list(targets), dtype=torch.long, device=device)[:, None])[:, 0]
    sums = torch.zeros(len(spans), dtype=torch.float64, device=device)
    sums.index_add_(0, torch.tensor(segment, dtype=torch.long, device=device), -logprobs.double())
    means = sums / torch.tensor([max(n, 1) for n in counts], dtype=torch.float64, device=device)
    return [v if n else float("nan") for v, n in zip(means.tolist(), counts)]


def mean_nll(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """Mean of -log p(target_i) where logits[i] predicts target_i (one row of `mean_nlls`)."""
    return mean_nlls(logits, [(0, len(targets))], targets)[0]


def token_logprobs(logits: torch.Tensor, tokens: Sequence[int]) -> list[float]:
    """log p(tokens[i]) under row i of `logits` [rows, vocab], float64; one host read."""
    if len(tokens) == 0:
        return []
    table = logits.double()
    picked = torch.tensor(list(tokens), dtype=torch.long, device=logits.device)[:, None]
    return (table.gather(1, picked) - torch.logsumexp(table, dim=-1, keepdim=True))[:, 0].tolist()
