"""What code a result was produced with: the package versions and the git commit of the
checkout, as results.json records them (`versions`, `git`). The model files' hashes are the
runner's (adafuse.runner.provenance), which loads the models.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("adafuse", "torch", "transformers", "tokenizers", "accelerate", "hydra-core",
            "omegaconf", "datasets", "sacrebleu", "wandb", "hydra-submitit-launcher")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_state(root: Path | None = None) -> dict[str, Any]:
    """The commit of the adafuse checkout, and whether it had uncommitted changes, as they
    were when this process first asked: the code a sweep runs is what its process loaded at
    the start, so a checkout that moves on during a long sweep must not relabel later jobs."""
    import adafuse

    return dict(_git_state(root or Path(adafuse.__file__).resolve().parent.parent))


@functools.cache
def _git_state(root: Path) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}
