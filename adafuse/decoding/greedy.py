"""Single-model greedy decoding behind the decoder interface, for like-for-like baselines.

Same prompt formatting, stop strings, budget, shared-prefix reuse, batching and output object
as AdaFuse; its trace is empty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from adafuse.decoding.base import Decoder
from adafuse.decoding.output import ModelCost, Output, Stats
from adafuse.decoding.registry import LAST_MODEL, check_parameters, register_decoder
from adafuse.decoding.text import ContinuationDecoder, find_stop, word_count


@register_decoder
class Greedy(Decoder):
    """Argmax decoding with one model (`model_index` picks it from a list)."""

    name = "greedy"
    bounds = {"model_index": (0, LAST_MODEL)}

    def __init__(self, models: Sequence, *, model_index: int = 0, mode: str = "cached", engine=None):
        super().__init__(models, mode=mode, engine=engine)
        check_parameters(Greedy, {"model_index": model_index}, len(self.models))
        self.model_index = model_index
        self.lm = self.models[model_index]

    def open_engines(self):
        """One engine, for the model that decodes (the others are never called)."""
        total = ModelCost(self.lm.name)
        return [self.open_engine(self.model_index, total)], [total]

    def _decode_chunk(self, run, prompts, max_new_tokens, stop) -> list[Output]:
        return [out for out, _ in decode_chunk(self, run.engines[0], self.model_index, prompts, max_new_tokens, stop)]


def decode_chunk(decoder: Decoder, engine, index: int, prompts, max_new_tokens, stop,
                 keep: bool = False) -> list[tuple[Output, str]]:
    """Greedy decoding of `prompts` (keys 0..n-1) by model `index` of `decoder` on `engine`.

    Returns (output, end) per prompt, `end` being the stop string that ended it ("" if none).
    With `keep`, the prompts stay in the engine (their committed ids are the prompt alone), so
    the caller can score texts after them; it removes them itself."""
    lm = decoder.models[index]
    n = len(prompts)
    stats = [Stats(models=[ModelCost(lm.name)]) for _ in prompts]
    started = time.perf_counter()
    decoder.add_prompts(engine, index, [(key, lm.format_prompt(p), stats[key].models[0])
                                        for key, p in enumerate(prompts)])
    for key in range(n):
        stats[key].seconds += (time.perf_counter() - started) / n
    decoders = [ContinuationDecoder(lm, engine.ids[k]) for k in range(n)]
    tokens: list[list[int]] = [[] for _ in prompts]
    texts, finish, ends = [""] * n, ["length"] * n, [""] * n
    rows = engine.open_rows(list(range(n)))
    contexts = engine.contexts(range(n))
    next_token = [contexts[k].ids[0] for k in range(n)]
    live = list(range(n))
    while live:
        started = time.perf_counter()
        still = []
        for k in live:
            token = next_token[k]
            if token in lm.eos_ids:
                finish[k] = "eos"
                continue
            tokens[k].append(token)
            previous, texts[k] = texts[k], decoders[k](tokens[k])
            found = find_stop(texts[k], max(0, len(previous) - 1), stop)
            if found is not None:
                ends[k] = texts[k][found[0] : found[1]]
                texts[k], finish[k] = texts[k][: found[0]], "stop"
                continue
            if len(tokens[k]) < max_new_tokens:
                still.append(k)
        if still:
            for k, step in zip(still, rows.step(still, [tokens[k][-1] for k in still])):
                next_token[k] = step.dist.ids[0]
        share = (time.perf_counter() - started) / len(live)
        for k in live:
            stats[k].seconds += share
        live = still
    for k in range(n):
        stats[k].rounds = stats[k].new_tokens = len(tokens[k])
        stats[k].words = word_count(texts[k])
        if not keep:
            engine.remove(k)
    return [(Output(text=texts[k], finish_reason=finish[k], trace=[], stats=stats[k]), ends[k])
            for k in range(n)]
