"""The config schema: dataclasses in Hydra's ConfigStore, so a typo'd key or a wrong type
fails when the config is composed, with Hydra's message, not halfway through a run.

    conf/config.yaml          defaults: [adafuse_schema, models: ..., task: ..., decoder: ..., ...]
    conf/decoder/adafuse.yaml defaults: [/schema/decoder@_here_: adafuse, _self_]

Importing this module stores the schemas and the resolvers the YAML files use (`register()`),
before Hydra composes anything. A decoder's schema is made from its class
(`adafuse.decoding.registry.config_schema`) when the class registers, so importing this module
imports the decoders, and torch with them.
"""

from __future__ import annotations

import os
import re
import warnings
import contextlib
import dataclasses
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, List, Optional

from omegaconf import MISSING, OmegaConf

from adafuse.decoding import DECODERS, AdaFuse  # registering a decoder stores its schema
from adafuse.decoding.engine import EngineOptions
from adafuse.decoding.registry import default
from adafuse.errors import AdaFuseError
from adafuse.model_spec import ModelSpec


def schema_of(cls: type, name: str, doc: str) -> type:
    """A mutable dataclass with the fields, types and defaults of the dataclass `cls`, for
    Hydra's ConfigStore: made from `cls`, not copied, so a field added there is a key here. A
    field without a default is required (MISSING). OmegaConf would make a node of a frozen
    dataclass read-only, hence a new class rather than `cls` itself."""
    hints = typing.get_type_hints(cls)

    def default(f: dataclasses.Field) -> Any:
        if f.default_factory is not dataclasses.MISSING:
            return dataclasses.field(default_factory=f.default_factory)
        return dataclasses.field(default=MISSING if f.default is dataclasses.MISSING else f.default)

    made = dataclasses.make_dataclass(name, [(f.name, hints[f.name], default(f)) for f in dataclasses.fields(cls)])
    made.__doc__ = doc
    made.__module__ = __name__
    return made


# one model of the set: the fields of adafuse.model_spec.ModelSpec, declared there once
ModelConf = schema_of(ModelSpec, "ModelConf", "One model of the set; the fields of `adafuse.model_spec.ModelSpec`.")


@dataclass
class RayConf:
    """The Ray cluster of members placed in actors (models.N.placement=ray)."""

    address: Optional[str] = None  # auto or host:port to join a cluster; null: start a local one
    num_cpus: Optional[int] = None  # a local cluster's CPUs; null: Ray's default
    timeout_s: float = 30.0  # how long to wait for a cluster to answer


@dataclass
class TaskConf:
    """A task card (tasks/<name>/task.yaml) and what this run takes from it."""

    name: str = MISSING
    source: Optional[str] = None  # a source named in the card (bundled, hf) or a .jsonl path
    limit: Optional[int] = None  # the first `limit` items (after the shuffle); null: all
    shuffle_seed: Optional[int] = None  # null: the file's order
    max_new_tokens: Optional[int] = None  # null: the card's
    # Any, not List[str]: OmegaConf cannot hold an interpolation in a typed list field
    stop: Any = None  # a list of strings; null: the card's


@dataclass
class WandbConf:
    name: str = "wandb"
    project: str = "adafuse"
    entity: Optional[str] = None
    group: Optional[str] = None  # null: the sweep folder in a multirun, else none
    job_type: Optional[str] = None  # null: the task's name
    run_name: Optional[str] = None  # null: <task>/<run folder>
    tags: List[str] = field(default_factory=list)
    mode: Optional[str] = None  # online, offline, disabled; null: online iff an API key is set
    init_timeout: float = 30.0  # seconds before an online init gives up (the run goes on)
    log_samples: bool = True  # the per-sample table


@dataclass
class NoLoggerConf:
    name: str = "none"


# the engine options (adafuse.decoding.engine.EngineOptions, frozen) as a mutable schema
EngineConf = schema_of(EngineOptions, "EngineConf", "The engine options; the fields of `EngineOptions`.")


