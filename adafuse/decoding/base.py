"""What every decoder shares: its models, validation, engines and the generate() interface.

The engines (`adafuse.decoding.engine`) run the forwards; a decoder reaches them only through
their protocol."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

from adafuse.decoding.engine import Engine, EngineOptions, open_engine
from adafuse.decoding.output import ModelCost, Output
from adafuse.decoding.session import Session
from adafuse.errors import AdaFuseError

# cached: one KV cache per model and prompt (the default); recompute: re-encode everything
# per call, one prompt at a time: the oracle the cached engine is tested against
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


def check_stop(stop) -> list[str]:
    """Stop strings as a list: one string or a list of non-empty strings ('' would stop nothing)."""
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop):
        raise AdaFuseError(f"stop={stop!r} is not allowed; stop must be a list of non-empty "
                           "strings, e.g. ['\\n']")
    return list(stop)


def check_prompts(prompts) -> list[str]:
    """Prompts as a list of non-empty strings; one string is refused (each character would
    become a prompt): generate(prompt) takes one."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise AdaFuseError(f"prompts must be a list of strings, got {type(prompts).__name__} "
                           f"{str(prompts)[:40]!r}; for one prompt use generate(prompt)")
    for i, prompt in enumerate(prompts):
        check_prompt(prompt, f"prompts[{i}]")
    return list(prompts)


def check_prompt(prompt, name: str = "prompt") -> None:
    if not isinstance(prompt, str):
        raise AdaFuseError(f"{name}={prompt!r} is not allowed; {name} must be a string")
    if not prompt.strip():
        raise AdaFuseError(f"{name}={prompt!r} is empty; give the text to continue")


def ensemble_weights(weights: Sequence[float] | None, models: Sequence) -> list[float]:
    """Per-model weights of the ensemble score; None: each model's own `weight` (default 1)."""
    if weights is None:
        weights = [getattr(m, "weight", 1.0) for m in models]
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
        raise AdaFuseError(f"weights={weights!r} is not allowed; weights must be a list of "
                           f"{len(models)} numbers, one per model")
    weights = [float(w) for w in weights]
    if len(weights) != len(models):
        raise AdaFuseError(f"weights={weights} has {len(weights)} entries for {len(models)} models")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise AdaFuseError(f"weights={weights}: each must be >= 0 and their sum > 0")
    return weights


