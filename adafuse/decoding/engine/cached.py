"""The cached engine: one KV cache per prompt for its committed ids, and the logits after them.

- branches continue from the committed caches, all rows of all prompts in one forward
  (`cached_rows.CachedRows`);
- scoring feeds each proposal's tokens after the longest common prefix, every row of every
  prompt in one padded forward (`width_groups` may split it in two on CPU); the winner's row
  then becomes the committed cache, as does a winner's branch when the model generated it;
- a commit that re-tokenises earlier ids differently rolls back to the common prefix;
- with a shared prefix (and a model that passes `prefix_attention.check`), each prompt's
  cache holds only what follows the prefix, and every forward reads the prefix's keys and
  values in place (`prefix_attention`): no row copies it. Otherwise each prompt's cache
  starts as a copy of the prefix's (`EngineOptions.share_prefix=False` forces that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from adafuse.decoding.engine.batching import by_key, score_rows, width_groups
from adafuse.decoding.engine.cached_rows import CachedRows
from adafuse.decoding.engine.executor import pad_id
from adafuse.decoding.engine.kv_cache import PrefixCache, cache_layers, new_cache, select_rows, stack_caches
from adafuse.decoding.engine.protocol import Engine, Key, Scored, Step
from adafuse.decoding.engine.readout import Dist, read
from adafuse.decoding.output import ModelCost
from adafuse.decoding.text import longest_common_prefix


@dataclass
class Fed:
    """One padded forward over rows of several prompts (`CachedEngine.feed`): the gathered
    logits, each row's first index in them, the batched cache, the common tail width (row r's
    cache starts at `prefix - (p0 - plens[r])`) and each row's length of shared prefix."""

    logits: torch.Tensor
    at: list[int]
    cache: object
    prefix: int
    plens: list[int]


@dataclass
class ScoredRow:
    """A scored row a commit may adopt: its ids, its index in the batched cache, where its
    keys and values start there, the logits after it and its shared-prefix length."""

    ids: list[int]
    index: int
    offset: int
    last_logits: torch.Tensor
    plen: int
    dist: Dist | None = None  # of last_logits, read with the NLLs


@dataclass
class _Context:
    cache: object = None  # batch-1 cache of the committed ids from position `plen` on
    last_logits: torch.Tensor | None = None  # on the model's device, never read whole
    dist: Dist | None = None  # its top tokens, once read (with the forward that computed it)
    plen: int = 0  # positions of the engine's shared prefix this prompt reads in place


