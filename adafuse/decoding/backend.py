"""Per-model forward passes behind one small interface, so decoders never touch caches.

An `Engine` runs one model for several prompts at once (keyed by the caller) and offers what
a round needs:
- `add(key, ids)` / `remove(key)`: a prompt joins or leaves the batch;
- `context_logits(key)`: next-token logits right after the committed ids of prompt_m + R;
- `open_rows(keys, score=None)`: branches continuing the committed contexts (one row per key
  listed); `Rows.extend(live, tokens)` feeds one token to each live row and returns their
  next-token logits: one forward for all rows of all prompts. Rows passed as `score` are
  scored in the first of those forwards (`prescored`), which saves a later model the
  scoring forward for the proposals made before it;
- `score({key: (rows, starts)})`: mean NLL of row[start:] for every row, one forward;
- `commit({key: ids})`: the new committed ids.

`CachedEngine` keeps one KV cache per prompt; `RecomputeEngine` re-encodes from scratch on
every call, one prompt at a time: slow, simple, and the oracle the cached engine is tested
against.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

from adafuse.decoding import cpu_linear, prefix_attention
from adafuse.decoding.output import ModelCost
from adafuse.decoding.text import longest_common_prefix

Key = Hashable


def mean_nll(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """Mean of -log p(target_i) where logits[i] predicts target_i."""
    if len(targets) == 0:
        return float("nan")
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs[torch.arange(len(targets)), torch.tensor(list(targets), dtype=torch.long)]
    return float(-picked.mean())


def _pad_id(lm) -> int:
    pad = lm.tokenizer.pad_token_id
    if pad is None:
        pad = lm.tokenizer.eos_token_id
    return int(pad or 0)


class Runner:
    """One model's forward: new tokens over an optional cache, logits at chosen (row, pos).

    Only the positions asked for go through the LM head: with Gemma's 262k vocabulary the
    head costs as much per position as the rest of the model. Where the model's own forward
    would post-process logits in a way the head path does not reproduce, it falls back to
    `logits_to_keep` (checked once per model on a short input).
    """

    # float32 models on CPU: run the linear layers through oneDNN over weights packed once
    # (`cpu_linear.pack_model`), where the copies fit in half the memory available
    pack_cpu_weights = True

    def __init__(self, lm, total: ModelCost):
        self.lm = lm
        self.total = total
        self.cache_arg = self._cache_arg(lm.model)
        self.packed = self.pack_cpu_weights and cpu_linear.pack_model(lm.model)
        # checked once per model object, not per engine (an engine lives one generate call)
        self._head_path: bool | None = getattr(lm.model, "_adafuse_head_path", None)

    @staticmethod
    def _cache_arg(model) -> str:
        # transformers renamed `past_key_values` to `cache` (5.2x); use what this version takes
        params = inspect.signature(model.forward).parameters
        return "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"

    def _head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.lm.model.get_output_embeddings()
        if cpu_linear.fp32_cpu_head(hidden, head):
            logits = cpu_linear.head_logits(hidden, head, pack=self.packed)
        else:
            logits = head(hidden)
        cap = getattr(self.lm.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def _check_head_path(self, ids: torch.Tensor) -> bool:
        model = self.lm.model
        try:
            if not hasattr(model, "base_model") or model.get_output_embeddings() is None:
                return False
            probe = ids[:1, : min(4, ids.shape[1])].to(self.lm.device)
            full = model(input_ids=probe, use_cache=False).logits.float()
            hidden = model.base_model(input_ids=probe, use_cache=False).last_hidden_state
            mine = self._head_logits(hidden).float()
            return bool(torch.allclose(full, mine, atol=1e-3, rtol=1e-3))
        except Exception:  # noqa: BLE001 - any surprise: use the model's own forward
            return False

    def shares_prefix(self) -> bool:
        """Whether this model computes correctly through the shared-prefix attention (checked
        once per model object on a short probe; see `prefix_attention.check`)."""
        model = self.lm.model
        ok = getattr(model, "_adafuse_shared_prefix", None)
        if ok is None:
            ok = prefix_attention.check(model, self.cache_arg)
            try:
                model._adafuse_shared_prefix = ok
            except AttributeError:
                pass
        return ok

    @torch.inference_mode()
    def __call__(self, ids, cache, mask, positions, gather, charge, kind="other",
                 shared=None) -> tuple[torch.Tensor, float, int]:
        """ids [rows, width]; mask [rows, cached + width] or None; positions [rows, width] or
        None; gather: (row, column) pairs; charge: {key: tokens fed} for the cost counters;
        kind: what the forward is for (the totals count forwards and seconds by kind);
        shared: (prefix layers, [rows] prefix positions each row sees) where the cache holds
        only the rows' tails after a shared prefix (positions are then absolute).
        Returns the gathered logits [len(gather), vocab], the seconds taken and tokens fed."""
        lm = self.lm
        if self._head_path is None:
            self._head_path = self._check_head_path(ids)
            try:
                lm.model._adafuse_head_path = self._head_path
            except AttributeError:
                pass
        started = time.perf_counter()
        kwargs = {"input_ids": ids.to(lm.device), "use_cache": cache is not None}
        if cache is not None:
            kwargs[self.cache_arg] = cache
        scope = contextlib.nullcontext()
        if shared is not None:
            layers, plen = shared
            rows, width = ids.shape
            cached = cache.get_seq_length() if cache is not None else 0
            if positions is None:
                positions = plen[:, None] + cached + torch.arange(width)[None, :]
            valid = mask.bool() if mask is not None else torch.ones((rows, cached + width), dtype=torch.bool)
            scope = prefix_attention.active(lm.model, prefix_attention.PrefixContext(layers, plen, valid, positions))
        elif mask is not None:
            kwargs["attention_mask"] = mask.to(lm.device)
        if positions is not None:
            kwargs["position_ids"] = positions.to(lm.device)
        rows = torch.tensor([r for r, _ in gather], dtype=torch.long, device=lm.device)
        cols = [c for _, c in gather]
        with scope:
            if self._head_path:
                hidden = lm.model.base_model(**kwargs).last_hidden_state
                cols_t = torch.tensor(cols, dtype=torch.long, device=lm.device)
                logits = self._head_logits(hidden[rows, cols_t])
            else:
                keep = sorted(set(cols))
                index = {c: j for j, c in enumerate(keep)}
                out = lm.model(logits_to_keep=torch.tensor(keep, dtype=torch.long, device=lm.device), **kwargs)
                cols_t = torch.tensor([index[c] for c in cols], dtype=torch.long, device=lm.device)
                logits = out.logits[rows, cols_t]
        logits = logits.float()
        seconds = time.perf_counter() - started
        fed = sum(charge.values())
        self.total.forwards += 1
        self.total.tokens_fed += fed
        self.total.seconds += seconds
        self.total.count_kind(kind, 1, seconds)
        return logits, seconds, fed


class Engine:
    """One model, several prompts. Subclasses implement the forwards."""

    def __init__(self, lm, total: ModelCost | None = None):
        self.lm = lm
        self.total = total or ModelCost(lm.name)
        self.run = Runner(lm, self.total)
        self.costs: dict[Key, ModelCost] = {}
        self.ids: dict[Key, list[int]] = {}
        # {key: {(row, start): mean NLL}}: rows scored ahead, with the round's first branch step
        self.prescored: dict[Key, dict[tuple[tuple[int, ...], int], float]] = {}

    def _charge(self, charge: dict[Key, int], seconds: float, fed: int) -> None:
        """A batched forward counts once for each prompt it serves; its seconds are shared
        in proportion to the tokens each prompt fed."""
        for key, tokens in charge.items():
            cost = self.costs[key]
            cost.forwards += 1
            cost.tokens_fed += tokens
            cost.seconds += seconds * (tokens / fed if fed else 1 / len(charge))

    def forward(self, ids, cache, mask, positions, gather, charge, kind="other", shared=None):
        logits, seconds, fed = self.run(ids, cache, mask, positions, gather, charge, kind, shared)
        self._charge(charge, seconds, fed)
        return logits

    def add(self, key: Key, ids: Sequence[int], cost: ModelCost, prefix=None) -> None:
        if not ids:
            raise ValueError(f"empty prompt for model {self.lm.name!r}: nothing to condition on")
        self.costs[key] = cost
        self.ids[key] = list(ids)

    def add_many(self, entries: Sequence[tuple]) -> None:
        """Several prompts join at once: (key, ids, cost, prefix) each, as for `add`."""
        for key, ids, cost, prefix in entries:
            self.add(key, ids, cost, prefix)

    def remove(self, key: Key) -> None:
        self.costs.pop(key, None)
        self.ids.pop(key, None)

    def context_logits(self, key: Key) -> torch.Tensor:
        raise NotImplementedError

    def open_rows(self, keys: Sequence[Key], score=None) -> Rows:
        """Branch rows continuing the committed contexts, one per key listed. `score`: rows
        to score (as for `score()`) in the same forward as the first step, where the engine
        can; their NLLs then land in `prescored`."""
        raise NotImplementedError

    def score(self, requests: dict[Key, tuple[list[list[int]], list[int]]]) -> dict[Key, list[float]]:
        raise NotImplementedError

    def commit(self, updates: dict[Key, list[int]]) -> None:
        for key, ids in updates.items():
            self.ids[key] = list(ids)

    # whether a proposer's own span is scored from the logits it was generated with
    reuses_own_spans = False

    def remember_branches(self, rows: Rows, branches: dict[int, tuple[list[int], list]]) -> None:
        """The round's branches (row: (tokens, logits after each fed token)), which a commit
        of a model's own span may adopt."""


