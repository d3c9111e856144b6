"""What a decoder asks of an engine: one model, several prompts keyed by the caller.

Nothing of vocabulary size crosses this protocol: an engine answers in token ids and
log-probabilities (`readout.Dist`, `readout.Step`), each answer read off the device once for
all the rows it covers. The messages:

- `add(key, ids, cost, prefix)` / `add_many(entries)` / `remove(key)`: prompts join or leave;
  `prefill(ids, cost)`: a shared prefix encoded once, the `prefix` of later `add`s (None
  where the engine does not reuse one);
- `ids[key]`: the committed ids of prompt_m + R; `contexts(keys)`: {key: Dist} of the
  distribution right after them (top `top_k` tokens), one read for all keys;
- `open_rows(keys, score=None)`: branch rows continuing the committed contexts, one per key
  listed; `Rows.step(live, tokens)` feeds one token to each live row and returns a `Step` per
  row (the fed token's log-probability and the distribution after it), one forward and one
  read for all rows of all prompts; `Rows.logprobs([(row, position, token)])` asks for other
  tokens' log-probabilities at positions a row has reached (0: the context), which the rows
  keep on their device. Requests passed as `score` (as for `score()`) may be scored in the
  first forward (an engine option, `fold_scoring`); what was scored so is in `Rows.folded`;
- `score({key: (rows, starts)})`: a `Scored`, the mean NLL of row[start:] for every row of
  every prompt (one scoring forward, one read), and what a commit may adopt of that forward;
- `commit({key: ids}, held)`: the new committed ids; `held` is this round's `Rows` and
  `Scored` values, passed on by the decoder: an engine takes a winner's keys and values from
  them and keeps nothing of a round itself.

Both engines implement all of it; neither has members the other lacks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Optional

from adafuse.decoding.engine.batching import SPLIT_WASTE
from adafuse.decoding.engine.executor import Executor
from adafuse.decoding.engine.readout import Dist, Step, mean_nll, read_dists  # noqa: F401 (re-exported)
from adafuse.decoding.output import ModelCost
from adafuse.errors import AdaFuseError

Key = Hashable


@dataclass(frozen=True)
class EngineOptions:
    """How an engine runs its model; none of these changes a choice, only speed and memory.

    pack_cpu_weights: float32 models on CPU run their linear layers through oneDNN over
        weights packed once (`cpu_linear.pack_model`), where the copies fit in half the
        memory available; False: this engine packs nothing (a model an earlier engine
        packed stays so until `cpu_linear.unpack_model`);
    share_prefix: each prompt's cache holds only what follows a task's shared prefix, read
        in place by every row (`prefix_attention`), where the model passes the probe;
        False: every prompt's cache starts as a copy of the prefix's;
    split_waste: on CPU, a padded forward that would waste more positions than this is split
        in two by width (`batching.width_groups`);
    fold_scoring: a later model scores the earlier models' proposals in its first branch
        forward, saving its scoring forward, but then proposes only after them (the models
        take turns); False: every model proposes at once from the committed text and all
        score in the scoring phase, so members on different devices compute at the same
        time. None (the default, "auto"): fold where every member is on the CPU (one device,
        where it measured faster), not elsewhere.
    """

    pack_cpu_weights: bool = True
    share_prefix: bool = True
    split_waste: int = SPLIT_WASTE
    fold_scoring: Optional[bool] = None  # None: auto (typing.Optional: Hydra's schema reads it)

    @classmethod
    def of(cls, options) -> EngineOptions:
        """Options from None, an EngineOptions or a mapping of its fields (a config node)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        options = dict(options)
        allowed = list(cls.__dataclass_fields__)
        for name, value in options.items():
            if name not in allowed:
                raise AdaFuseError(f"unknown engine option {name!r}; allowed: {', '.join(allowed)}")
            if name == "split_waste":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise AdaFuseError(f"engine.split_waste={value!r} is not allowed; it must be an integer >= 0")
            elif name == "fold_scoring":
                if value is not None and not isinstance(value, bool):
                    raise AdaFuseError(f"engine.fold_scoring={value!r} is not allowed; it must be true, "
                                       "false or null (auto)")
            elif not isinstance(value, bool):
                raise AdaFuseError(f"engine.{name}={value!r} is not allowed; it must be true or false")
        return cls(**options)

    def folds(self, devices) -> bool:
        """Whether a round folds scoring into branch forwards, for members on `devices`."""
        if self.fold_scoring is None:
            return all(getattr(d, "type", str(d)) == "cpu" for d in devices)
        return bool(self.fold_scoring)


