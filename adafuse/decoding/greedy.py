"""Single-model greedy decoding behind the decoder interface, for like-for-like baselines.

Same prompt formatting, stop strings, budget, shared-prefix reuse, batching and output object
as AdaFuse; its trace is empty. `admit` and `step` are its session hooks as functions of one
model's `_Run`, so rerank drives one greedy decode per model with the same code.
"""

from __future__ import annotations

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

    def _open(self) -> _Run:
        engines, totals = self.open_engines()
        return _Run(engines[0], totals)

    def _admit(self, run: _Run, requests) -> None:
        admit(self, self.model_index, run, requests)

    def _round(self, run: _Run) -> list:
        return step(self.lm, run)

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


def admit(decoder: Decoder, index: int, run: _Run, requests) -> None:
    """Model `index` of `decoder` takes `requests` (session.Request) into `run`: each prompt
    added to the engine, its first token chosen (fed at the next `step`)."""
    lm, engine = decoder.models[index], run.engine
    items = {r.key: _Item(r.stop, r.max_new_tokens, Stats(models=[ModelCost(lm.name)])) for r in requests}
    decoder.add_prompts(engine, index, [(r.key, lm.format_prompt(r.prompt), items[r.key].stats.models[0])
                                        for r in requests])
    contexts = engine.contexts(list(items))
    for key, item in items.items():
        item.decode = ContinuationDecoder(lm, engine.ids[key])
        item.next = contexts[key].ids[0]
    run.items.update(items)
    run.joined = True


def step(lm, run: _Run) -> list:
    """One token for every prompt of `run` still going: the token chosen last is appended
    (or ends the prompt), then all that go on are fed in one forward, which picks their
    next. Returns the keys that ended (their items stay in `run.items`, finished)."""
    done, going = [], []
    for key, item in run.items.items():
        if item.finish is None:
            (going if item.append(lm) else done).append(key)
    if going:
        if run.joined or run.rows is None:
            _restack(run, going)
        steps = run.rows.step([run.row_of[k] for k in going], [run.items[k].tokens[-1] for k in going])
        for key, step_ in zip(going, steps):
            run.items[key].next = step_.dist.ids[0]
    return done


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
