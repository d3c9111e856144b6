"""What every decoder shares: its models, validation, sessions and the generate() interface."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from adafuse.decoding.backend import RecomputeSession, Session
from adafuse.decoding.output import ModelCost, Output
from adafuse.errors import AdaFuseError

MODES = ("recompute",)


def check_range(name: str, value, low=None, high=None, integer=False) -> None:
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if ok and low is not None:
        ok = value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bounds = (
            f"in [{low}, {high}]" if high is not None else f">= {low}" if low is not None else ""
        )
        raise AdaFuseError(f"{name}={value!r} is not allowed; {name} must be {kind} {bounds}".rstrip())


class Decoder:
    """Base of all decoders: one or more loaded models and a `generate` method."""

    name = "decoder"

    def __init__(self, models: Sequence, *, mode: str = "recompute"):
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not models:
            raise AdaFuseError("no models given; a decoder needs at least one model")
        if mode not in MODES:
            raise AdaFuseError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        self.models = models
        self.mode = mode

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def open_session(self, lm, context_ids, cost: ModelCost) -> Session:
        return RecomputeSession(lm, context_ids, cost)

    def generate(self, prompt: str, *, max_new_tokens: int = 256, stop: Sequence[str] = ()) -> Output:
        check_range("max_new_tokens", max_new_tokens, 1, integer=True)
        if isinstance(stop, str):
            stop = [stop]
        started = time.perf_counter()
        with torch.inference_mode():
            out = self._generate(prompt, int(max_new_tokens), list(stop))
        out.stats.seconds = time.perf_counter() - started
        out.prompt = prompt
        return out

    def generate_batch(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        stop: Sequence[str] = (),
        batch_size: int = 1,
        shared_prefix: str | None = None,
    ) -> list[Output]:
        """Decode several prompts; outputs are identical to decoding each alone.

        `shared_prefix`, when given, is the text every prompt starts with (a task's
        instruction and few-shot examples): engines that can reuse its encoding do so.
        `batch_size` prompts advance together where the engine batches them.
        """
        check_range("batch_size", batch_size, 1, integer=True)
        if shared_prefix is not None:
            for p in prompts:
                if not p.startswith(shared_prefix):
                    raise AdaFuseError("shared_prefix is not a prefix of every prompt")
        return [self.generate(p, max_new_tokens=max_new_tokens, stop=stop) for p in prompts]

    def _generate(self, prompt: str, max_new_tokens: int, stop: list[str]) -> Output:
        raise NotImplementedError