@dataclass
class RunConfig:
    models: List[ModelConf] = field(default_factory=list)
    task: Optional[TaskConf] = None  # null: decode `prompt` alone
    decoder: Any = None  # from the decoder group: schema/decoder/<name>, made from its class
    logger: Any = None  # WandbConf or NoLoggerConf, from the logger group

    # prompt mode (no task)
    prompt: str = ""
    # shortcuts, interpolated into the task and decoder nodes
    max_new_tokens: Optional[int] = None  # null: the task card's (prompt mode: 32)
    stop: Any = None  # a list of strings; null: the task card's (prompt mode: ["\n"])
    theta_delta: float = default(AdaFuse, "theta_delta")
    max_words: int = default(AdaFuse, "max_words")
    num_candidates: int = default(AdaFuse, "num_candidates")
    limit: Optional[int] = None
    batch_size: int = 1
    seed: Optional[int] = None
    device: str = "auto"
    dtype: str = "auto"

    # where and how
    runs_dir: str = "runs"
    resume: Optional[str] = None  # a run folder to continue
    shard: int = 0  # this job decodes shard `shard` of `num_shards` contiguous slices
    num_shards: int = 1
    progress: bool = True
    threads: Any = "auto"  # CPU threads: auto (free usable cores; OMP_NUM_THREADS wins) or N
    engine: EngineConf = field(default_factory=EngineConf)  # engine.share_prefix=false, ...
    ray: RayConf = field(default_factory=RayConf)  # ray.address=auto, for models.N.placement=ray


# --- resolvers used by conf/config.yaml ------------------------------------------------------


def run_dir(resume: Optional[str], fresh: str, runs_dir: Optional[str] = None) -> str:
    """hydra.run.dir: the run to resume, or a new folder. A resume path is checked here,
    before Hydra creates the folder, so a mistyped one leaves nothing behind. A new folder is
    claimed with an atomic mkdir: two runs started in the same second (a shell loop of jobs)
    get `<time>` and `<time>_2` instead of sharing one folder."""
    from adafuse.runfolder import check_location

    if runs_dir is not None:
        check_location("runs_dir", runs_dir)  # '' would put runs under /<task>/, '/' in the root
    if resume:
        check_location("resume", resume)
        if not (Path(resume) / "results.json").is_file():
            raise AdaFuseError(f"resume={resume!r}: no run there (a run folder holds results.json)")
        from adafuse.runfolder.rundir import RunDir

        RunDir(resume).read_results()  # a damaged one fails before anything is written there
        return str(resume)
    try:
        Path(fresh).parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            candidate = fresh if n == 1 else f"{fresh}_{n}"
            try:
                Path(candidate).mkdir()
                return candidate
            except FileExistsError:
                if not Path(candidate).is_dir():
                    raise
    except OSError as exc:
        where = f"runs_dir={runs_dir!r}" if runs_dir is not None else "the run folder"
        raise AdaFuseError(f"{where}: cannot create {exc.filename or fresh}: {exc.strerror}; "
                           "give runs_dir= a folder that can be written") from None
    raise AdaFuseError(f"{fresh}: 999 runs started in this second; pass hydra.run.dir=...")


def sweep_root(runs_dir: Optional[str]) -> str:
    """runs_dir as the root of hydra.sweep.dir, checked: not empty, not the root folder."""
    from adafuse.runfolder import check_location

    check_location("runs_dir", runs_dir)
    return str(runs_dir)


_hydra_subdirs: dict[str, str] = {}  # output dir -> the subdir Hydra was last told to write
_locks: dict[str, contextlib.ExitStack] = {}  # output dir -> its lock, taken by hydra_subdir
_refused: dict[str, tuple[AdaFuseError, str]] = {}  # a sweep job's folder -> why, where Hydra wrote


def refused_job(output_dir: str) -> Optional[AdaFuseError]:
    """Why `hydra_subdir` refused this sweep job's folder (locked by another run, damaged),
    or None; the throwaway folder Hydra wrote its files into instead is removed."""
    import shutil

    refused = _refused.pop(output_dir, None)
    if refused is None:
        return None
    shutil.rmtree(refused[1], ignore_errors=True)
    return refused[0]


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # no Hydra config set: not inside a Hydra job
        return False


def taken_lock(output_dir: str) -> Optional[contextlib.ExitStack]:
    """The run folder's lock that `hydra_subdir` took for this invocation, handed to the task
    function (which lets go of it when it ends); None where Hydra did not ask."""
    return _locks.pop(output_dir, None)


def _take(output_dir: str) -> None:
    """Lock the run folder for this invocation and check what is in it."""
    if output_dir not in _locks:
        from adafuse import runfolder

        stack = contextlib.ExitStack()
        stack.enter_context(runfolder.hold(Path(output_dir)))  # FolderInUse: one line, exit 2
        _locks[output_dir] = stack
    if (Path(output_dir) / "results.json").is_file():  # a damaged one fails before .hydra is written
        from adafuse.runfolder.rundir import RunDir

        try:
            RunDir(output_dir).read_results()
        except AdaFuseError:
            _locks.pop(output_dir).close()
            raise


