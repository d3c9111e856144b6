"""The recompute engine: every call feeds the whole prompt + response again, one prompt at a
time. Slow and simple: the oracle the cached engine is tested against. It folds no scoring
into a branch forward and reuses no prefix or branch."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from adafuse.decoding.engine.executor import pad_id
from adafuse.decoding.engine.protocol import Engine, Key, Rows, Scored, Step
from adafuse.decoding.engine.readout import mean_nlls, read_dists, token_logprobs


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

    def context_tensor(self, keys) -> torch.Tensor:
        """[len(keys), vocab]: the logits after each key's ids, one forward per key (the last
        one is remembered while the ids stay as they are, so that rows opened on them start
        from it without another forward)."""
        out = []
        for k in keys:
            ids = self.ids[k]
            memo = self._last.get(k)
            if memo is None or memo[0] != ids:
                memo = self._last[k] = (list(ids), self.full(k, [ids], [(0, len(ids) - 1)])[0])
            out.append(memo[1])
        return torch.stack(out)

    @property
    def _last(self) -> dict:
        if not hasattr(self, "_memo"):
            self._memo = {}
        return self._memo

    def remove(self, key):
        super().remove(key)
        self._last.pop(key, None)

    def open_rows(self, keys, score=None):
        return RecomputeRows(self, keys)  # the oracle scores in score() only

    def score(self, requests) -> Scored:
        out = {}
        for key, (rows, starts) in requests.items():
            # position p predicts token p + 1; a token at index 0 has nothing to condition on
            starts = [max(1, s) for s in starts]
            gather, spans, targets = [], [], []
            for i, (row, s) in enumerate(zip(rows, starts)):
                spans.append((len(gather), max(len(row) - s, 0)))
                targets += row[s:]
                gather += [(i, p) for p in range(s - 1, len(row) - 1)]
            out[key] = mean_nlls(self.full(key, rows, gather), spans, targets) if gather else [float("nan")] * len(rows)
        return Scored(out)


class RecomputeRows(Rows):
    def __init__(self, engine: RecomputeEngine, keys):
        self.engine = engine
        self.keys = list(keys)
        self.rows = [list(engine.ids[k]) for k in self.keys]
        self.fed = [[] for _ in self.keys]
        self.folded = {}
        self.last = list(engine.context_tensor(self.keys)) if self.keys else []  # per row

    def _logits(self, members) -> torch.Tensor:
        """The logits after each listed row's ids, one forward per prompt."""
        by_key: dict[Key, list[int]] = {}
        for i in members:
            by_key.setdefault(self.keys[i], []).append(i)
        result = {}
        for key, group in by_key.items():
            rows = [self.rows[i] for i in group]
            logits = self.engine.full(key, rows, [(j, len(r) - 1) for j, r in enumerate(rows)])
            result.update(zip(group, logits))
        return torch.stack([result[i] for i in members])

    def step(self, live, tokens):
        live, tokens = list(live), [int(t) for t in tokens]
        if not live:
            return []
        before = torch.stack([self.last[i] for i in live])
        for i, t in zip(live, tokens):
            self.rows[i].append(t)
            self.fed[i].append(t)
        logits = self._logits(live)
        for j, i in enumerate(live):
            self.last[i] = logits[j]
        dists, fed = read_dists(logits, self.engine.top_k, before, tokens)
        return [Step(f, d) for f, d in zip(fed, dists)]

    def logprobs(self, queries):
        queries = list(queries)
        if not queries:
            return []
        saved = [list(r) for r in self.rows]
        try:
            parts = []
            for row, position, _ in queries:
                self.rows[row] = list(self.engine.ids[self.keys[row]]) + self.fed[row][:position]
                parts.append(self._logits([row]))
            table = torch.cat(parts)
        finally:
            self.rows = saved
        return token_logprobs(table, [token for *_, token in queries])
