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


@pytest.mark.parametrize("load, own, expected", [(1.0, 1.0, 2), (1.0, 0.0, 1), (2.0, 1.0, 1), (0.3, 1.0, 2)])
def test_auto_does_not_count_its_own_process_as_other_load(monkeypatch, load, own, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.auto_threads(cores=2, load=load, own=own)[0] == expected


def test_own_load_follows_the_load_averages_decay():
    # busy one core for 10 minutes: about a whole core of the 1-minute average; for 2 s: little
    assert threads.own_load(cpu_seconds=600.0, age=600.0) == pytest.approx(1.0, abs=1e-3)
    assert threads.own_load(cpu_seconds=2.0, age=2.0) < 0.05
    assert threads.own_load(cpu_seconds=30.0, age=600.0) < 0.06  # mostly idle
    assert 0.0 <= threads.own_load() < 4 * (threads.os.cpu_count() or 1)


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


def test_threads_capped_at_a_few_per_cpu(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    threads.check_threads(8)
    with pytest.raises(AdaFuseError) as err:
        threads.check_threads(9)
    assert str(err.value) == ("threads=9 is not allowed; threads must be auto or an integer in "
                              "[1, 8] (4 x this machine's 2 CPUs)")


@pytest.fixture
def fresh_threads(monkeypatch):
    """threads' process-wide memory, as in a new process; torch's count restored after."""
    import torch

    before = torch.get_num_threads()
    for name in ("_auto", "_applied", "_default"):
        monkeypatch.setattr(threads, name, None)
    yield torch
    torch.set_num_threads(before)


def test_a_load_outside_the_runner_applies_auto_once(fresh_threads, monkeypatch):
    torch = fresh_threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "auto_threads", lambda: (1, "test"))
    torch.set_num_threads(threads.physical_cores())  # torch's own default: nobody chose
    threads.apply_auto_once()
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads.physical_cores())
    threads.apply_auto_once()  # once a process
    assert torch.get_num_threads() == threads.physical_cores()


def test_a_count_the_user_chose_stands(fresh_threads, monkeypatch):
    torch = fresh_threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    monkeypatch.setattr(threads, "auto_threads", lambda: (1, "test"))
    torch.set_num_threads(3)  # torch.set_num_threads(3) before load_model
    threads.apply_auto_once()
    assert torch.get_num_threads() == 3


def test_load_model_applies_auto(fresh_threads, monkeypatch, tmp_path):
    from tests import tiny_hf

    from adafuse import load_model

    calls = []
    monkeypatch.setattr(threads, "apply_auto_once", lambda: calls.append(1))
    load_model(str(tiny_hf.build("llama", tmp_path / "m", seed=0)), device="cpu")
    assert calls == [1]