class CachedEngine(Engine):
    """Keeps each prompt's KV cache and the logits after its last committed token."""

    def __init__(self, lm, total: ModelCost | None = None, options=None, top_k: int = 2):
        super().__init__(lm, total, options, top_k)
        self.ctx: dict[Key, _Context] = {}
        self.shared: PrefixCache | None = None  # the prefix read in place, once one is added

    def _can_share(self, prefix: PrefixCache | None) -> bool:
        if prefix is None or not self.options.share_prefix:
            return False
        if self.shared is None:
            if not self.executor.shares_prefix():
                return False
            self.shared = prefix
        return self.shared is prefix

    def add(self, key, ids, cost, prefix: PrefixCache | None = None):
        super().add(key, ids, cost)
        self.ctx[key] = ctx = _Context()
        if self._can_share(prefix):
            ctx.plen = self._plen(prefix, self.ids[key])
            self._extend(key, [], None)
        else:
            self._extend(key, prefix.ids if prefix else [], prefix.cache if prefix else None)

    def add_many(self, entries):
        """Prompts that read the shared prefix in place are prefilled together, in one
        right-padded forward; the others one at a time."""
        group = []
        for key, ids, cost, prefix in entries:
            if len(entries) > 1 and self._can_share(prefix):
                Engine.add(self, key, ids, cost)
                plen = self._plen(prefix, self.ids[key])
                self.ctx[key] = _Context(cache=new_cache([]), plen=plen)
                group.append((key, self.ids[key], len(self.ids[key]), plen))
            else:
                self.add(key, ids, cost, prefix)
        if not group:
            return
        fed = self.feed(group, "prefill")
        for r, (key, ids, _, _) in enumerate(group):
            ctx = self.ctx[key]
            ctx.cache = select_rows(fed.cache, [r], fed.prefix, len(ids) - ctx.plen)
            ctx.last_logits, ctx.dist = fed.logits[fed.at[r]], None

    @staticmethod
    def _plen(prefix: PrefixCache, ids: list[int]) -> int:
        """Prefix positions a prompt reads in place: those its own ids share with the prefix,
        leaving at least its last token to feed (its logits start the decode)."""
        return min(longest_common_prefix(prefix.ids, ids), len(ids) - 1)

    def remove(self, key):
        super().remove(key)
        self.ctx.pop(key, None)

    def prefill(self, ids: list[int], cost: ModelCost) -> PrefixCache:
        """Encode a shared prefix once; the result seeds `add` for every item."""
        key = ("prefix", id(ids))
        self.add(key, ids, cost)
        cache = self.ctx[key].cache
        self.remove(key)
        return PrefixCache(list(ids), cache)

    def shared_arg(self, plens: Sequence[int]):
        """The `shared` argument of a forward whose rows read these prefix lengths."""
        if self.shared is None or not any(plens):
            return None
        return self.shared.layers, torch.tensor(list(plens), dtype=torch.long)

    def _extend(self, key, base_ids: list[int], base_cache) -> None:
        """Cache of self.ids[key], reusing base_cache up to the common prefix with base_ids.

        base_cache holds base_ids from position ctx.plen on (the key's own cache), or from 0
        (a prefix's cache being copied, plen 0). A common prefix shorter than plen (a
        re-tokenisation reaching into the shared prefix) shortens the part read in place."""
        ids = self.ids[key]
        ctx = self.ctx[key]
        keep = ctx.plen
        if base_cache is not None:
            keep = min(longest_common_prefix(base_ids, ids), len(ids) - 1)
            if keep < ctx.plen:
                ctx.plen, base_cache = keep, None
        start = keep - ctx.plen
        layers = [(k[:, :, :start], v[:, :, :start]) for k, v in cache_layers(base_cache)] if start > 0 else []
        cache = new_cache(layers)
        new = torch.tensor([ids[keep:]], dtype=torch.long)
        logits = self.forward(new, cache, None, None, [(0, new.shape[1] - 1)], {key: new.shape[1]},
                              "prefill", self.shared_arg([ctx.plen]))
        ctx.cache, ctx.last_logits, ctx.dist = cache, logits[0], None

    def context_tensor(self, keys) -> torch.Tensor:
        """[len(keys), vocab]: the logits after each key's committed ids (on the device)."""
        return torch.stack([self.ctx[k].last_logits for k in keys])

    def contexts(self, keys, k=None):
        """Read where not read yet (a prefill, an extend): all such keys in one read."""
        keys, k = list(keys), max(2, k or self.top_k)
        vocab = self.ctx[keys[0]].last_logits.shape[-1] if keys else 0
        missing = [key for key in keys if self.ctx[key].dist is None or len(self.ctx[key].dist.ids) < min(k, vocab)]
        if missing:
            for key, dist in zip(missing, read(self.context_tensor(missing), k)[0]):
                self.ctx[key].dist = dist
        return {key: self.ctx[key].dist for key in keys}

    def open_rows(self, keys, score=None):
        """Branch rows; with `score` (requests as for `score()`), their first step and the
        scoring of those rows are one forward where that pays (`width_groups`). The NLLs land
        in the rows' `folded`."""
        return CachedRows(self, keys, score)

    def score(self, requests) -> Scored:
        flat = score_rows(requests)
        nll = [float("nan")] * len(flat)
        held = []
        for group in width_groups([len(row) - p0 for _, row, _, p0 in flat], self.lm.device.type,
                                  self.options.split_waste):
            part = [flat[i] for i in group]
            values, adoptable, _ = self.collect(part, range(len(part)), self.feed(part))
            held.append(adoptable)
            for i, value in zip(group, values):
                nll[i] = value
        return Scored(by_key(flat, nll), held)

    def feed(self, flat, kind="score") -> Fed:
        """One padded forward over rows of several prompts.

        flat: (key, row, s, p0) per row: row[p0:] is fed after the first p0 committed ids of
        key's cache, and logits are gathered at positions s-1 .. len(row)-1 (the ones that
        predict row[s:], then the last). A row reads min(plen, p0) positions of the shared
        prefix and the rest of its first p0 ids from its tail cache."""
        plens = [min(self.ctx[key].plen, p0) for key, _, _, p0 in flat]
        tails = [p0 - plen for (*_, p0), plen in zip(flat, plens)]
        prefix = max(tails)
        width = max(len(row) - p0 for _, row, _, p0 in flat)
        pad = pad_id(self.lm)
        ids = torch.full((len(flat), width), pad, dtype=torch.long)
        mask = torch.zeros((len(flat), prefix + width), dtype=torch.long)
        positions = torch.zeros((len(flat), width), dtype=torch.long)
        gather, at, charge = [], [], {}
        for r, ((key, row, s, p0), tail) in enumerate(zip(flat, tails)):
            chunk = row[p0:]
            ids[r, : len(chunk)] = torch.tensor(chunk, dtype=torch.long)
            mask[r, prefix - tail : prefix + len(chunk)] = 1
            positions[r] = torch.arange(p0, p0 + width)
            at.append(len(gather))
            gather += [(r, p) for p in range(s - 1 - p0, len(row) - p0)]
            charge[key] = charge.get(key, 0) + len(chunk)
        shared = self.shared_arg(plens)
        padded = any(len(row) - p0 < width or tail < prefix for (_, row, _, p0), tail in zip(flat, tails))
        cache = stack_caches([(self.ctx[key].cache, tail) for (key, *_), tail in zip(flat, tails)],
                             prefix, room=width)
        logits = self.forward(ids, cache, mask if padded or shared else None,
                              positions if padded or shared else None, gather, charge, kind, shared)
        return Fed(logits, at, cache, prefix, plens)

    def collect(self, flat, batch_rows, fed: Fed, branch: tuple | None = None) -> tuple[list[float], tuple, list]:
        """Mean NLL of each scored row (`flat`, at rows `batch_rows` of `fed`), in the order of
        `flat`, and what a commit may adopt of them: ({key: [ScoredRow]}, the batched cache
        holding their keys and values), the top tokens after each row (the next round's
        context where it wins) included. With `branch` = (logits, before, tokens) of branch
        rows stepped in the same forward, also their Steps. One read for all of it."""
        spans, targets, last = [], [], []
        for (key, row, s, p0), r in zip(flat, batch_rows):
            n = len(row) - s
            first = fed.at[r]
            spans.append((first, max(n, 0)))
            targets += row[s:]
            last.append(first + n)
        last_logits = fed.logits[torch.tensor(last, dtype=torch.long, device=fed.logits.device)]
        logits, before, tokens = branch if branch is not None else (None, None, None)
        table = last_logits if logits is None else torch.cat([logits, last_logits])
        dists, fed_lps, nlls = read(table, self.top_k, before, tokens, nll=(fed.logits, spans, targets))
        n = 0 if logits is None else logits.shape[0]
        per_key: dict[Key, list[ScoredRow]] = {}
        for (key, row, s, p0), r, at, dist in zip(flat, batch_rows, last, dists[n:]):
            per_key.setdefault(key, []).append(
                ScoredRow(row, r, fed.prefix - (p0 - fed.plens[r]), fed.logits[at], fed.plens[r], dist))
        steps = [Step(f, d) for f, d in zip(fed_lps, dists[:n])]
        return nlls, (per_key, fed.cache), steps

    def commit(self, updates, held=()):
        """New committed ids; a key's cache is taken from a scoring row of `held` (this
        round's `Scored` values and `Rows`, folded scoring included) that holds exactly those
        ids, else from a branch row of `held` that fed them (a span this model generated),
        else extended from the old cache after the common prefix (rolling back where earlier
        ids changed)."""
        scored = [entry for h in held for entry in _adoptable_scored(h)]
        branches = [h for h in held if isinstance(h, CachedRows)]
        for key, ids in updates.items():
            ctx = self.ctx[key]
            old_ids = self.ids[key]
            self.ids[key] = list(ids)
            if not (self._adopt_scored(ctx, key, ids, scored) or self._adopt_branch(ctx, key, old_ids, ids, branches)):
                self._extend(key, old_ids, ctx.cache)

    @staticmethod
    def _adopt_scored(ctx, key, ids, scored) -> bool:
        """The winner's scoring row already holds its keys and values."""
        for per_key, cache in scored:
            for entry in per_key.get(key, ()):
                if entry.ids == ids:
                    ctx.cache = select_rows(cache, [entry.index], entry.offset, len(ids) - entry.plen)
                    ctx.last_logits, ctx.plen, ctx.dist = entry.last_logits, entry.plen, entry.dist
                    return True
        return False

    @staticmethod
    def _adopt_branch(ctx, key, old_ids, ids, branches) -> bool:
        """A winner this model generated itself is already in its branch's cache."""
        if ids[: len(old_ids)] != old_ids:
            return False
        added = ids[len(old_ids):]
        for rows in branches:
            found = rows.adopt(key, added)
            if found is not None:
                cache, position, pad, last_logits, dist = found
                ctx.cache = select_rows(cache, [position], pad, len(ids) - ctx.plen)
                ctx.last_logits, ctx.dist = last_logits, dist
                return True
        return False


def _adoptable_scored(held) -> list:
    """The (per-key scored rows, cache) entries of a `Scored` or of rows' folded scoring."""
    if isinstance(held, Scored):
        return held.held
    return getattr(held, "scored", [])
