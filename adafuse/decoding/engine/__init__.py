"""Per-model forward passes behind one small protocol, so decoders never touch caches.

    protocol.py         what decoders call (`Engine`, `Rows`, `Scored`, `EngineOptions`)
    readout.py          what they get back: `Dist`, `Step`, mean NLLs, one host read each
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
from adafuse.decoding.engine.protocol import Engine, EngineOptions, Rows, Scored, gather
from adafuse.decoding.engine.readout import Dist, Step, mean_nll, mean_nlls
from adafuse.decoding.engine.recompute import RecomputeEngine

__all__ = ["CachedEngine", "Dist", "Engine", "EngineOptions", "Executor", "RecomputeEngine",
           "Rows", "Scored", "Step", "gather", "mean_nll", "mean_nlls", "open_engine", "shares_prefix"]


def open_engine(lm, total=None, mode: str = "cached", options=None, top_k: int = 2) -> Engine:
    """The engine for `mode`: "cached" (the default) or "recompute" (the oracle); its `Dist`s
    hold the `top_k` most likely tokens (at least 2). A member placed in a Ray actor
    (`ray_member.load_member`) gets the driver's side of an engine opened in that actor."""
    if getattr(lm, "placement", None) == "ray":
        from adafuse.decoding.engine.ray_member import RayEngine

        return RayEngine(lm, total, mode, options, top_k)
    return (RecomputeEngine if mode == "recompute" else CachedEngine)(lm, total, options, top_k)
