"""KV-cache tensor plumbing for the cached engine: caches built from layer tensors, batched
from per-prompt parts (left-padded), and rows selected out of a batch.

Every cache built here holds plain full-attention layers; full layers roll back on
sliding-window models too (the model masks outside its window itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers < 4.56


def new_cache(layers, room: int = 0):
    """A cache holding `layers`' tensors.

    With `room`, each layer gets a buffer with that many free positions (`GrowingLayer`), so
    that the next forwards write in place instead of copying the whole cache at every step.
    Every later update writes into new memory, so the tensors given here (often views of a
    committed cache) are never written: speculative tokens cannot leak into a committed cache.
    """
    from transformers import DynamicCache

    cache = DynamicCache()
    if room and layers and hasattr(cache, "layers"):
        from adafuse.decoding.engine.growing_layer import GrowingLayer

        cache.layers = [GrowingLayer(k, v, room) for k, v in layers]
        return cache
    for i, (k, v) in enumerate(layers):
        cache.update(k, v, i)
    return cache


def stack_caches(parts: Sequence[tuple[object, int]], width: int, room: int = 0):
    """One batched cache from (cache, length) parts, each left-padded to `width` positions,
    with `room` free positions per layer for the forwards that follow."""
    layers = []
    same = all(c is parts[0][0] and n == width for c, n in parts)
    for per_row in zip(*(cache_layers(c) for c, _ in parts)):
        k0, v0 = per_row[0]
        if same:  # rows of one prompt: views of its cache, copied once into the buffers
            shape = (len(parts), *k0.shape[1:2], width, k0.shape[3])
            layers.append((k0[:, :, :width].expand(shape), v0[:, :, :width].expand(
                (len(parts), *v0.shape[1:2], width, v0.shape[3]))))
            continue
        # left padding must be zeros (a masked position still multiplies its value by 0);
        # the free room after `width` is written before it is read
        keys = k0.new_empty((len(parts), k0.shape[1], width + room, k0.shape[3]))
        values = v0.new_empty((len(parts), v0.shape[1], width + room, v0.shape[3]))
        keys[:, :, :width].zero_()
        values[:, :, :width].zero_()
        for r, ((k, v), (_, length)) in enumerate(zip(per_row, parts)):
            if length:
                keys[r, :, width - length : width] = k[0, :, :length]
                values[r, :, width - length : width] = v[0, :, :length]
        layers.append((keys, values))
    if same:
        return new_cache(layers, room)
    return _in_buffers(layers, width, room)


def _in_buffers(buffers, width: int, room: int):
    """A cache over (keys, values) buffers of width + room positions, the first width filled."""
    from transformers import DynamicCache

    cache = DynamicCache()
    if room and buffers and hasattr(cache, "layers"):
        from adafuse.decoding.engine.growing_layer import GrowingLayer

        cache.layers = [GrowingLayer.in_buffers(k, v, width) for k, v in buffers]
        return cache
    return new_cache([(k[:, :, :width], v[:, :, :width]) for k, v in buffers], room)


def select_rows(cache, rows: Sequence[int], start: int = 0, length: int | None = None, room: int = 0):
    """A cache of the given batch rows (positions start:start+length), as views or copies."""
    index = None
    out = []
    for k, v in cache_layers(cache):
        end = k.shape[2] if length is None else start + length
        if len(rows) == 1:
            r = rows[0]
            out.append((k[r : r + 1, :, start:end], v[r : r + 1, :, start:end]))
            continue
        if index is None:
            index = torch.tensor(list(rows), dtype=torch.long, device=k.device)
        out.append((k.index_select(0, index)[:, :, start:end], v.index_select(0, index)[:, :, start:end]))
    return new_cache(out, room)


class PrefixCache:
    """The encoded shared prefix of a task (instruction + few-shot examples) for one model."""

    def __init__(self, ids: list[int], cache):
        self.ids = ids
        self.cache = cache
        self.layers = cache_layers(cache)