class Decoder:
    """Base of all decoders: one or more loaded models and `generate` / `generate_batch`."""

    name = "decoder"

    def __init__(self, models: Sequence, *, mode: str = "cached", engine=None):
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        if not models:
            raise AdaFuseError("no models given; a decoder needs at least one model")
        if mode not in MODES:
            raise AdaFuseError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
        for i, m in enumerate(models):
            if not (hasattr(m, "tokenizer") and hasattr(m, "encode")):
                raise AdaFuseError(f"models[{i}] is a {type(m).__name__} ({str(m)[:40]!r}), not a "
                                   "loaded model; pass adafuse.load_model(...) results")
        self.models = models
        self.mode = mode
        # how the engines run (packed CPU weights, the prefix read in place, forward splits);
        # None, an EngineOptions or a mapping of its fields; none of them changes a choice
        self.engine_options = EngineOptions.of(engine)
        # the oracle scores every proposal in its own scoring forward: no own-span shortcut
        self.reuse_own_spans = mode != "recompute"
        self._shared_prefix: str | None = None
        self._prefixes: dict[tuple[int, str], object] = {}  # a model's encoded prefix, or None
        # what prefilling the shared prefixes cost, per model, over this decoder's life: a
        # run's own cost entry, never an item's (a resumed run would pay it again)
        self.prefix_costs: list[ModelCost] = [ModelCost(m.name) for m in models]
        # real forwards of the last generate call per model (a batched forward counts once)
        self.last_totals: list[ModelCost] = []

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def add_prompt(self, engine: Engine, index: int, key, prompt_text: str, cost: ModelCost) -> None:
        """Model `index` starts on prompt_text (its formatted prompt) under `key`."""
        prefix = self._prefix_cache(engine, index, prompt_text)
        engine.add(key, self.models[index].encode(prompt_text), cost, prefix)

    def add_prompts(self, engine: Engine, index: int, entries) -> None:
        """Several prompts join at once: (key, prompt_text, cost) each, as for `add_prompt`;
        the engine may prefill them in one forward."""
        entries = list(entries)
        ids = self.models[index].encode_many([prompt_text for _, prompt_text, _ in entries])
        batch = []
        for (key, prompt_text, cost), prompt_ids in zip(entries, ids):
            batch.append((key, prompt_ids, cost, self._prefix_cache(engine, index, prompt_text)))
        engine.add_many(batch)

    def _prefix_cache(self, engine: Engine, index: int, prompt_text: str):
        """The encoded shared prefix, prefilled once per model and reused for every item
        (None where the engine reuses none: the recompute oracle).

        Its prefill is counted in `prefix_costs`, not in any item's cost: which item first
        needs it depends on where a run was resumed."""
        shared = self._shared_prefix
        if not shared:
            return None
        at = prompt_text.find(shared)  # a chat template puts text before the user turn
        if at < 0:
            return None
        text = prompt_text[: at + len(shared)]
        key = (index, text)
        if key not in self._prefixes:
            self._prefixes = {k: v for k, v in self._prefixes.items() if k[0] != index}
            self._prefixes[key] = engine.prefill(self.models[index].encode(text), self.prefix_costs[index])
        return self._prefixes[key]

    def engine_top_k(self) -> int:
        """How many top tokens each of this decoder's engine answers holds (at least 2)."""
        return 2

    def open_engine(self, index: int, total: ModelCost) -> Engine:
        """An engine for model `index`, counting into `total`."""
        return open_engine(self.models[index], total, self.mode, self.engine_options, self.engine_top_k())

    def open_engines(self) -> tuple[list[Engine], list[ModelCost]]:
        """An engine per model, and the totals they count into."""
        totals = [ModelCost(lm.name) for lm in self.models]
        return [self.open_engine(m, total) for m, total in enumerate(totals)], totals

    @contextlib.contextmanager
    def _sharing(self, shared_prefix: str | None):
        """Prompts added inside start with `shared_prefix` (see `generate_batch`)."""
        before, self._shared_prefix = self._shared_prefix, shared_prefix
        try:
            yield
        finally:
            self._shared_prefix = before

    def session(self, *, max_new_tokens: int = 256, stop: Sequence[str] = (), batch_size: int = 1,
                shared_prefix: str | None = None) -> Session:
        """A `Session`: prompts added while others decode, one round per `step()`."""
        return Session(self, max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size,
                       shared_prefix=shared_prefix)

    def generate(self, prompt: str, *, max_new_tokens: int = 256, stop: Sequence[str] = ()) -> Output:
        check_prompt(prompt)
        return self.generate_batch([prompt], max_new_tokens=max_new_tokens, stop=stop)[0]

    def generate_batch(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        stop: Sequence[str] = (),
        batch_size: int = 1,
        shared_prefix: str | None = None,
        on_output: Callable[[int, Output], None] | None = None,
    ) -> list[Output]:
        """Decode several prompts; outputs equal decoding each alone (up to float ties).

        `batch_size` prompts advance together, each model running one padded forward per
        step for all of them (the recompute oracle takes one prompt at a time whatever it is).
        `shared_prefix`, when given, is the text every prompt starts with (a task's
        instruction and few-shot examples): it is encoded once per model and reused.
        `on_output(index, output)` is called as each prompt finishes, in the order they
        finish. This is a loop over `session()`'s steps.
        """
        prompts = check_prompts(prompts)
        if on_output is not None and not callable(on_output):
            raise AdaFuseError(f"on_output={on_output!r} is not callable")
        session = self.session(max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size,
                               shared_prefix=shared_prefix)
        for index, prompt in enumerate(prompts):
            session.add(prompt, key=index)
        results: list[Output | None] = [None] * len(prompts)
        while session.busy:
            for index, out in session.step():
                results[index] = out
                if on_output is not None:
                    on_output(index, out)
        self.last_totals = session.totals
        return results

    # --- the hooks a Session drives (see session.py) -------------------------------------
    # Every decoder here admits prompts between rounds and refills a finished prompt's place:
    # AdaFuse and its baselines (ensemble.py), greedy (greedy.py), rerank (rerank.py).

    def _open(self):
        """The session's state: engines, totals, prompts in flight."""
        raise NotImplementedError

    def _admit(self, run, requests) -> None:
        """Take `requests` (session.Request) into the batch in flight."""
        raise NotImplementedError

    def _round(self, run) -> list:
        """One round for every prompt in flight; the keys that finished."""
        raise NotImplementedError

    def _output(self, run, key) -> Output:
        raise NotImplementedError

    def _partial(self, run, key) -> str:
        raise NotImplementedError

    def _drop(self, run, key) -> None:
        raise NotImplementedError

    def _charge(self, run, keys, seconds: float) -> None:
        """Share a step's seconds among the prompts it served."""
        raise NotImplementedError
