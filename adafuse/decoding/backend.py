"""Per-model forward passes behind one small interface, so decoders never touch caches.

A `Session` holds one model's committed context (the ids of prompt_m + R) and offers what
a round needs:
- `context_logits()`: the next-token logits right after the committed context;
- `open_rows(n)`: n branches that continue the context; `Rows.extend` feeds one token to
  each live branch and returns their next-token logits (one forward for all branches);
- `score(rows, starts)`: mean NLL of row[start:] for each row, in one batched forward;
- `commit(ids)`: the new committed context.

`RecomputeSession` re-encodes from scratch on every call: slow, simple and the oracle that
the cached engine is tested against.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from adafuse.decoding.output import ModelCost


class Session:
    def __init__(self, lm, context_ids: Sequence[int], cost: ModelCost):
        if not context_ids:
            raise ValueError(f"empty prompt for model {lm.name!r}: nothing to condition on")
        self.lm = lm
        self.cost = cost
        self.ids = list(context_ids)

    def commit(self, ids: Sequence[int]) -> None:
        self.ids = list(ids)

    def context_logits(self) -> torch.Tensor:
        raise NotImplementedError

    def open_rows(self, n: int) -> "Rows":
        raise NotImplementedError

    def score(self, rows: Sequence[Sequence[int]], starts: Sequence[int]) -> list[float]:
        raise NotImplementedError

    def close(self) -> None:
        """Free what the session holds (caches)."""


class Rows:
    def extend(self, live: Sequence[int], tokens: Sequence[int]) -> torch.Tensor:
        """Append tokens[i] to branch live[i]; return [len(live), vocab] next-token logits."""
        raise NotImplementedError


def _pad_id(lm) -> int:
    pad = lm.tokenizer.pad_token_id
    if pad is None:
        pad = lm.tokenizer.eos_token_id
    return int(pad or 0)


def forward_rows(session: Session, rows: Sequence[Sequence[int]], keep: Sequence[Sequence[int]]):
    """One forward over right-padded rows; returns logits at the `keep` positions of each row.

    Only the needed positions go through the LM head (`logits_to_keep`): a 262k-entry
    vocabulary times a 1,400-token prompt would otherwise be gigabytes.
    """
    lm = session.lm
    width = max(len(r) for r in rows)
    pad = _pad_id(lm)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    positions = sorted({p for k in keep for p in k})
    index = {p: j for j, p in enumerate(positions)}
    started = time.perf_counter()
    out = lm.model(
        input_ids=ids.to(lm.device),
        attention_mask=mask.to(lm.device),
        logits_to_keep=torch.tensor(positions, dtype=torch.long, device=lm.device),
        use_cache=False,
    )
    logits = out.logits.float()
    result = [logits[i, [index[p] for p in k]] for i, k in enumerate(keep)]
    session.cost.forwards += 1
    session.cost.tokens_fed += sum(len(r) for r in rows)
    session.cost.seconds += time.perf_counter() - started
    return result


def mean_nll(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """Mean of -log p(target_i) where logits[i] predicts target_i."""
    if len(targets) == 0:
        return float("nan")
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs[torch.arange(len(targets)), torch.tensor(list(targets), dtype=torch.long)]
    return float(-picked.mean())


class RecomputeSession(Session):
    """Every call feeds the whole prompt + response again (no cache)."""

    def context_logits(self) -> torch.Tensor:
        return forward_rows(self, [self.ids], [[len(self.ids) - 1]])[0][0]

    def open_rows(self, n: int) -> "Rows":
        return _RecomputeRows(self, n)

    def score(self, rows, starts):
        # position p predicts token p + 1; a token at index 0 has nothing to condition on
        starts = [max(1, s) for s in starts]
        keep = [list(range(s - 1, len(r) - 1)) for r, s in zip(rows, starts)]
        scorable = [i for i, k in enumerate(keep) if k]
        nlls = [float("nan")] * len(rows)
        if not scorable:
            return nlls
        logits = forward_rows(self, [rows[i] for i in scorable], [keep[i] for i in scorable])
        for j, i in enumerate(scorable):
            nlls[i] = mean_nll(logits[j], rows[i][starts[i] :])
        return nlls


class _RecomputeRows(Rows):
    def __init__(self, session: RecomputeSession, n: int):
        self.session = session
        self.rows = [list(session.ids) for _ in range(n)]

    def extend(self, live, tokens):
        for i, t in zip(live, tokens):
            self.rows[i].append(int(t))
        rows = [self.rows[i] for i in live]
        logits = forward_rows(self.session, rows, [[len(r) - 1] for r in rows])
        return torch.stack([l[0] for l in logits])
