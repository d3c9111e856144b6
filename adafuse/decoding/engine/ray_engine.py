"""The driver's side of an engine opened in a member's Ray actor (`ray_member.py`): the
engine protocol as actor calls.

`submit(name, ...)` issues the call and returns at once; `.result()` reads it. Calls to one
actor run in the order issued, so reading a result first reads every earlier call of that
engine (`RayEngine.unread`), applying each answer's cost deltas (forwards, tokens fed,
seconds, by kind, of the prompts it charged and of the engine's total) to the driver's own
`ModelCost`s. What the actor keeps for a round (rows, a scoring forward, a prefix) is a
`Handle` here; dropping the last reference releases it with the engine's next call.
"""

from __future__ import annotations

import itertools
import weakref
from collections import deque

from adafuse.decoding.engine.protocol import Engine, EngineOptions, Rows, Scored
from adafuse.decoding.output import ModelCost
from adafuse.errors import AdaFuseError

_ids = itertools.count()  # engine and handle ids, unique in this driver


def _apply(cost: ModelCost, delta) -> None:
    if delta is not None:
        forwards, tokens, seconds, by_kind = delta
        cost.add(ModelCost(cost.name, forwards, tokens, seconds, by_kind))


class Pending:
    """A submitted actor call; `result()` reads it (and every earlier call of its engine),
    applies its cost deltas and returns its answer (through `then`)."""

    def __init__(self, engine: RayEngine, ref, then=None):
        self.engine, self.ref, self.then = engine, ref, then
        self.done, self.value = False, None

    def result(self):
        queue = self.engine.unread
        while not self.done:
            if not queue:  # an earlier call of this engine failed, this one was never read
                raise AdaFuseError(f"member {self.engine.lm.name!r}: a call after a failed one")
            queue.popleft().read()
        return self.value

    def read(self) -> None:
        value, (total, deltas) = self.engine.lm.get(self.ref)
        self.done = True  # before `then`: an error there is not read twice
        self.engine.apply(total, deltas)
        self.value = self.then(value) if self.then else value


class Handle:
    """Something an actor keeps for the driver (a prefix, a `Scored`'s forward); dropping
    the last reference releases it with the engine's next call."""

    def __init__(self, engine: RayEngine, hid: int):
        self.hid = hid
        weakref.finalize(self, engine.released.append, hid)


class RayEngine(Engine):
    """The driver's side of an engine in a member's Ray actor (see the module docstring)."""

    def __init__(self, lm: RayModel, total: ModelCost | None = None, mode: str = "cached",
                 options=None, top_k: int = 2):
        self.lm = lm
        self.total = total or ModelCost(lm.name)
        self.options = EngineOptions.of(options)
        self.top_k = max(2, int(top_k))
        self.costs: dict = {}
        self.ids: dict = {}
        self.unread: deque[Pending] = deque()
        self.released: list[int] = []
        self.eid = next(_ids)
        lm.get(lm.actor.open.remote(self.eid, mode, self.options, self.top_k))
        weakref.finalize(self, _close, lm.actor, self.eid).atexit = False  # Ray is shut down by then

    def call(self, name: str, *args, then=None) -> Pending:
        release, self.released[:] = list(self.released), []
        pending = Pending(self, self.lm.actor.call.remote(self.eid, release, name, args), then)
        self.unread.append(pending)
        return pending

    def apply(self, total, deltas: dict) -> None:
        _apply(self.total, total)
        for key, delta in deltas.items():
            if key in self.costs:
                _apply(self.costs[key], delta)

    def submit(self, name: str, *args, **kwargs) -> Pending:
        return getattr(self, "_submit_" + name)(*args, **kwargs)

    def _submit_add(self, key, ids, cost, prefix=None):
        return self._submit_add_many([(key, ids, cost, prefix)])

    def _submit_add_many(self, entries):
        for key, ids, cost, _ in entries:
            if not ids:  # as the in-process engine says it
                raise ValueError(f"empty prompt for model {self.lm.name!r}: nothing to condition on")
            self.costs[key], self.ids[key] = cost, list(ids)
        return self.call("add_many", [(k, list(ids), getattr(p, "hid", None)) for k, ids, _, p in entries])

    def _submit_remove(self, key):
        self.costs.pop(key, None)
        self.ids.pop(key, None)
        return self.call("remove", key)

    def _submit_prefill(self, ids, cost):
        hid = next(_ids)

        def then(value):
            kept, delta = value
            _apply(cost, delta)
            return Handle(self, hid) if kept else None
        return self.call("prefill", hid, list(ids), then=then)

    def _submit_contexts(self, keys, k=None):
        return self.call("contexts", list(keys), k)

    def _submit_score(self, requests):
        hid = next(_ids)
        return self.call("score", hid, requests, then=lambda nll: Scored(nll, [Handle(self, hid)]))

    def _submit_commit(self, updates, held=()):
        for key, ids in updates.items():
            self.ids[key] = list(ids)
        handles = [h.hid for item in held for h in (item.held if isinstance(item, Scored) else [item])]
        return self.call("commit", updates, handles)

    def add(self, key, ids, cost, prefix=None):
        return self.submit("add", key, ids, cost, prefix).result()

    def add_many(self, entries):
        return self.submit("add_many", entries).result()

    def remove(self, key):
        return self.submit("remove", key).result()

    def prefill(self, ids, cost):
        return self.submit("prefill", ids, cost).result()

    def contexts(self, keys, k=None):
        return self.submit("contexts", keys, k).result()

    def open_rows(self, keys, score=None) -> RayRows:
        """Rows kept in the actor; returns at once (their opening is read with their first
        answer, calls to an actor running in order)."""
        rows = RayRows(self, next(_ids), keys)
        self.call("open_rows", rows.hid, list(keys), score)
        return rows

    def score(self, requests):
        return self.submit("score", requests).result()

    def commit(self, updates, held=()):
        return self.submit("commit", updates, held).result()


def _close(actor, eid: int) -> None:
    import ray

    if not ray.is_initialized():  # a call now would start a new local Ray instance to reach nothing
        return
    try:
        actor.close.remote(eid)
    except Exception:  # noqa: BLE001 - Ray shut down or the actor gone: nothing left to free
        pass


class RayRows(Rows, Handle):
    """Branch rows kept in the actor; `fed` is mirrored here, `folded` comes with the step
    that scored it."""

    def __init__(self, engine: RayEngine, hid: int, keys):
        Handle.__init__(self, engine, hid)
        self.engine, self.keys = engine, list(keys)
        self.fed = [[] for _ in self.keys]
        self.folded: dict = {}

    def submit(self, name: str, *args, **kwargs) -> Pending:
        if name == "step":
            return self._submit_step(*args, **kwargs)
        if name == "logprobs":
            return self.engine.call("logprobs", self.hid, list(args[0]))
        raise AttributeError(f"rows have no call {name!r}")

    def _submit_step(self, live, tokens):
        live, tokens = list(live), [int(t) for t in tokens]
        for row, token in zip(live, tokens):
            self.fed[row].append(token)

        def then(value):
            steps, folded = value
            if folded is not None:
                self.folded = folded
            return steps
        return self.engine.call("step", self.hid, live, tokens, then=then)

    def step(self, live, tokens):
        return self.submit("step", live, tokens).result()

    def logprobs(self, queries):
        return self.submit("logprobs", queries).result()
