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


def read(logits: torch.Tensor | None, k: int, before: torch.Tensor | None = None,
         fed: Sequence[int] | None = None, nll=None) -> tuple[list[Dist], list[float], list[float]]:
    """Everything a forward's caller needs, in ONE host read: the `Dist` (top `k`, at least 2
    where the vocabulary allows) of each row of `logits` [rows, vocab]; with `before` and
    `fed`, each fed token's log-probability under `before`'s row (`before` may cover only the
    first rows); with `nll` = (logits,
    spans, targets), the mean NLLs of `mean_nlls`. Returns (dists, fed log-probs, NLLs)."""
    parts, shape = [], []
    if logits is not None and logits.shape[0]:
        rows, vocab = logits.shape
        k = min(max(k, 2), vocab)
        top = torch.topk(logits, k, dim=-1)
        lse = torch.logsumexp(logits.double(), dim=-1, keepdim=True)
        table = [top.indices.double(), top.values.double() - lse]
        if before is not None:  # it may cover only the first rows
            column = _logprob_column(before, fed)
            if column.shape[0] < rows:
                column = torch.cat([column, column.new_zeros((rows - column.shape[0], 1))])
            table.append(column)
        table = torch.cat(table, dim=1)
        parts.append(table.reshape(-1))
        shape.append(("dists", rows, table.shape[1]))
    counts = []
    if nll is not None and nll[1]:
        means, counts = _mean_nlls(*nll)
        parts.append(means)
    if not parts:
        return [], [], [float("nan")] * len(counts)
    flat = torch.cat([p.to(parts[0].device) for p in parts]).tolist()
    dists, fed_lps = [], []
    at = 0
    if shape:
        _, rows, width = shape[0]
        for r in range(rows):
            row = flat[at + r * width : at + (r + 1) * width]
            dists.append(Dist(tuple(int(i) for i in row[:k]), tuple(row[k : 2 * k])))
            if before is not None and r < len(fed):
                fed_lps.append(row[2 * k])
        at += rows * width
    nlls = [v if n else float("nan") for v, n in zip(flat[at:], counts)]
    return dists, fed_lps, nlls


def read_dists(logits: torch.Tensor, k: int, before: torch.Tensor | None = None,
               fed: Sequence[int] | None = None) -> tuple[list[Dist], list[float]]:
    """`read` of dists (and fed tokens' log-probabilities) alone."""
    dists, fed_lps, _ = read(logits, k, before, fed)
    return dists, fed_lps


def _mean_nlls(logits: torch.Tensor, spans: Sequence[tuple[int, int]], targets: Sequence[int]):
    """(mean NLL per span as a float64 tensor on the device, each span's token count)."""
    index, segment, counts = [], [], []
    for i, (first, n) in enumerate(spans):
        index += range(first, first + n)
        segment += [i] * n
        counts.append(n)
    device = logits.device
    sums = torch.zeros(len(spans), dtype=torch.float64, device=device)
    if index:
        picked = logits[torch.tensor(index, dtype=torch.long, device=device)].float()
        logprobs = torch.log_softmax(picked, dim=-1).gather(
            1, torch.tensor(list(targets), dtype=torch.long, device=device)[:, None])[:, 0]
        sums.index_add_(0, torch.tensor(segment, dtype=torch.long, device=device), -logprobs.double())
    return sums / torch.tensor([max(n, 1) for n in counts], dtype=torch.float64, device=device), counts


def mean_nlls(logits: torch.Tensor, spans: Sequence[tuple[int, int]], targets: Sequence[int]) -> list[float]:
    """Mean of -log p(target) per span: span i is (first, n), the logits rows first .. first+n-1
    predicting its n targets (`targets` holds every span's targets in order). NaN for n = 0.
    One host read."""
    if not spans:
        return []
    return read(None, 2, nll=(logits, spans, targets))[2]


def mean_nll(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """Mean of -log p(target_i) where logits[i] predicts target_i (one row of `mean_nlls`)."""
    return mean_nlls(logits, [(0, len(targets))], targets)[0]


def _logprob_column(logits: torch.Tensor, tokens: Sequence[int]) -> torch.Tensor:
    """[rows, 1] on the device: log p(tokens[i]) under row i of `logits`, in float64."""
    table = logits.double()
    picked = torch.tensor(list(tokens), dtype=torch.long, device=logits.device)[:, None]
    return table.gather(1, picked) - torch.logsumexp(table, dim=-1, keepdim=True)


def token_logprobs(logits: torch.Tensor, tokens: Sequence[int]) -> list[float]:
    """log p(tokens[i]) under row i of `logits` [rows, vocab], float64; one host read."""
    if len(tokens) == 0:
        return []
    return _logprob_column(logits, tokens)[:, 0].tolist()
