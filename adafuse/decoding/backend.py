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
from adafuse.decoding.text import longest_common_prefix


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


@torch.inference_mode()
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


# --------------------------------------------------------------------------------------------
# Cached engine: one KV cache per model for prompt_m + R.


def _cache_arg(model) -> str:
    """transformers renamed `past_key_values` to `cache` (5.2x); use what this version takes."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"


def _layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers < 4.56


def fork_cache(cache, length: int, rows: Sequence[int] | None = None, repeat: int = 1):
    """A new cache holding the first `length` positions of `cache` (selected rows, repeated).

    Slices are views, and every later update concatenates into new tensors, so the source cache
    is never written: speculative tokens cannot leak into a committed cache. Every layer is a
    plain full-attention layer, so rolling back works on sliding-window models too (the model
    still masks outside the window itself).
    """
    from transformers import DynamicCache

    new = DynamicCache()
    for i, (k, v) in enumerate(_layers(cache)):
        k, v = k[:, :, :length], v[:, :, :length]
        if rows is not None:
            index = torch.tensor(list(rows), dtype=torch.long, device=k.device)
            k, v = k.index_select(0, index), v.index_select(0, index)
        if repeat > 1:
            k = k.expand(repeat * k.shape[0], *k.shape[1:]) if k.shape[0] == 1 else k.repeat_interleave(repeat, 0)
            v = v.expand(repeat * v.shape[0], *v.shape[1:]) if v.shape[0] == 1 else v.repeat_interleave(repeat, 0)
        new.update(k, v, i)
    return new


def cache_length(cache) -> int:
    layers = _layers(cache)
    return int(layers[0][0].shape[-2]) if layers else 0


class PrefixCache:
    """The encoded shared prefix of a task (instruction + few-shot examples) for one model."""

    def __init__(self, ids: list[int], cache):
        self.ids = ids
        self.cache = cache


class CachedSession(Session):
    """Keeps the KV cache of the committed ids and the logits after the last of them.

    - branches (proposals) continue from a fork of the cache, all branches in one batch;
    - scoring feeds every proposal's tokens after the longest common prefix in one padded
      forward over a fork; the winner's row then becomes the committed cache (no extra forward);
    - a commit that re-tokenises earlier ids differently rolls back to the common prefix.
    """

    def __init__(self, lm, context_ids, cost: ModelCost, prefix: PrefixCache | None = None):
        super().__init__(lm, context_ids, cost)
        self._arg = _cache_arg(lm.model)
        self._scored = None
        self.cache, self.last_logits = self._extend(prefix, self.ids)

    @torch.inference_mode()
    def _run(self, ids: torch.Tensor, cache, mask: torch.Tensor | None, keep):
        """One forward of new tokens `ids` [rows, width] over `cache`; logits at `keep`."""
        lm = self.lm
        started = time.perf_counter()
        kwargs = {self._arg: cache, "use_cache": True}
        if mask is not None:
            kwargs["attention_mask"] = mask.to(lm.device)
        out = lm.model(
            input_ids=ids.to(lm.device),
            logits_to_keep=torch.tensor(keep, dtype=torch.long, device=lm.device),
            **kwargs,
        )
        logits = out.logits.float()
        self.cost.forwards += 1
        self.cost.seconds += time.perf_counter() - started
        return logits

    def _extend(self, base: "PrefixCache | None", ids: list[int]):
        """Cache of `ids` and the logits after them, reusing `base` up to the common prefix."""
        keep = 0
        cache = None
        if base is not None:
            keep = min(longest_common_prefix(base.ids, ids), len(ids) - 1)
            cache = fork_cache(base.cache, keep)
        if cache is None:
            from transformers import DynamicCache

            cache = DynamicCache()
        new = torch.tensor([ids[keep:]], dtype=torch.long)
        logits = self._run(new, cache, None, [new.shape[1] - 1])
        self.cost.tokens_fed += new.shape[1]
        return cache, logits[0, 0]

    def context_logits(self) -> torch.Tensor:
        return self.last_logits

    def open_rows(self, n: int) -> "Rows":
        return _CachedRows(self, n)

    def score(self, rows, starts):
        starts = [max(1, s) for s in starts]
        p0 = min(starts) - 1  # first position whose logits are needed
        width = max(len(r) for r in rows) - p0
        pad = _pad_id(self.lm)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), p0 + width), dtype=torch.long)
        mask[:, :p0] = 1
        for i, row in enumerate(rows):
            ids[i, : len(row) - p0] = torch.tensor(row[p0:], dtype=torch.long)
            mask[i, p0 : len(row)] = 1
        # positions (relative to the fed chunk) that score each row, and each row's last one
        keep = sorted({p for r, s in zip(rows, starts) for p in range(s - 1 - p0, len(r) - p0)})
        index = {p: j for j, p in enumerate(keep)}
        cache = fork_cache(self.cache, p0, repeat=len(rows))
        logits = self._run(ids, cache, mask, keep)
        self.cost.tokens_fed += sum(len(r) - p0 for r in rows)
        nlls, last = [], []
        for i, (row, s) in enumerate(zip(rows, starts)):
            cols = [index[p] for p in range(s - 1 - p0, len(row) - 1 - p0)]
            nlls.append(mean_nll(logits[i, cols], row[s:]) if cols else float("nan"))
            last.append(logits[i, index[len(row) - 1 - p0]])
        self._scored = (rows, cache, last)
        return nlls

    def commit(self, ids):
        ids = list(ids)
        scored, self._scored = self._scored, None
        if scored is not None:
            rows, cache, last = scored
            for i, row in enumerate(rows):
                if row == ids:  # the winner's row already holds its keys and values
                    self.cache = fork_cache(cache, len(ids), rows=[i])
                    self.last_logits = last[i]
                    self.ids = ids
                    return
        self.cache, self.last_logits = self._extend(PrefixCache(self.ids, self.cache), ids)
        self.ids = ids

    def close(self) -> None:
        self.cache = self._scored = self.last_logits = None


class _CachedRows(Rows):
    def __init__(self, session: CachedSession, n: int):
        self.session = session
        self.live = list(range(n))
        self.cache = fork_cache(session.cache, len(session.ids), repeat=n)

    def extend(self, live, tokens):
        live = list(live)
        if live != self.live:  # finished branches leave the batch
            position = {b: j for j, b in enumerate(self.live)}
            self.cache = fork_cache(self.cache, cache_length(self.cache),
                                    rows=[position[b] for b in live])
            self.live = live
        ids = torch.tensor([[int(t)] for t in tokens], dtype=torch.long)
        logits = self.session._run(ids, self.cache, None, [0])
        self.session.cost.tokens_fed += len(live)
        return logits[:, 0]
