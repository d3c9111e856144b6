"""What every decoder shares: its models, validation, sessions and the generate() interface."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from adafuse.decoding.backend import CachedSession, PrefixCache, RecomputeSession, Session
from adafuse.decoding.output import ModelCost, Output
from adafuse.errors import AdaFuseError

# cached: one KV cache per model (the default); recompute: re-encode everything per call, the
# oracle the cached engine is tested against
MODES = ("cached", "recompute")


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

    def __init__(self, models: Sequence, *, mode: str = "cached"):
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not models:
            raise AdaFuseError("no models given; a decoder needs at least one model")
        if mode not in MODES:
            raise AdaFuseError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        self.models = models
        self.mode = mode
        self._shared_prefix: str | None = None
        self._prefixes: dict[tuple[int, str], PrefixCache] = {}

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def open_session(self, index: int, prompt_text: str, cost: ModelCost) -> Session:
        """Model `index`'s session for the context prompt_text (its formatted prompt)."""
        lm = self.models[index]
        ids = lm.encode(prompt_text)
        if self.mode == "recompute":
            return RecomputeSession(lm, ids, cost)
        return CachedSession(lm, ids, cost, self._prefix_cache(index, prompt_text, cost))

    def _prefix_cache(self, index: int, prompt_text: str, cost: ModelCost) -> PrefixCache | None:
        """The encoded shared prefix, prefilled once per model and reused for every item.

        Its prefill is counted in the cost of the item that first needs it."""
        shared = self._shared_prefix
        if not shared:
            return None
        at = prompt_text.find(shared)  # a chat template puts text before the user turn
        if at < 0:
            return None
        text = prompt_text[: at + len(shared)]
        key = (index, text)
        if key not in self._prefixes:
            lm = self.models[index]
            ids = lm.encode(text)
            prefill = CachedSession(lm, ids, cost)
            self._prefixes = {k: v for k, v in self._prefixes.items() if k[0] != index}
            self._prefixes[key] = PrefixCache(ids, prefill.cache)
        return self._prefixes[key]

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
        self._shared_prefix = shared_prefix
        try:
            return [self.generate(p, max_new_tokens=max_new_tokens, stop=stop) for p in prompts]
        finally:
            self._shared_prefix = None

    def _generate(self, prompt: str, max_new_tokens: int, stop: list[str]) -> Output:
        raise NotImplementedError
