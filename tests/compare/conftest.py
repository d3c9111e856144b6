"""Fixtures of the compare tests: a synthetic sweep (helpers in compare_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from compare_helpers import make_run


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A θ_Δ × max_words sweep and the two single models, on triviaqa and gsm8k."""
    root = tmp_path / "runs"
    for task, offset in (("triviaqa", 0.0), ("gsm8k", 0.1)):
        grid = root / task / "sweep"
        grid.mkdir(parents=True)
        (grid / "multirun.yaml").write_text("{}\n")
        k = 0
        for theta in (0.0, 0.5, 1.0):
            for max_words in (1, 3):
                main = round(0.3 + offset + 0.1 * theta + 0.05 * max_words, 4)
                make_run(grid / f"{k}_theta_delta={theta},max_words={max_words}", task=task, theta=theta,
                         max_words=max_words, main=main, seconds_per_item=1 + 2 * theta + max_words,
                         forwards=int(100 * (1 + theta)), sweep_dir=grid)
                k += 1
        for index, main in ((0, 0.35 + offset), (1, 0.4 + offset)):
            make_run(root / task / f"greedy{index}", task=task, decoder="greedy", theta=None,
                     max_words=None, model_index=index, main=main, seconds_per_item=0.5, forwards=20)
    return root
