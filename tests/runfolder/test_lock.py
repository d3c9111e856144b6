"""The run folder's lock under races: processes started at the same moment on one folder, the
losers doing what a refused `adafuse.run` does (remove_unused, then another try), many times."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from adafuse import runfolder
from adafuse.run import remove_unused

ROUNDS, PROCESSES = 30, 4


def _contender(folder: str, start: float, held_for: float, log: str) -> None:
    """Like one `adafuse.run`: Hydra creates the folder and its .hydra/, the run takes the
    lock; refused, it cleans up what it thinks it made, and (as a third process would) tries
    again at once."""
    path = Path(folder)
    (path / ".hydra").mkdir(parents=True, exist_ok=True)
    time.sleep(max(0.0, start - time.time()))
    for attempt in range(2):
        with open(log, "a") as fh:
            fh.write(f"try {os.getpid()} {time.time()}\n")
        try:
            with runfolder.hold(path):
                with open(log, "a") as fh:
                    fh.write(f"in {os.getpid()} {time.time()} {(path / '.hydra').is_dir()}\n")
                time.sleep(held_for)  # "loading models"
                with open(log, "a") as fh:
                    fh.write(f"out {os.getpid()} {time.time()} {(path / '.hydra').is_dir()}\n")
                return
        except runfolder.FolderInUse:
            remove_unused(path, ".hydra")


def holders(log: Path) -> tuple[list[tuple[float, float]], float, list[tuple[str, str]]]:
    """The holders' (in, out) times in order, when the last try was made, and what each
    holder saw of .hydra/ on entering and on leaving."""
    lines = [ln.split() for ln in (log.read_text().split("\n") if log.exists() else []) if ln]
    ins = {w[1]: float(w[2]) for w in lines if w[0] == "in"}
    outs = {w[1]: float(w[2]) for w in lines if w[0] == "out"}
    held = sorted((ins[pid], outs.get(pid, float("inf"))) for pid in ins)
    last_try = max((float(w[2]) for w in lines if w[0] == "try"), default=0.0)
    seen_in = {w[1]: w[3] for w in lines if w[0] == "in"}
    return held, last_try, [(seen_in[w[1]], w[-1]) for w in lines if w[0] == "out"]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_processes_started_together_on_one_folder_let_exactly_one_in(tmp_path, round_):
    folder, log = tmp_path / "run", tmp_path / "log"
    ctx = mp.get_context("fork")
    start = time.time() + 0.3
    procs = [ctx.Process(target=_contender, args=(str(folder), start, 0.4, str(log)))
             for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    held, last_try, saw_hydra = holders(log)
    # one holder at a time; and while the first held it, every try was refused, so where all
    # tried then, exactly one got in (on a loaded machine a late process may start only after
    # the first left, and then takes the free lock in its turn)
    assert all(a[1] <= b[0] for a, b in zip(held, held[1:])), log.read_text()
    if last_try < held[0][1]:
        assert len(held) == 1, log.read_text()
    # no holder's folder was removed under it (the first found it; a later one may find it
    # cleaned up by a refused process while the lock was free)
    assert saw_hydra[0] == ("True", "True") and all(before == after for before, after in saw_hydra)


def test_a_lock_on_a_file_removed_meanwhile_is_taken_again_on_the_path(tmp_path, monkeypatch):
    """Between our open() and flock(), another process removes the folder's .lock, creates a new
    one and locks it: the old file we then lock guards nothing, so we must look again."""
    import fcntl

    from adafuse.runfolder import lock as lock_module

    folder = tmp_path / "run"
    folder.mkdir()
    real_flock, other = fcntl.flock, []

    def flock(fh, flags):
        if not other:  # the other process's turn, once
            (folder / runfolder.LOCK).unlink()
            other.append(open(folder / runfolder.LOCK, "a+"))
            real_flock(other[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        return real_flock(fh, flags)

    monkeypatch.setattr(lock_module.fcntl, "flock", flock)
    with pytest.raises(runfolder.FolderInUse):
        with runfolder.hold(folder):
            pass
    other[0].close()


def test_remove_unused_leaves_a_held_folder_and_removes_a_free_one(tmp_path):
    folder = tmp_path / "runs" / "task" / "run"
    (folder / ".hydra").mkdir(parents=True)
    with runfolder.hold(folder):
        remove_unused(folder, ".hydra")
        assert (folder / ".hydra").is_dir()
    remove_unused(folder, ".hydra")
    assert not folder.exists() and not (tmp_path / "runs").exists()


def test_remove_unused_keeps_a_folder_with_samples(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "samples.jsonl").write_text('{"id": 0}\n')
    remove_unused(tmp_path, ".hydra")
    assert (tmp_path / "samples.jsonl").is_file()


def test_one_holder_at_a_time(tmp_path):
    with runfolder.hold(tmp_path):
        with pytest.raises(runfolder.FolderInUse, match=rf"{tmp_path} is in use by another run \(pid {os.getpid()}\)"):
            with runfolder.hold(tmp_path):
                pass
    with runfolder.hold(tmp_path):
        pass
