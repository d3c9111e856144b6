"""Branch rows of the cached engine: rows of several prompts in one left-padded batch cache,
each step adding one column."""

from __future__ import annotations

import torch

from adafuse.decoding.engine.batching import by_key, score_rows, width_groups
from adafuse.decoding.engine.kv_cache import select_rows, stack_caches
from adafuse.decoding.engine.protocol import Key, Rows, Step
from adafuse.decoding.engine.readout import read_dists, token_logprobs

ROWS_ROOM = 24  # positions reserved for branch growth; a longer branch grows its buffer


class CachedRows(Rows):
    """Rows of several prompts in one left-padded batch cache; each step adds one column.

    With `score` requests, the first step feeds each row's token together with those rows
    (right-padded after it), so that a later model scores the proposals already made in the
    forward it needs anyway; the branch rows then continue from that forward's cache.
    Branch rows continue committed contexts, so each reads its prompt's plen of the prefix.

    Every distribution a row reaches stays on the device (`dists[row][p]`: after p fed
    tokens, p = 0 the context's), for `logprobs` and for a commit adopting the row."""

    def __init__(self, engine, keys, score=None):
        self.engine = engine
        self.keys = list(keys)
        self.plens = [engine.ctx[k].plen for k in self.keys]
        self.live = list(range(len(self.keys)))
        self.left: dict[int, tuple[object, int]] = {}  # rows that left: (their cache, position)
        self.cache = None  # built by the first step
        self._score = score or None
        # {key: {(row, start): NLL}} of the `score` requests, scored with the first step: in
        # its forward, or in a scoring forward just before where one would pad too much
        self.folded: dict = {}
        self.scored: list = []  # what a commit may adopt of that scoring (`CachedEngine.collect`)
        self.fed: list[list[int]] = [[] for _ in self.keys]
        # per row, the logits after each number of fed tokens: (tensor, its row there)
        self.context = engine.context_tensor(self.keys) if self.keys else None
        self.dists: list[list[tuple[torch.Tensor, int]]] = [[(self.context, r)] for r in range(len(self.keys))]
        self.read: list[list] = [[None] for _ in self.keys]  # the Dists read after each step

    def _stack(self) -> None:
        engine = self.engine
        lengths = [len(engine.ids[k]) for k in self.keys]
        tails = [n - plen for n, plen in zip(lengths, self.plens)]
        width = max(tails)
        self.pads = [width - n for n in tails]
        self.cache = stack_caches([(engine.ctx[k].cache, n) for k, n in zip(self.keys, tails)],
                                  width, room=ROWS_ROOM)
        self.padded = len(set(tails)) > 1
        self.positions = torch.tensor(lengths, dtype=torch.long)
        self.mask = torch.zeros((len(self.keys), width), dtype=torch.long)
        for r, n in enumerate(tails):
            self.mask[r, width - n :] = 1

    def _fold(self, nlls, adoptable: list) -> None:
        self.scored += adoptable
        for key, (rows, starts) in self._score.items():
            self.folded[key] = {(tuple(r), s): v for r, s, v in zip(rows, starts, nlls.get(key, []))}

    def _first_with_scoring(self, live, tokens, before) -> tuple[torch.Tensor, list[Step]] | None:
        """The first step and the scoring in one forward (and one read): the branch rows'
        logits and Steps; None (nothing run) where that forward would pad the one-token
        branch rows so much that two forwards cost less (`width_groups`)."""
        engine = self.engine
        branch = []
        for row, token in zip(live, tokens):
            ids = engine.ids[self.keys[row]]
            branch.append((self.keys[row], ids + [int(token)], len(ids) + 1, len(ids)))
        scoring = score_rows(self._score)
        widths = [1] * len(branch) + [len(row) - p0 for _, row, _, p0 in scoring]
        if len(width_groups(widths, engine.lm.device.type, engine.options.split_waste)) > 1:
            return None
        n = len(branch)
        fed = engine.feed(branch + scoring, "step+score")
        logits = fed.logits[[fed.at[j] for j in range(n)]]
        nlls, adoptable, steps = engine.collect(scoring, range(n, n + len(scoring)), fed, (logits, before, tokens))
        self._fold(by_key(scoring, nlls), [adoptable])
        self.live = list(live)
        self.pads = [0] * len(self.keys)
        lengths = []
        for j, (row, (_, ids, _, p0)) in enumerate(zip(live, branch)):
            self.pads[row] = fed.prefix - (p0 - fed.plens[j])
            lengths.append(len(ids))
        self.cache = select_rows(fed.cache, list(range(n)), 0, fed.prefix + 1, room=ROWS_ROOM)
        self.positions = torch.tensor(lengths, dtype=torch.long)
        self.mask = torch.zeros((n, fed.prefix + 1), dtype=torch.long)
        for j, row in enumerate(live):
            self.mask[j, self.pads[row] :] = 1
        self.padded = any(self.pads[row] for row in live)
        return logits, steps

    def step(self, live, tokens) -> list[Step]:
        live, tokens = list(live), [int(t) for t in tokens]
        if not live:
            return []
        before = torch.stack([self._dist(row, len(self.fed[row])) for row in live])
        logits, steps = self._forward(live, tokens, before)
        if steps is None:
            dists, fed = read_dists(logits, self.engine.top_k, before, tokens)
            steps = [Step(f, d) for f, d in zip(fed, dists)]
        for j, (row, token, result) in enumerate(zip(live, tokens, steps)):
            self.fed[row].append(token)
            self.dists[row].append((logits, j))
            self.read[row].append(result.dist)
        return steps

    def _dist(self, row: int, position: int) -> torch.Tensor:
        tensor, at = self.dists[row][position]
        return tensor[at]

    def logprobs(self, queries):
        queries = list(queries)
        if not queries:
            return []
        table = torch.stack([self._dist(row, position) for row, position, _ in queries])
        return token_logprobs(table, [token for *_, token in queries])

    def adopt(self, key, added: list[int]):
        """(cache, batch position, left padding, logits after, their Dist) of a row of `key`
        whose fed tokens start with `added` (at least one), or None."""
        k = len(added)
        for row, fed in enumerate(self.fed):
            if self.keys[row] == key and 0 < k <= len(fed) and fed[:k] == added:
                cache, position, pad = self._locate(row)
                return cache, position, pad, self._dist(row, k), self.read[row][k]
        return None

    def _forward(self, live, tokens, before) -> tuple[torch.Tensor, list[Step] | None]:
        """The logits after the step, and its Steps where they were read with a scoring."""
        if self.cache is None:
            if self._score:
                first = self._first_with_scoring(live, tokens, before)
                if first is not None:
                    return first
                scored = self.engine.score(self._score)
                self._fold(scored.nll, scored.held)
            self._stack()
        if live != self.live:  # finished rows leave the batch; their caches stay readable
            where = {row: j for j, row in enumerate(self.live)}
            for row in set(self.live) - set(live):
                self.left[row] = (self.cache, where[row])
            picked = [where[row] for row in live]
            self.cache = select_rows(self.cache, picked, room=ROWS_ROOM)
            self.positions = self.positions[picked]
            self.mask = self.mask[picked]
            self.live = live
        self.mask = torch.cat([self.mask, torch.ones((len(live), 1), dtype=torch.long)], dim=1)
        ids = torch.tensor([[int(t)] for t in tokens], dtype=torch.long)
        charge: dict[Key, int] = {}
        for row in live:
            charge[self.keys[row]] = charge.get(self.keys[row], 0) + 1
        shared = self.engine.shared_arg([self.plens[row] for row in live])
        explicit = self.padded or shared is not None
        logits = self.engine.forward(
            ids, self.cache, self.mask if explicit else None,
            self.positions[:, None] if explicit else None,
            [(j, 0) for j in range(len(live))], charge, "step", shared)
        self.positions = self.positions + 1
        return logits, None

    def _locate(self, row: int) -> tuple[object, int, int]:
        """(cache, batch position, left padding) holding a row's keys and values."""
        if row in self.left:
            cache, position = self.left[row]
        else:
            cache, position = self.cache, self.live.index(row)
        return cache, position, self.pads[row]
