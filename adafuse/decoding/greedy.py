"""Single-model greedy decoding behind the decoder interface, for like-for-like baselines.

Same prompt formatting, stop strings, budget and output object as AdaFuse; its trace is empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from adafuse.decoding.base import Decoder
from adafuse.decoding.output import ModelCost, Output, Stats
from adafuse.decoding.proposals import margin_and_top
from adafuse.decoding.text import ContinuationDecoder, find_stop, word_count
from adafuse.errors import AdaFuseError


class Greedy(Decoder):
    """Argmax decoding with one model (`model_index` picks it from a list)."""

    name = "greedy"

    def __init__(self, models: Sequence, *, model_index: int = 0, mode: str = "cached"):
        super().__init__(models, mode=mode)
        if not isinstance(model_index, int) or not 0 <= model_index < len(self.models):
            raise AdaFuseError(
                f"model_index={model_index!r} is out of range; allowed: 0..{len(self.models) - 1}"
            )
        self.model_index = model_index
        self.lm = self.models[model_index]

    def _generate(self, prompt: str, max_new_tokens: int, stop: list[str]) -> Output:
        lm = self.lm
        cost = ModelCost(lm.name)
        session = self.open_session(self.model_index, lm.format_prompt(prompt), cost)
        decode = ContinuationDecoder(lm, session.ids)
        tokens: list[int] = []
        text, finish = "", "length"
        try:
            _, (token,), _ = margin_and_top(session.context_logits(), 1)
            rows = session.open_rows(1)
            while True:
                if token in lm.eos_ids:
                    finish = "eos"
                    break
                tokens.append(token)
                previous = text
                text = decode(tokens)
                found = find_stop(text, max(0, len(previous) - 1), stop)
                if found is not None:
                    text, finish = text[: found[0]], "stop"
                    break
                if len(tokens) >= max_new_tokens:
                    break
                _, (token,), _ = margin_and_top(rows.extend([0], [token])[0], 1)
        finally:
            session.close()
        stats = Stats(models=[cost], rounds=len(tokens), words=word_count(text),
                      new_tokens=len(tokens))
        return Output(text=text, finish_reason=finish, trace=[], stats=stats)