def hydra_subdir(output_dir: str) -> str:
    """hydra.output_subdir: `.hydra`, or, when a run is continued in its folder, a new folder
    inside it, so the first invocation's saved config is never overwritten.

    Hydra asks this just before it writes that subdir, so the run folder's lock is taken here:
    a second invocation on the same folder is refused before it writes anything there, and
    one that fails on bad input later removes only what it wrote itself.

    A sweep job's folder that is refused (held by another run, damaged, a link inside) must
    not stop the sweep (Hydra would end it on an error raised here): Hydra is given a
    throwaway folder for its files instead, and the job fails alone (`refused_job`)."""
    if output_dir in _refused:  # Hydra asks more than once
        return _refused[output_dir][1]
    try:
        _take(output_dir)
    except AdaFuseError as exc:
        if not _multirun():
            raise
        import tempfile

        _refused[output_dir] = (exc, tempfile.mkdtemp(prefix="adafuse-refused-"))
        return _refused[output_dir][1]  # absolute: Hydra's output_dir / it is this folder
    if not (Path(output_dir) / ".hydra" / "config.yaml").is_file():
        subdir = ".hydra"
    else:
        subdir = ".hydra/reruns/" + datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    _hydra_subdirs[output_dir] = subdir
    return subdir


def written_hydra_subdir(output_dir: str) -> Optional[str]:
    """Where Hydra saved this invocation's config. (Reading hydra.output_subdir again would
    ask the resolver again, and by then .hydra/config.yaml exists.)"""
    return _hydra_subdirs.get(output_dir)


SWEEP_KEYS_ENV = "ADAFUSE_SWEEP_KEYS"  # set by adafuse.run.main for the jobs of a multirun


def job_dir(num: int, overrides, *, _root_) -> str:
    """hydra.sweep.subdir: the job number and the values of the swept keys, e.g.
    `3_theta_delta=0.7,max_words=3`. Swept keys are those of a sweep preset
    (hydra.sweeper.params) and those given with several values on the command line."""
    keys = {k for k in os.environ.get(SWEEP_KEYS_ENV, "").split(",") if k}
    params = OmegaConf.select(_root_, "hydra.sweeper.params")
    keys |= set(params.keys()) if params else set()
    picked = [str(o) for o in overrides if str(o).split("=", 1)[0].lstrip("+~") in keys]
    name = f"{num}_" + ",".join(picked) if picked else str(num)
    return re.sub(r"[/\\\s]+", "_", name)[:120]  # one folder, whatever the values hold


CONF = Path(__file__).resolve().parents[2] / "conf"


def help_page(app: str, *, _root_) -> str:
    """`${adafuse.help:run}`: the --help page of `python -m adafuse.run` (`serve`: of
    `python -m adafuse.serve`), its arguments read from the composed config (adafuse.runner.help_page)."""
    from adafuse.runner import help_page as pages

    return pages.page(app, _root_)


def register() -> None:
    """Store the schemas and resolvers (idempotent: tests import this more than once)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="adafuse_schema", node=RunConfig)
    cs.store(group="schema/logger", name="wandb", node=WandbConf)
    cs.store(group="schema/logger", name="none", node=NoLoggerConf)
    cs.store(group="schema/task", name="task", node=TaskConf)
    # conf/hydra/launcher/submitit_*.yaml share their names with the plugin's schemas, so that
    # `hydra/launcher=submitit_slurm` picks ours; Hydra warns about such pairs at each compose
    warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema")
    try:  # the cluster extra: pip install 'adafuse[cluster]'
        from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

        # as plain dicts: Hydra's plugin scan re-imports that module, and a dataclass from the
        # first import would then not merge with its twin from the second
        for name, node in {"submitit_slurm": SlurmQueueConf, "submitit_local": LocalQueueConf}.items():
            cs.store(group="schema/launcher", name=name,
                     node=OmegaConf.to_container(OmegaConf.structured(node)))
    except ImportError:
        pass
    for name, fn in {"adafuse.run_dir": run_dir, "adafuse.sweep_root": sweep_root,
                     "adafuse.hydra_subdir": hydra_subdir,
                     "adafuse.job_dir": job_dir, "adafuse.help": help_page}.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)


# at import: a submitit job unpickles the task function, which imports this module, and
# needs the resolvers before it composes its config
register()