class Rows:
    def extend(self, live: Sequence[int], tokens: Sequence[int]) -> torch.Tensor:
        """Append tokens[i] to row live[i]; return [len(live), vocab] next-token logits."""
        raise NotImplementedError


def _right_padded(rows: Sequence[Sequence[int]], pad: int):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


# --------------------------------------------------------------------------------------------
# Recompute: every call feeds the whole prompt + response again, one prompt at a time.


class RecomputeEngine(Engine):
    def _full(self, key: Key, rows: Sequence[Sequence[int]], gather) -> torch.Tensor:
        ids, mask = _right_padded(rows, _pad_id(self.lm))
        return self.forward(ids, None, mask, None, gather, {key: sum(len(r) for r in rows)}, "recompute")

    def context_logits(self, key):
        ids = self.ids[key]
        return self._full(key, [ids], [(0, len(ids) - 1)])[0]

    def open_rows(self, keys, score=None):
        return _RecomputeRows(self, keys)  # the oracle scores in score() only

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
                logits = self._full(key, rows, gather)
                for i, ((at, n), row, s) in enumerate(zip(spans, rows, starts)):
                    if n > 0:
                        nlls[i] = mean_nll(logits[at : at + n], row[s:])
            out[key] = nlls
        return out


class _RecomputeRows(Rows):
    def __init__(self, engine: RecomputeEngine, keys):
        self.engine = engine
        self.keys = list(keys)
        self.rows = [list(engine.ids[k]) for k in self.keys]

    def extend(self, live, tokens):
        for i, t in zip(live, tokens):
            self.rows[i].append(int(t))
        by_key: dict[Key, list[int]] = {}
        for i in live:
            by_key.setdefault(self.keys[i], []).append(i)
        result = {}
        for key, members in by_key.items():
            rows = [self.rows[i] for i in members]
            logits = self.engine._full(key, rows, [(j, len(r) - 1) for j, r in enumerate(rows)])
            result.update(zip(members, logits))
        return torch.stack([result[i] for i in live])


