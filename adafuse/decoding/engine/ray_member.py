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
- `RayEngine` / `RayRows` (on the driver, `ray_engine.py`) implement the protocol as actor
  calls; every answer carries the cost deltas of what it ran, added to the driver's
  `ModelCost`s, so counters are the same whatever the placement.
- A dead actor (killed, out of memory, its node lost) raises one `AdaFuseError` naming the
  member and what happened; an error inside the actor is re-raised as itself.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from adafuse.decoding.engine.protocol import EngineOptions
from adafuse.decoding.engine.ray_engine import Pending, RayEngine, RayRows  # noqa: F401 (re-exported)
from adafuse.decoding.output import ModelCost
from adafuse.errors import AdaFuseError
from adafuse.models import LoadedModel

INSTALL = "pip install -e '.[ray]'"
# driver environment the actors need to load models the same way (a remote node has its own)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "ADAFUSE_CACHE", "ADAFUSE_CPU_BF16")


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
