"""threads=auto: the usable cores less the load on them, at least one; OMP_NUM_THREADS wins."""

from __future__ import annotations

import pytest

from adafuse.errors import AdaFuseError
from adafuse.runner import threads


@pytest.mark.parametrize("cores, load, expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 1.0, 1), (2, 5.8, 1), (8, 2.0, 6), (8, 0.0, 8), (1, 0.0, 1)])
def test_auto_leaves_the_loaded_cores(monkeypatch, cores, load, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.auto_threads(cores=cores, load=load)[0] == expected


def test_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.auto_threads(cores=8, load=0.0) == (3, "OMP_NUM_THREADS")


def test_explicit_threads_are_set_and_restored(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value", [0, -1, "many", 1.5, True])
def test_bad_threads(value):
    with pytest.raises(AdaFuseError, match="threads"):
        threads.check_threads(value)