class Done:
    """A call's result that is already there (an in-process engine computes when called)."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class Submits:
    """`submit(name, *args)`: issue a protocol call, get something with `.result()`. In
    process the call runs at once; an engine in another process (an actor) returns at once
    and computes meanwhile, so a decoder that submits a phase to every member before reading
    any result lets the members compute at the same time."""

    def submit(self, name: str, *args, **kwargs):
        return Done(getattr(self, name)(*args, **kwargs))


def gather(pending) -> list:
    """The results of submitted calls, in order."""
    return [p.result() for p in pending]


class Rows(Submits):
    """Branch rows opened by `Engine.open_rows`, each continuing one prompt's committed ids.

    The rows keep, on their device, every distribution they reached, so that a decoder can
    ask for a token it did not pick (`logprobs`) and a commit can adopt a row's keys and
    values; `fed[row]` holds the tokens each row was fed."""

    keys: list
    fed: list[list[int]]
    # {key: {(row as a tuple, start): NLL}}: the `score` requests of `open_rows`, scored with
    # the first step (the cached engine feeds them in that forward); empty where the engine
    # scores only in `score()` (the recompute oracle) or no step was taken
    folded: dict

    def step(self, live: Sequence[int], tokens: Sequence[int]) -> list[Step]:
        """Append tokens[i] to row live[i]; one forward for all, one read: a Step per row."""
        raise NotImplementedError

    def logprobs(self, queries: Sequence[tuple[int, int, int]]) -> list[float]:
        """log p(token) at (row, position, token) each, position being the tokens the row had
        been fed (0: the committed context); one read for all."""
        raise NotImplementedError


@dataclass
class Scored:
    """What `Engine.score` answers: {key: [mean NLL per row]}, and (engine-private) what a
    commit may adopt of the forward that computed them."""

    nll: dict
    held: list = field(default_factory=list)


class Engine(Submits):
    """One model, several prompts; the bookkeeping both engines share.

    top_k: how many top tokens each `Dist` holds (a decoder's need: max(2, B) for AdaFuse)."""

    def __init__(self, lm, total: ModelCost | None = None, options: EngineOptions | None = None,
                 top_k: int = 2):
        self.lm = lm
        self.total = total or ModelCost(lm.name)
        self.options = EngineOptions.of(options)
        self.top_k = max(2, int(top_k))
        self.executor = Executor(lm, self.total, pack_cpu_weights=self.options.pack_cpu_weights)
        self.costs: dict[Key, ModelCost] = {}
        self.ids: dict[Key, list[int]] = {}

    def add(self, key: Key, ids: Sequence[int], cost: ModelCost, prefix=None) -> None:
        if not ids:
            raise ValueError(f"empty prompt for model {self.lm.name!r}: nothing to condition on")
        self.costs[key] = cost
        self.ids[key] = list(ids)

    def add_many(self, entries: Sequence[tuple]) -> None:
        """Several prompts join at once: (key, ids, cost, prefix) each, as for `add`."""
        for key, ids, cost, prefix in entries:
            self.add(key, ids, cost, prefix)

    def remove(self, key: Key) -> None:
        self.costs.pop(key, None)
        self.ids.pop(key, None)

    def prefill(self, ids: list[int], cost: ModelCost):
        """A shared prefix encoded once, to pass to `add`; None: this engine reuses none."""
        return None

    def context_tensor(self, keys: Sequence[Key]):
        """[len(keys), vocab] on the device: the logits after each key's committed ids."""
        raise NotImplementedError

    def contexts(self, keys: Sequence[Key], k: int | None = None) -> dict[Key, Dist]:
        """{key: Dist} after each key's committed ids, top `k` (default `top_k`) tokens; one
        read for all keys."""
        keys = list(keys)
        dists, _ = read_dists(self.context_tensor(keys), k or self.top_k)
        return dict(zip(keys, dists))

    def open_rows(self, keys: Sequence[Key], score=None) -> Rows:
        raise NotImplementedError

    def score(self, requests: dict[Key, tuple[list[list[int]], list[int]]]) -> Scored:
        raise NotImplementedError

    def commit(self, updates: dict[Key, list[int]], held: Sequence = ()) -> None:
        for key, ids in updates.items():
            self.ids[key] = list(ids)

    def forward(self, ids, cache, mask, positions, gather, charge, kind="other", shared=None):
        """One forward through the executor (see `Executor.__call__`), its cost charged to
        the prompts it served: it counts once for each, its seconds shared in proportion to
        the tokens each fed."""
        logits, seconds, fed = self.executor(ids, cache, mask, positions, gather, charge, kind, shared)
        for key, tokens in charge.items():
            cost = self.costs[key]
            cost.forwards += 1
            cost.tokens_fed += tokens
            cost.seconds += seconds * (tokens / fed if fed else 1 / len(charge))
        return logits
