"""Per-model forward passes behind one small protocol, so decoders never touch caches.

    protocol.py         what decoders call (`Engine`, `Rows`, `Branches`, `EngineOptions`)
    recompute.py        the oracle: re-encodes everything on every call, one prompt at a time
    cached.py           one KV cache per prompt; cached_rows.py: its branch rows
    executor.py         one model's forward (LM head only where asked), its cost counters
    kv_cache.py         KV-cache tensors: built, batched, rows selected (growing_layer.py)
    batching.py         which rows share a padded forward (`width_groups`)
    prefix_attention.py the shared prefix read in place by every row
    cpu_linear.py       float32 CPU linear layers over weights packed once

`open_engine(lm, total, mode, options)` builds the engine a decoder's `mode` names.
"""

from __future__ import annotations

from adafuse.decoding.engine.cached import CachedEngine
from adafuse.decoding.engine.executor import Executor, shares_prefix
from adafuse.decoding.engine.protocol import Branches, Engine, EngineOptions, Rows, mean_nll
from adafuse.decoding.engine.recompute import RecomputeEngine

__all__ = ["Branches", "CachedEngine", "Engine", "EngineOptions", "Executor", "RecomputeEngine",
           "Rows", "mean_nll", "open_engine", "shares_prefix"]


def open_engine(lm, total=None, mode: str = "cached", options=None) -> Engine:
    """The engine for `mode`: "cached" (the default) or "recompute" (the oracle)."""
    return (RecomputeEngine if mode == "recompute" else CachedEngine)(lm, total, options)
