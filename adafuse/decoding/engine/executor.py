"""One model's forward: new tokens over an optional cache, logits at chosen (row, position).

Only the positions asked for go through the LM head: with Gemma's 262k vocabulary the head
costs as much per position as the rest of the model. Where the model's own forward would
post-process logits in a way the head path does not reproduce, it falls back to
`logits_to_keep` (checked once per model on a short input).

What is learnt about a model (whether the head path reproduces its logits, whether it reads a
shared prefix correctly) is remembered here, keyed weakly by the model object, not stored on
it: an engine lives one generate call, the model much longer.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import weakref

import torch

from adafuse.decoding.engine import cpu_linear, prefix_attention
from adafuse.decoding.output import ModelCost

# {model: bool}, checked once per model object
_HEAD_PATH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SHARES_PREFIX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shares_prefix(lm) -> bool | None:
    """Whether this loaded model was found to compute correctly through the shared-prefix
    attention (`prefix_attention.check`); None while no engine has needed to know."""
    return _SHARES_PREFIX.get(lm.model)


def pad_id(lm) -> int:
    pad = lm.tokenizer.pad_token_id
    if pad is None:
        pad = lm.tokenizer.eos_token_id
    return int(pad or 0)


def cache_arg(model) -> str:
    """The forward's cache argument: transformers renamed `past_key_values` to `cache` (5.2x);
    use what this version takes."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params and "past_key_values" not in params else "past_key_values"


class Executor:
    """Runs one model's forwards and counts them in `total` (forwards, tokens, seconds, and
    by kind). pack_cpu_weights: see `EngineOptions`."""

    def __init__(self, lm, total: ModelCost, pack_cpu_weights: bool = True):
        self.lm = lm
        self.total = total
        self.cache_arg = cache_arg(lm.model)
        self.packed = pack_cpu_weights and cpu_linear.pack_model(lm.model)
        # float32: the head is packed with the model; bfloat16: only the head is
        self.pack_head = self.packed or (pack_cpu_weights and cpu_linear.head_fits(lm.model))

    def _head_logits(self, hidden: torch.Tensor, pack: bool | None = None) -> torch.Tensor:
        head = self.lm.model.get_output_embeddings()
        if cpu_linear.cpu_head(hidden, head):
            logits = cpu_linear.head_logits(hidden, head, pack=self.pack_head if pack is None else pack)
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
            mine = self._head_logits(hidden, pack=False).float()  # the structure; packing is probed apart
            return bool(torch.allclose(full, mine, atol=1e-3, rtol=1e-3))
        except Exception:  # noqa: BLE001 - any surprise: use the model's own forward
            return False

    def head_path(self, ids: torch.Tensor) -> bool:
        model = self.lm.model
        if model not in _HEAD_PATH:
            _HEAD_PATH[model] = self._check_head_path(ids)
        return _HEAD_PATH[model]

    def shares_prefix(self) -> bool:
        """Whether this model computes correctly through the shared-prefix attention (checked
        once per model object on a short probe; see `prefix_attention.check`)."""
        model = self.lm.model
        if model not in _SHARES_PREFIX:
            _SHARES_PREFIX[model] = prefix_attention.check(model, self.cache_arg)
        return _SHARES_PREFIX[model]

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
        head_path = self.head_path(ids)
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
            if head_path:
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
