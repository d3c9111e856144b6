"""bench/gpu_check.sh keeps working: on CPU at reduced sizes it runs the same code a GPU
machine runs (bf16 agreement of cached and recompute, the speed table)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE": "cpu", "PY": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1500)


def _rows(stdout: str, section: str) -> list[list[str]]:
    """The data rows of one of the script's two tables."""
    lines = stdout.split(section, 1)[1].strip().splitlines()
    lines = lines[1 + next(i for i, line in enumerate(lines) if line.startswith("pair")):]
    rows = []
    for line in lines:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def test_gpu_check_runs_on_cpu_and_prints_one_table():
    done = _run("--no-embedded")
    assert done.returncode == 0, done.stderr[-2000:]
    agree = _rows(done.stdout, "agreement, cached vs recompute")
    assert [r[0] for r in agree] == ["tiny"]
    assert int(agree[0][2]) > 0 and agree[0][6] == "0"  # rounds compared, no disagreement
    speed = _rows(done.stdout, "speed (same prompts")
    systems = {(r[-7], int(r[-6])) for r in speed}  # (system's last word, batch)
    assert {("cached", 1), ("cached", 2), ("random-0", 1), ("random-1", 2)} <= systems
    assert all(float(r[-3]) > 0 for r in speed)  # ms per word measured
    counted = _rows(done.stdout, "counts per word at batch 1")
    assert [r[-5] for r in counted][-1] == "cached" and len(counted) == 3
    assert all(0 < float(r[-1]) for r in counted)  # host reads per forward, counted
    assert "device syncs in one AdaFuse round (torch.cuda.set_sync_debug_mode('warn')): n/a" in done.stdout


def test_gpu_check_refuses_cuda_without_cuda():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = _run("--device", "cuda")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "DEVICE=cuda" in done.stderr and "DEVICE=cpu" in done.stderr


@pytest.mark.slow
@pytest.mark.long  # about 10 minutes on 2 cores (bf16 emulated); the tiny pair's run above is in make test
def test_gpu_check_with_the_embedded_pair_on_cpu():
    done = _run("--no-8b", "--prompts", "1", "--tokens", "8")
    assert done.returncode == 0, done.stderr[-2000:]
    agree = _rows(done.stdout, "agreement, cached vs recompute")
    assert [r[0] for r in agree] == ["tiny", "embedded"]
