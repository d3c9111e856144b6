"""What a result was produced with: the model files' hashes (the package versions and the git
commit are adafuse.runfolder.provenance's).

A model loaded from the GGUF cache carries the hashes of the files it was read from, checked at
load (`LoadedModel.files_sha256`): those are recorded. Other model files' hashes are cached by
(path, inode, size, mtime, ctime) in ~/.cache/adafuse/file_hashes.json, so a 1 GB weight file
is read once, not at every run; a write in place changes the ctime even when the mtime is set
back, so it is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

# the files that decide what a model computes (not READMEs or licences)
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".gguf", ".json", ".model", ".txt", ".py", ".tiktoken")


def _hash_cache_path() -> Path:
    from adafuse.model_spec import default_cache_dir

    return default_cache_dir() / "file_hashes.json"


def file_sha256(path: Path, cache: dict[str, Any] | None = None) -> str:
    path = path.resolve()
    stat = path.stat()
    key = str(path)
    entry = (cache or {}).get(key)
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
             "inode": stat.st_ino}
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()):
        return entry["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if cache is not None:
        cache[key] = {**stamp, "sha256": digest.hexdigest()}
    return digest.hexdigest()


def source_hashes(source: str) -> dict[str, str]:
    """SHA-256 of a model's weight file, or of each file of its folder that shapes its outputs."""
    path = Path(source).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES)
    else:
        return {}
    cache_path = _hash_cache_path()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):  # a damaged cache only costs a re-hash
        cache = {}
    hashes = {p.name: file_sha256(p, cache) for p in files}
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        tmp.replace(cache_path)
    except OSError:
        pass  # a read-only cache only costs the next run a re-hash
    return hashes


def model_record(lm) -> dict[str, Any]:
    """Where a loaded model came from, and the hashes that pin it down."""
    record = {
        "name": lm.name,
        "source": lm.source,
        "device": str(lm.device),
        "dtype": str(getattr(lm.model, "dtype", "")).replace("torch.", ""),
        "load_seconds": round(lm.load_seconds, 3),
        "files_sha256": dict(getattr(lm, "files_sha256", None) or {})
        or (source_hashes(lm.source) if lm.source else {}),
    }
    revision = getattr(getattr(lm.model, "config", None), "_commit_hash", None)
    if revision:
        record["hub_revision"] = revision  # a hub model's commit, when it came from the hub
    return record