# --------------------------------------------------------------------------------------------
# Cached: one KV cache per prompt for its committed ids.


def _layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers < 4.56


def _new_cache(layers, room: int = 0):
    """A cache of plain full-attention layers holding `layers`' tensors.

    With `room`, each layer gets a buffer with that many free positions, so that the next
    forwards write in place instead of copying the whole cache at every step.
    Every later update writes into new memory, so the tensors given here (often views of a
    committed cache) are never written: speculative tokens cannot leak into a committed
    cache. Full layers roll back on sliding-window models too: the model masks outside its
    window itself.
    """
    from transformers import DynamicCache

    cache = DynamicCache()
    if room and layers and hasattr(cache, "layers"):
        growing = _growing_layer_class()
        cache.layers = [growing(k, v, room) for k, v in layers]
        return cache
    for i, (k, v) in enumerate(layers):
        cache.update(k, v, i)
    return cache


@functools.cache
def _growing_layer_class():
    """Defined on first use, so that importing adafuse does not import transformers."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A full-attention cache layer in a buffer with free room: updates write in place."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int):
            super().__init__()
            b, h, n, d = keys.shape
            self._k = keys.new_empty((b, h, n + room, d))
            self._v = values.new_empty((b, values.shape[1], n + room, values.shape[3]))
            self._k[:, :, :n] = keys
            self._v[:, :, :n] = values
            self._n = n
            self.device, self.dtype = keys.device, keys.dtype
            self.is_initialized = True
            self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]

        def update(self, key_states, value_states, *args, **kwargs):
            w = key_states.shape[-2]
            if self._n + w > self._k.shape[2]:  # out of room: grow by doubling
                extra = max(w, self._k.shape[2])
                self._k = torch.cat([self._k, self._k.new_empty((*self._k.shape[:2], extra, self._k.shape[3]))], 2)
                self._v = torch.cat([self._v, self._v.new_empty((*self._v.shape[:2], extra, self._v.shape[3]))], 2)
            self._k[:, :, self._n : self._n + w] = key_states
            self._v[:, :, self._n : self._n + w] = value_states
            self._n += w
            self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]
            return self.keys, self.values

        def crop(self, tokens_to_remove: int) -> None:
            self._n = max(0, self._n - abs(tokens_to_remove)) if tokens_to_remove < 0 else min(self._n, tokens_to_remove)
            self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self._k, self._v = self._k[indices], self._v[indices]
            self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]

    return GrowingLayer


def stack_caches(parts: Sequence[tuple[object, int]], width: int, room: int = 0):
    """One batched cache from (cache, length) parts, each left-padded to `width` positions,
    with `room` free positions per layer for the forwards that follow."""
    layers = []
    same = all(c is parts[0][0] and n == width for c, n in parts)
    for per_row in zip(*(_layers(c) for c, _ in parts)):
        k0, v0 = per_row[0]
        if same:  # rows of one prompt: views of its cache, copied once into the buffers
            shape = (len(parts), *k0.shape[1:2], width, k0.shape[3])
            layers.append((k0[:, :, :width].expand(shape), v0[:, :, :width].expand(
                (len(parts), *v0.shape[1:2], width, v0.shape[3]))))
            continue
        keys = k0.new_zeros((len(parts), k0.shape[1], width, k0.shape[3]))
        values = v0.new_zeros((len(parts), v0.shape[1], width, v0.shape[3]))
        for r, ((k, v), (_, length)) in enumerate(zip(per_row, parts)):
            if length:
                keys[r, :, width - length :] = k[0, :, :length]
                values[r, :, width - length :] = v[0, :, :length]
        layers.append((keys, values))
    return _new_cache(layers, room)


def select_rows(cache, rows: Sequence[int], start: int = 0, length: int | None = None, room: int = 0):
    """A cache of the given batch rows (positions start:start+length), as views or copies."""
    index = None
    out = []
    for k, v in _layers(cache):
        end = k.shape[2] if length is None else start + length
        if len(rows) == 1:
            r = rows[0]
            out.append((k[r : r + 1, :, start:end], v[r : r + 1, :, start:end]))
            continue
        if index is None:
            index = torch.tensor(list(rows), dtype=torch.long, device=k.device)
        out.append((k.index_select(0, index)[:, :, start:end], v.index_select(0, index)[:, :, start:end]))
    return _new_cache(out, room)


def _score_rows(requests) -> list[tuple]:
    """score() requests as (key, row, s, p0) rows: a prompt's rows share the first fed
    position p0, one before its earliest scored token (position p predicts token p + 1, so a
    token at index 0 has nothing to condition on)."""
    flat = []
    for key, (rows, starts) in requests.items():
        starts = [max(1, s) for s in starts]
        p0 = min(starts) - 1
        flat += [(key, row, s, p0) for row, s in zip(rows, starts)]
    return flat


def _by_key(flat, values) -> dict[Key, list]:
    """{key: [value per row of that key]} for rows (key, ...) and one value per row."""
    out: dict[Key, list] = {}
    for (key, *_), value in zip(flat, values):
        out.setdefault(key, []).append(value)
    return out


ROWS_ROOM = 24  # positions reserved for branch growth; a longer branch grows its buffer

# On CPU each position a forward feeds costs compute, padding included, and a forward has a
# fixed cost of roughly this many positions' worth. On the 2-core VM Gemma 3's one-token step
# for 24 rows took 78 ms; a further position costs its ~0.2 GFLOP of linear layers, about 1.3 ms
# at the ~150 GFLOPS the packed products reach (an estimate from FLOPs, not a measurement).
# A padded forward that would waste more positions than this is split in two by width; A/B at
# batch 8 in bench/RESULTS.md (session 5).
SPLIT_WASTE = 48


def width_groups(widths: Sequence[int], device_type: str) -> list[list[int]]:
    """Row indices for padded forwards: one group (all rows, in order), or, on CPU, two
    groups (the shorter rows, the longer rows) where that saves more than `SPLIT_WASTE`
    padded positions. On a GPU positions are nearly free next to a forward's launch cost,
    so rows always share one forward."""
    everything = [list(range(len(widths)))]
    if device_type != "cpu" or len(widths) < 2:
        return everything
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    full = len(widths) * widths[order[-1]]
    saved, cut = max((full - i * widths[order[i - 1]] - (len(order) - i) * widths[order[-1]], i)
                     for i in range(1, len(order)))
    return [order[:cut], order[cut:]] if saved > SPLIT_WASTE else everything


class PrefixCache:
    """The encoded shared prefix of a task (instruction + few-shot examples) for one model."""

    def __init__(self, ids: list[int], cache):
        self.ids = ids
        self.cache = cache
        self.layers = _layers(cache)


@dataclass
class _Context:
    cache: object = None  # batch-1 cache of the committed ids from position `plen` on
    last_logits: torch.Tensor | None = None
    # this round's scoring forwards: ([(row, batch row, offset, last logits, plen)], their cache)
    scored: list = field(default_factory=list)
    plen: int = 0  # positions of the engine's shared prefix this prompt reads in place


class CachedEngine(Engine):
    """Keeps each prompt's KV cache and the logits after its last committed token.

    - branches continue from the committed caches, all rows of all prompts in one forward;
    - scoring feeds each proposal's tokens after the longest common prefix, every row of every
      prompt in one padded forward; the winner's row then becomes the committed cache;
    - a commit that re-tokenises earlier ids differently rolls back to the common prefix;
    - with a shared prefix (and a model that passes `prefix_attention.check`), each prompt's
      cache holds only what follows the prefix, and every forward reads the prefix's keys and
      values in place (`prefix_attention`): no row copies it. Otherwise each prompt's cache
      starts as a copy of the prefix's (`share_prefix = False` forces that).
    """

    reuses_own_spans = True
    share_prefix = True

    def __init__(self, lm, total: ModelCost | None = None):
        super().__init__(lm, total)
        self.ctx: dict[Key, _Context] = {}
        self._branches = None
        self.shared: PrefixCache | None = None  # the prefix read in place, once one is added

    def remember_branches(self, rows, branches):
        self._branches = (rows, branches)

    def _can_share(self, prefix: PrefixCache | None) -> bool:
        if prefix is None or not self.share_prefix:
            return False
        if self.shared is None:
            if not self.run.shares_prefix():
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
                self.ctx[key] = _Context(cache=_new_cache([]), plen=plen)
                group.append((key, self.ids[key], len(self.ids[key]), plen))
            else:
                self.add(key, ids, cost, prefix)
        if not group:
            return
        logits, at, cache, width, _ = self._feed(group, "prefill")
        for r, (key, ids, _, _) in enumerate(group):
            ctx = self.ctx[key]
            ctx.cache = select_rows(cache, [r], width, len(ids) - ctx.plen)
            ctx.last_logits = logits[at[r]]

    @staticmethod
    def _plen(prefix: PrefixCache, ids: list[int]) -> int:
        """Prefix positions a prompt reads in place: those its own ids share with the prefix,
        leaving at least its last token to feed (its logits start the decode)."""
        return min(longest_common_prefix(prefix.ids, ids), len(ids) - 1)

    def remove(self, key):
        super().remove(key)
        self.ctx.pop(key, None)
        self.prescored.pop(key, None)

    def prefill(self, ids: list[int], cost: ModelCost) -> PrefixCache:
        """Encode a shared prefix once; the result seeds `add` for every item."""
        key = ("prefix", id(ids))
        self.add(key, ids, cost)
        cache = self.ctx[key].cache
        self.remove(key)
        return PrefixCache(list(ids), cache)

    def _shared(self, plens: Sequence[int]):
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
        layers = [(k[:, :, :start], v[:, :, :start]) for k, v in _layers(base_cache)] if start > 0 else []
        cache = _new_cache(layers)
        new = torch.tensor([ids[keep:]], dtype=torch.long)
        logits = self.forward(new, cache, None, None, [(0, new.shape[1] - 1)], {key: new.shape[1]},
                              "prefill", self._shared([ctx.plen]))
        ctx.cache, ctx.last_logits, ctx.scored = cache, logits[0], []

    def context_logits(self, key):
        return self.ctx[key].last_logits

    def open_rows(self, keys, score=None):
        """Branch rows; with `score` (requests as for `score()`), their first step and the
        scoring of those rows are one forward. The NLLs land in `self.prescored`."""
        return _CachedRows(self, keys, score)

    def score(self, requests):
        flat = _score_rows(requests)
        nll = [float("nan")] * len(flat)
        for group in width_groups([len(row) - p0 for _, row, _, p0 in flat], self.lm.device.type):
            part = [flat[i] for i in group]
            logits, at, cache, prefix, plens = self._feed(part)
            for i, value in zip(group, self._collect(part, range(len(part)), logits, at, cache, prefix, plens)):
                nll[i] = value
        return _by_key(flat, nll)

    def _feed(self, flat, kind="score"):
        """One padded forward over rows of several prompts.

        flat: (key, row, s, p0) per row: row[p0:] is fed after the first p0 committed ids of
        key's cache, and logits are gathered at positions s-1 .. len(row)-1 (the ones that
        predict row[s:], then the last). A row reads min(plen, p0) positions of the shared
        prefix and the rest of its first p0 ids from its tail cache. Returns the logits, each
        row's first index in them, the batched cache, the common tail width (row r's cache
        starts at width - (p0 - plen_r)) and each row's plen."""
        plens = [min(self.ctx[key].plen, p0) for key, _, _, p0 in flat]
        tails = [p0 - plen for (*_, p0), plen in zip(flat, plens)]
        prefix = max(tails)
        width = max(len(row) - p0 for _, row, _, p0 in flat)
        pad = _pad_id(self.lm)
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
        shared = self._shared(plens)
        padded = bool((mask == 0).any())
        cache = stack_caches([(self.ctx[key].cache, tail) for (key, *_), tail in zip(flat, tails)],
                             prefix, room=width)
        logits = self.forward(ids, cache, mask if padded or shared else None,
                              positions if padded or shared else None, gather, charge, kind, shared)
        return logits, at, cache, prefix, plens

    def _collect(self, flat, batch_rows, logits, at, cache, prefix, plens) -> list[float]:
        """Mean NLL of each scored row, in the order of `flat`; each row's keys and values
        stay adoptable by the commit."""
        out: list[float] = []
        per_key: dict[Key, list[tuple]] = {}
        for (key, row, s, p0), r in zip(flat, batch_rows):
            n = len(row) - s
            first = at[r]
            out.append(mean_nll(logits[first : first + n], row[s:]) if n > 0 else float("nan"))
            per_key.setdefault(key, []).append((row, r, prefix - (p0 - plens[r]), logits[first + n], plens[r]))
        for key, entries in per_key.items():
            self.ctx[key].scored.append((entries, cache))
        return out

    def commit(self, updates):
        for key, ids in updates.items():
            ctx = self.ctx[key]
            old_ids, scored, ctx.scored = self.ids[key], ctx.scored, []
            self.ids[key] = list(ids)
            adopted = False
            for entries, cache in scored:
                for row, r, offset, last, plen in entries:
                    if row == ids:  # the winner's row already holds its keys and values
                        ctx.cache = select_rows(cache, [r], offset, len(ids) - plen)
                        ctx.last_logits, ctx.plen = last, plen
                        adopted = True
                        break
                if adopted:
                    break
            if not adopted:
                adopted = self._adopt_branch(key, old_ids, ids)
            if not adopted:
                self._extend(key, old_ids, ctx.cache)
        for ctx in self.ctx.values():  # keys that finished this round keep nothing either
            ctx.scored = []
        self._branches = None
        self.prescored = {}

    def _adopt_branch(self, key, old_ids, ids) -> bool:
        """A winner this model generated itself is already in its branch's cache."""
        if self._branches is None or ids[: len(old_ids)] != old_ids:
            return False
        rows, branches = self._branches
        k = len(ids) - len(old_ids)
        for row, (tokens, after) in branches.items():
            if rows.keys[row] == key and 0 < k <= len(after) and tokens[:k] == ids[len(old_ids):]:
                cache, position, pad = rows.locate(row)
                ctx = self.ctx[key]
                ctx.cache = select_rows(cache, [position], pad, len(ids) - ctx.plen)
                ctx.last_logits = after[k - 1]
                return True
        return False


