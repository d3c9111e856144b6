"""A full-attention cache layer in a buffer with free room, so that the forwards that follow
write in place instead of copying the whole cache at every step.

Its own module because it subclasses a transformers class: `kv_cache` imports it on first use,
so that importing adafuse does not import transformers.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer


class GrowingLayer(DynamicLayer):
    """keys/values [batch, heads, n, dim] copied into buffers with `room` free positions;
    an update that runs out of room doubles the buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int):
        b, h, n, d = keys.shape
        k = keys.new_empty((b, h, n + room, d))
        v = values.new_empty((b, values.shape[1], n + room, values.shape[3]))
        k[:, :, :n] = keys
        v[:, :, :n] = values
        self._adopt(k, v, n)

    @classmethod
    def in_buffers(cls, k: torch.Tensor, v: torch.Tensor, n: int) -> "GrowingLayer":
        """A layer over buffers already holding its first n positions (no copy)."""
        layer = cls.__new__(cls)
        layer._adopt(k, v, n)
        return layer

    def _adopt(self, k: torch.Tensor, v: torch.Tensor, n: int) -> None:
        super().__init__()
        self._k, self._v, self._n = k, v, n
        self.device, self.dtype = k.device, k.dtype
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
