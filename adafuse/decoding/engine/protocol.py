"""What a decoder asks of an engine: one model, several prompts keyed by the caller.

- `add(key, ids, cost, prefix)` / `add_many(entries)` / `remove(key)`: prompts join or leave;
  `prefill(ids, cost)`: a shared prefix encoded once, the `prefix` of later `add`s (None
  where the engine does not reuse one);
- `ids[key]`: the committed ids of prompt_m + R; `context_logits(key)`: the next-token
  logits right after them;
- `open_rows(keys, score=None)`: branch rows continuing the committed contexts, one per key
  listed; `Rows.extend(live, tokens)` feeds one token to each live row and returns their
  next-token logits, one forward for all rows of all prompts. Requests passed as `score`
  (as for `score()`) may be scored in the first of those forwards, which saves a later
  model the scoring forward for the proposals made before it; what was scored so is in
  `Rows.folded`;
- `score({key: (rows, starts)})`: mean NLL of row[start:] for every row (a scoring forward);
- `commit({key: ids}, branches)`: the new committed ids; `branches` (this round's branch
  rows and what they fed) lets an engine take a winner's keys and values from its branch.

Both engines implement all of it; neither has members the other lacks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

from adafuse.decoding.engine.batching import SPLIT_WASTE
from adafuse.decoding.engine.executor import Executor
from adafuse.decoding.output import ModelCost
from adafuse.errors import AdaFuseError

Key = Hashable


def mean_nll(logits: torch.Tensor, targets: Sequence[int]) -> float:
    """Mean of -log p(target_i) where logits[i] predicts target_i."""
    if len(targets) == 0:
        return float("nan")
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs[torch.arange(len(targets)), torch.tensor(list(targets), dtype=torch.long)]
    return float(-picked.mean())


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
        in two by width (`batching.width_groups`).
    """

    pack_cpu_weights: bool = True
    share_prefix: bool = True
    split_waste: int = SPLIT_WASTE

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
            elif not isinstance(value, bool):
                raise AdaFuseError(f"engine.{name}={value!r} is not allowed; it must be true or false")
        return cls(**options)


@dataclass
class Branches:
    """A round's branch rows of one model and, per row, the tokens it fed and the logits after
    each: what a commit may adopt when the winner is a span this model generated."""

    rows: Rows
    fed: dict[int, tuple[list[int], list]] = field(default_factory=dict)


class Rows:
    """Branch rows opened by `Engine.open_rows`."""

    keys: list
    # {key: {(row as a tuple, start): NLL}}: the `score` requests of `open_rows`, scored with
    # the first step (the cached engine feeds them in that forward); empty where the engine
    # scores only in `score()` (the recompute oracle) or no step was taken
    folded: dict

    def extend(self, live: Sequence[int], tokens: Sequence[int]) -> torch.Tensor:
        """Append tokens[i] to row live[i]; return [len(live), vocab] next-token logits."""
        raise NotImplementedError


class Engine:
    """One model, several prompts; the bookkeeping both engines share."""

    def __init__(self, lm, total: ModelCost | None = None, options: EngineOptions | None = None):
        self.lm = lm
        self.total = total or ModelCost(lm.name)
        self.options = EngineOptions.of(options)
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

    def context_logits(self, key: Key) -> torch.Tensor:
        raise NotImplementedError

    def open_rows(self, keys: Sequence[Key], score=None) -> Rows:
        raise NotImplementedError

    def score(self, requests: dict[Key, tuple[list[list[int]], list[int]]]) -> dict[Key, list[float]]:
        raise NotImplementedError

    def commit(self, updates: dict[Key, list[int]], branches: Branches | None = None) -> None:
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
