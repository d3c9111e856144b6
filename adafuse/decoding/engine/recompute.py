"""The recompute engine: every call feeds the whole prompt + response again, one prompt at a
time. Slow and simple: the oracle the cached engine is tested against. It folds no scoring
into a branch forward and reuses no prefix or branch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from adafuse.decoding.engine.executor import pad_id
from adafuse.decoding.engine.protocol import Engine, Key, Rows, mean_nll


def right_padded(rows: Sequence[Sequence[int]], pad: int):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


class RecomputeEngine(Engine):
    def full(self, key: Key, rows: Sequence[Sequence[int]], gather) -> torch.Tensor:
        """Logits at `gather` of one forward over whole rows (right-padded), charged to `key`."""
        ids, mask = right_padded(rows, pad_id(self.lm))
        return self.forward(ids, None, mask, None, gather, {key: sum(len(r) for r in rows)}, "recompute")

    def context_logits(self, key):
        ids = self.ids[key]
        return self.full(key, [ids], [(0, len(ids) - 1)])[0]

    def open_rows(self, keys, score=None):
        return RecomputeRows(self, keys)  # the oracle scores in score() only

    def score(self, requests):
        out = {}
        for key, (rows, starts) in requests.items():
            # position p predicts token p + 1; a token at index 0 has nothing to condition on
            starts = [max(1, s) for s in starts]
            gather, spans = [], []
            for i, (row, s) in enumerate(zip(rows, starts)):
                spans.append((len(gather), len(row) - s))
                gather += [(i, p) for p in range(s - 1, len(row) - 1)]
            nlls = [float("nan")] * len(rows)
            if gather:
                logits = self.full(key, rows, gather)
                for i, ((at, n), row, s) in enumerate(zip(spans, rows, starts)):
                    if n > 0:
                        nlls[i] = mean_nll(logits[at : at + n], row[s:])
            out[key] = nlls
        return out


class RecomputeRows(Rows):
    def __init__(self, engine: RecomputeEngine, keys):
        self.engine = engine
        self.keys = list(keys)
        self.rows = [list(engine.ids[k]) for k in self.keys]
        self.folded = {}

    def extend(self, live, tokens):
        for i, t in zip(live, tokens):
            self.rows[i].append(int(t))
        by_key: dict[Key, list[int]] = {}
        for i in live:
            by_key.setdefault(self.keys[i], []).append(i)
        result = {}
        for key, members in by_key.items():
            rows = [self.rows[i] for i in members]
            logits = self.engine.full(key, rows, [(j, len(r) - 1) for j, r in enumerate(rows)])
            result.update(zip(members, logits))
        return torch.stack([result[i] for i in live])