class _CachedRows(Rows):
    """Rows of several prompts in one left-padded batch cache; each step adds one column.

    With `score` requests, the first step feeds each row's token together with those rows
    (right-padded after it), so that a later model scores the proposals already made in the
    forward it needs anyway; the branch rows then continue from that forward's cache.
    Branch rows continue committed contexts, so each reads its prompt's plen of the prefix."""

    def __init__(self, engine: CachedEngine, keys, score=None):
        self.engine = engine
        self.keys = list(keys)
        self.plens = [engine.ctx[k].plen for k in self.keys]
        self.live = list(range(len(self.keys)))
        self.left: dict[int, tuple[object, int]] = {}  # rows that left: (their cache, position)
        self.cache = None  # built by the first step
        self._score = score or None

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

    def _prescore(self, nlls) -> None:
        for key, (rows, starts) in self._score.items():
            self.engine.prescored[key] = {(tuple(r), s): v for r, s, v in zip(rows, starts, nlls.get(key, []))}

    def _first_with_scoring(self, live, tokens) -> torch.Tensor | None:
        """The first step and the scoring in one forward; None (nothing run) where that
        forward would pad the one-token branch rows so much that two forwards cost less
        (`width_groups`)."""
        engine = self.engine
        branch = []
        for row, token in zip(live, tokens):
            ids = engine.ids[self.keys[row]]
            branch.append((self.keys[row], ids + [int(token)], len(ids) + 1, len(ids)))
        scoring = _score_rows(self._score)
        widths = [1] * len(branch) + [len(row) - p0 for _, row, _, p0 in scoring]
        if len(width_groups(widths, engine.lm.device.type)) > 1:
            return None
        n = len(branch)
        logits, at, cache, prefix, plens = engine._feed(branch + scoring, "step+score")
        self._prescore(_by_key(scoring, engine._collect(scoring, range(n, n + len(scoring)), logits, at, cache,
                                                        prefix, plens)))
        self.live = list(live)
        self.pads = [0] * len(self.keys)
        lengths = []
        for j, (row, (_, ids, _, p0)) in enumerate(zip(live, branch)):
            self.pads[row] = prefix - (p0 - plens[j])
            lengths.append(len(ids))
        self.cache = select_rows(cache, list(range(n)), 0, prefix + 1, room=ROWS_ROOM)
        self.positions = torch.tensor(lengths, dtype=torch.long)
        self.mask = torch.zeros((n, prefix + 1), dtype=torch.long)
        for j, row in enumerate(live):
            self.mask[j, self.pads[row] :] = 1
        self.padded = any(self.pads[row] for row in live)
        return logits[[at[j] for j in range(n)]]

    def extend(self, live, tokens):
        live = list(live)
        if self.cache is None:
            if self._score:
                logits = self._first_with_scoring(live, tokens)
                if logits is not None:
                    return logits
                self._prescore(self.engine.score(self._score))
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
        shared = self.engine._shared([self.plens[row] for row in live])
        explicit = self.padded or shared is not None
        logits = self.engine.forward(
            ids, self.cache, self.mask if explicit else None,
            self.positions[:, None] if explicit else None,
            [(j, 0) for j in range(len(live))], charge, "step", shared)
        self.positions = self.positions + 1
        return logits

    def locate(self, row: int) -> tuple[object, int, int]:
        """(cache, batch position, left padding) holding a row's keys and values."""
        if row in self.left:
            cache, position = self.left[row]
        else:
            cache, position = self.cache, self.live.index(row)
        return cache, position, self.pads[row]
