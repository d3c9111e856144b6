"""Counts that bound eager decoding on a GPU, measured on any device: torch ops dispatched
(each one a kernel launch on a GPU, or more), host reads of tensor values (each one a device
sync on a GPU: `tolist`, `item`, `float`, `int`, `bool`, `cpu`) and forwards, per generated word.

    with Counts() as counts:
        decoder.generate_batch(...)
    counts.ops, counts.reads

Ops are counted at the ATen dispatcher (`TorchDispatchMode`), so every op inside the model's
forward counts, as a profiler's op list would; reads are counted wherever they happen,
transformers' own included. Counting slows a decode down: time it in a separate run.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

READS = ("tolist", "item", "__float__", "__int__", "__bool__", "cpu")


class _OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


class Counts:
    """Torch ops and host reads while the block runs."""

    def __enter__(self):
        self.reads = 0
        self._saved = {name: getattr(torch.Tensor, name) for name in READS}
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, self._counting(original))
        self._ops = _OpCounter()
        self._ops.__enter__()
        return self

    def _counting(self, original):
        def wrapper(tensor, *args, **kwargs):
            self.reads += 1
            return original(tensor, *args, **kwargs)
        return wrapper

    def __exit__(self, *exc):
        self._ops.__exit__(*exc)
        self.ops = self._ops.ops
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)


def per_word(decoder, prompts, **generate) -> dict:
    """Decode `prompts` under `Counts`; ops, reads and forwards per generated word. A short
    decode first takes the one-time work (each model's probes, weight packing) out of them."""
    decoder.generate(prompts[0], max_new_tokens=2, stop=generate.get("stop", ()))
    with Counts() as counts:
        outs = decoder.generate_batch(prompts, **generate)
    words = max(1, sum(o.stats.words for o in outs))
    forwards = sum(t.forwards for t in decoder.last_totals)
    return {"ops_per_word": counts.ops / words, "reads_per_word": counts.reads / words,
            "fwd_per_word": forwards / words, "reads_per_forward": counts.reads / max(1, forwards),
            "texts": [o.text for o in outs]}
