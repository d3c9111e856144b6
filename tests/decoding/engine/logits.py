"""What the engine tests compare: the logits an engine holds on its device after a context or a
row's step (the protocol hands decoders only `Dist`s of them; tests check the tensors)."""

from __future__ import annotations

import torch


def context_logits(engine, key) -> torch.Tensor:
    return engine.context_tensor([key])[0]


def step_logits(rows, live, tokens) -> torch.Tensor:
    """`rows.step(live, tokens)`, and the logits after it of each live row."""
    rows.step(live, tokens)
    return torch.stack([rows._dist(r, len(rows.fed[r])) for r in live])
