"""Single-model greedy decoding behind the decoder interface, for like-for-like baselines.

Same prompt formatting, stop strings, budget, shared-prefix reuse, batching and output object
as AdaFuse; its trace is empty.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

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

    # --- the session's hooks (session.py): a finished prompt's place is refilled ---------

    admits_between_rounds = True

    def _open(self) -> _Run:
        engines, totals = self.open_engines()
        return _Run(engines[0], totals)

    def _admit(self, run: _Run, requests) -> None:
        lm, engine = self.lm, run.engine
        items = {r.key: _Item(r.stop, r.max_new_tokens, Stats(models=[ModelCost(lm.name)])) for r in requests}
        self.add_prompts(engine, self.model_index, [(r.key, lm.format_prompt(r.prompt), items[r.key].stats.models[0])
                                                    for r in requests])
        contexts = engine.contexts(list(items))
        for key, item in items.items():
            item.decode = ContinuationDecoder(lm, engine.ids[key])
            item.next = contexts[key].ids[0]
        run.items.update(items)
        run.joined = True

    def _round(self, run: _Run) -> list:
        """One token for every prompt: the token chosen last is appended (or ends the
        prompt), then all that go on are fed in one forward, which picks their next."""
        done, going = [], []
        for key, item in run.items.items():
            if item.finish is None:
                (going if item.append(self.lm) else done).append(key)
        if going:
            if run.joined or run.rows is None:
                self._restack(run, going)
            steps = run.rows.step([run.row_of[k] for k in going], [run.items[k].tokens[-1] for k in going])
            for key, step in zip(going, steps):
                run.items[key].next = step.dist.ids[0]
        return done

    @staticmethod
    def _restack(run: _Run, keys) -> None:
        """Prompts joined: the rows in flight commit what they were fed (their caches adopted,
        no forward) and one batch of rows is opened for every prompt going on."""
        engine = run.engine
        if run.rows is not None:
            updates = {}
            for key in keys:
                row = run.row_of.get(key)
                if row is not None and run.rows.fed[row]:
                    updates[key] = engine.ids[key] + run.rows.fed[row]
            engine.commit(updates, [run.rows])
        run.rows = engine.open_rows(keys)
        run.row_of = {key: i for i, key in enumerate(keys)}
        run.joined = False

    def _charge(self, run: _Run, keys, seconds: float) -> None:
        for key in keys:
            run.items[key].stats.seconds += seconds / len(keys)

    def _output(self, run: _Run, key) -> Output:
        run.engine.remove(key)
        return run.items.pop(key).output()

    def _partial(self, run: _Run, key) -> str:
        return run.items[key].text

    def _drop(self, run: _Run, key) -> None:
        run.items.pop(key, None)
        run.engine.remove(key)


@dataclass
class _Item:
    """One prompt's greedy decode in progress."""

    stop: list
    max_new_tokens: int
    stats: Stats
    decode: object = None  # ContinuationDecoder of the prompt's ids
    next: int = 0  # the token chosen last, not appended yet
    tokens: list = field(default_factory=list)
    text: str = ""
    finish: str | None = None  # set when it ends
    end: str = ""  # the stop string that ended it

    def append(self, lm) -> bool:
        """Append the chosen token; False where the decode ends (EOS, a stop string, budget)."""
        if self.next in lm.eos_ids:
            self.finish = "eos"
            return False
        self.tokens.append(self.next)
        previous, self.text = self.text, self.decode(self.tokens)
        found = find_stop(self.text, max(0, len(previous) - 1), self.stop)
        if found is not None:
            self.end = self.text[found[0] : found[1]]
            self.text, self.finish = self.text[: found[0]], "stop"
            return False
        if len(self.tokens) >= self.max_new_tokens:
            self.finish = "length"
            return False
        return True

    def output(self) -> Output:
        stats = self.stats
        stats.rounds = stats.new_tokens = len(self.tokens)
        stats.words = word_count(self.text)
        return Output(text=self.text, finish_reason=self.finish, trace=[], stats=stats)


@dataclass
class _Run:
    engine: object
    totals: list
    items: dict = field(default_factory=dict)
    rows: object = None
    row_of: dict = field(default_factory=dict)
    joined: bool = False  # prompts joined since the rows were opened


def decode_chunk(decoder: Decoder, engine, index: int, prompts, max_new_tokens, stop,
                 keep: bool = False) -> list[tuple[Output, str]]:
    """Greedy decoding of `prompts` (keys 0..n-1) by model `index` of `decoder` on `engine`.

    Returns (output, end) per prompt, `end` being the stop string that ended it ("" if none).
    With `keep`, the prompts stay in the engine (their committed ids are the prompt alone), so
    the caller can score texts after them; it removes them itself."""
    lm = decoder.models[index]
    n = len(prompts)
    items = [_Item(list(stop), max_new_tokens, Stats(models=[ModelCost(lm.name)])) for _ in prompts]
    started = time.perf_counter()
    decoder.add_prompts(engine, index, [(key, lm.format_prompt(p), items[key].stats.models[0])
                                        for key, p in enumerate(prompts)])
    for item in items:
        item.stats.seconds += (time.perf_counter() - started) / n
    rows = engine.open_rows(list(range(n)))
    contexts = engine.contexts(range(n))
    for key, item in enumerate(items):
        item.decode, item.next = ContinuationDecoder(lm, engine.ids[key]), contexts[key].ids[0]
    live = list(range(n))
    while live:
        started = time.perf_counter()
        still = [k for k in live if items[k].append(lm)]
        if still:
            for k, step in zip(still, rows.step(still, [items[k].tokens[-1] for k in still])):
                items[k].next = step.dist.ids[0]
        share = (time.perf_counter() - started) / len(live)
        for k in live:
            items[k].stats.seconds += share
        live = still
    if not keep:
        for k in range(n):
            engine.remove(k)
    return [(item.output(), item.end) for item in items]
