"""Members as Ray actors: each model loaded in its own process (on its own GPUs, anywhere on a
Ray cluster), served through the engine protocol.

    lm = load_member("path/to/model", placement="ray", num_gpus=1, device="auto")
    AdaFuse([load_model("smollm2-135m-instruct"), lm]).generate(...)

- `MemberActor` (in the actor's process) loads the model itself (`adafuse.models.load_model`:
  hub id, folder, GGUF, embedded name), so weights never pass through the driver, and opens
  real engines (`open_engine`) on it. What a round keeps on the device (branch rows, a
  scoring forward's keys and values, a shared prefix) stays in the actor under integer
  handles; the driver holds handles and sends them back (`commit(updates, held)`).
- `RayModel` (on the driver) stands in for the loaded model: the tokenizer (sent once by the
  actor, so driver and actor tokenise alike), names, EOS ids, the prompt format. Its `device`
  is of type "ray", so `EngineOptions.folds` (auto) keeps the members unfolded: every member
  proposes and scores at the same time.
- `RayEngine` / `RayRows` (on the driver) implement the protocol: `submit(name, ...)` issues
  the actor call and returns at once, `.result()` reads it; plain methods are both. Calls to
  one actor run in the order issued, so reading a result first reads every earlier one of
  that engine. Every answer carries the cost deltas (forwards, tokens fed, seconds, by kind)
  of the prompts it charged and of the engine's total; the driver adds them to its own
  `ModelCost`s, so counters are the same whatever the placement.
- A dead actor (killed, out of memory, its node lost) raises one `AdaFuseError` naming the
  member and what happened; an error inside the actor is re-raised as itself.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from adafuse.decoding.engine.protocol import Engine, EngineOptions, Rows, Scored
from adafuse.decoding.output import ModelCost
from adafuse.errors import AdaFuseError
from adafuse.models import LoadedModel

INSTALL = "pip install -e '.[ray]'"
# driver environment the actors need to load models the same way (a remote node has its own)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "ADAFUSE_CACHE", "ADAFUSE_CPU_BF16")
_ids = itertools.count()


def require_ray():
    try:
        import ray
    except ImportError:
        raise AdaFuseError(f"placement=ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None, timeout_s: float = 30.0):
    """Ray, initialised: joined to the cluster at `address` ("auto" or host:port) within
    `timeout_s`, else a local cluster of `num_cpus` CPUs (all where None)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if not address:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        return ray
    failure: list = []

    def join():
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - reported below, in one line
            failure.append(exc)

    thread = threading.Thread(target=join, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise AdaFuseError(f"the Ray cluster at ray.address={address!r} did not answer within "
                           f"{timeout_s:g} s; check the address, or leave it unset for a local cluster")
    if failure:
        raise AdaFuseError(f"could not join the Ray cluster at ray.address={address!r}: "
                           f"{_first_line(failure[0])}")
    return ray


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _take(cost: ModelCost):
    """What `cost` counted since the last take (None: nothing), and zero it."""
    if not (cost.forwards or cost.tokens_fed or cost.seconds or cost.by_kind):
        return None
    delta = (cost.forwards, cost.tokens_fed, cost.seconds, cost.by_kind)
    cost.forwards, cost.tokens_fed, cost.seconds, cost.by_kind = 0, 0, 0.0, {}
    return delta


def _apply(cost: ModelCost, delta) -> None:
    if delta is not None:
        forwards, tokens, seconds, by_kind = delta
        cost.add(ModelCost(cost.name, forwards, tokens, seconds, by_kind))


class MemberActor:
    """One model in its own process, serving the protocol of the engines opened on it
    (`ray.remote(MemberActor)`; see the module docstring)."""

    def __init__(self, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        self.lm = None
        self.engines: dict[int, SimpleNamespace] = {}

    def load(self, spec, options: dict) -> dict:
        from adafuse.models import load_model

        lm = self.lm = load_model(spec, **options)
        config = getattr(lm.model, "config", None)
        keep = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "_commit_hash")
        return dict(name=lm.name, tokenizer=lm.tokenizer, device=str(lm.device), chat_template=lm.chat_template,
                    weight=lm.weight, eos_ids=lm.eos_ids, load_seconds=lm.load_seconds, source=lm.source,
                    files_sha256=lm.files_sha256, dtype=lm.model.dtype, pid=os.getpid(),
                    config={k: getattr(config, k) for k in keep if isinstance(getattr(config, k, None), (int, str))})

    def open(self, eid: int, mode: str, options: EngineOptions, top_k: int) -> None:
        from adafuse.decoding.engine import open_engine

        engine = open_engine(self.lm, ModelCost(self.lm.name), mode, options, top_k)
        self.engines[eid] = SimpleNamespace(engine=engine, costs={}, held={})

    def close(self, eid: int) -> None:
        self.engines.pop(eid, None)

    def call(self, eid: int, release: list, name: str, args: tuple):
        """Run protocol call `name` on engine `eid`, after dropping the handles the driver
        released; returns (its answer, (total delta, {key: delta}))."""
        served = self.engines[eid]
        for handle in release:
            served.held.pop(handle, None)
        value = getattr(self, "_" + name)(served, *args)
        deltas = {key: d for key, cost in served.costs.items() if (d := _take(cost)) is not None}
        return value, (_take(served.engine.total), deltas)

    def _add_many(self, s, entries):
        for key, _, _ in entries:
            s.costs[key] = ModelCost(self.lm.name)
        s.engine.add_many([(key, ids, s.costs[key], s.held.get(prefix)) for key, ids, prefix in entries])

    def _remove(self, s, key):
        s.engine.remove(key)
        s.costs.pop(key, None)

    def _prefill(self, s, handle, ids):
        cost = ModelCost(self.lm.name)
        prefix = s.held[handle] = s.engine.prefill(ids, cost)
        return prefix is not None, _take(cost)

    def _contexts(self, s, keys, k):
        return s.engine.contexts(keys, k)

    def _open_rows(self, s, handle, keys, score):
        s.held[handle] = s.engine.open_rows(keys, score)

    def _step(self, s, handle, live, tokens):
        rows = s.held[handle]
        had = bool(rows.folded)
        steps = rows.step(live, tokens)
        return steps, (rows.folded if rows.folded and not had else None)

    def _logprobs(self, s, handle, queries):
        return s.held[handle].logprobs(queries)

    def _score(self, s, handle, requests):
        scored = s.held[handle] = s.engine.score(requests)
        return scored.nll

    def _commit(self, s, updates, handles):
        s.engine.commit(updates, [s.held[h] for h in handles])


class ActorDevice:
    """Where a Ray member runs, as the decoder sees it: type "ray" (not "cpu": members in
    other processes are never folded), printed as ray:<the actor's device>."""

    type = "ray"

    def __init__(self, inner: str):
        self.inner = inner

    def __str__(self) -> str:
        return f"ray:{self.inner}"

    __repr__ = __str__


@dataclass(repr=False)
class RayModel(LoadedModel):
    """The driver's stand-in for a member loaded in a Ray actor (`load_member`)."""

    actor: Any = None
    pid: int = 0  # the actor's process
    placement: str = "ray"

    def get(self, ref):
        """ray.get, with an actor's death as one AdaFuseError naming this member."""
        ray = require_ray()
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise AdaFuseError(f"member {self.name!r} failed in its Ray actor: {_first_line(exc)}") from None
        except ray.exceptions.RayError as exc:
            raise AdaFuseError(f"member {self.name!r}: its Ray actor (pid {self.pid}) is lost "
                               f"({type(exc).__name__}): {_first_line(exc)}") from None


def load_member(spec, placement: str = "ray", num_gpus: float = 0, num_cpus: float = 1,
                threads: int | None = 1, address: str | None = None, **options) -> LoadedModel:
    """A member placed as asked: "local" loads it here (`load_model`), "ray" in a new Ray
    actor holding `num_gpus` GPUs and `num_cpus` CPUs, running `threads` torch threads, on the
    cluster at `address` (a local one where None and Ray is not initialised yet). `options`
    are `load_model`'s (device, dtype, alias, ...)."""
    from adafuse.models import load_model

    if placement in (None, "local"):
        return load_model(spec, **options)
    if placement != "ray":
        raise AdaFuseError(f"unknown placement {placement!r}; allowed: local, ray")
    ray = connect(address)
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    actor = ray.remote(MemberActor).options(num_cpus=num_cpus, num_gpus=num_gpus,
                                            runtime_env={"env_vars": env}).remote(threads)
    name = options.get("alias") or getattr(spec, "name", None) or str(spec)
    info = RayModel(name=name, model=None, tokenizer=None, device=None, actor=actor).get(
        actor.load.remote(spec, options))
    model = SimpleNamespace(dtype=info.pop("dtype"), config=SimpleNamespace(**info.pop("config")))
    device = ActorDevice(info.pop("device"))
    return RayModel(model=model, device=device, actor=actor, **info)


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
        weakref.finalize(self, _close, lm.actor, self.eid)

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
