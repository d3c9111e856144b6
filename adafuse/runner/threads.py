"""CPU threads of a run: `threads=auto` (the default) or a number.

torch's default is one thread per physical core. When other work shares those cores, its
threads wait on each other at every small matrix product and a decode slows many-fold (see
the README's "CPU threads"). `auto` therefore takes the cores this process may use
(`os.sched_getaffinity`, physical cores at most) less the load already on them (the 1-minute
load average), and at least one; an explicit `OMP_NUM_THREADS` or `threads=N` wins.
"""

from __future__ import annotations

import logging
import os

from adafuse.errors import AdaFuseError

log = logging.getLogger("adafuse.run")


def check_threads(value) -> None:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return
    raise AdaFuseError(f"threads={value!r} is not allowed; threads must be auto or an integer >= 1")


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def usable_cores() -> int:
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    return max(1, min(allowed, physical_cores()))


def auto_threads(cores: int | None = None, load: float | None = None) -> tuple[int, str]:
    """(threads, why) for `threads=auto`."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env), "OMP_NUM_THREADS"
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    free = max(1, min(cores, int(cores - load + 0.5)))
    return free, f"{cores} usable core(s), load {load:.1f}"


_auto: tuple[int, str] | None = None  # chosen once a process: a sweep's later jobs would see their own load


def apply_threads(value) -> int:
    """Set torch's intra-op threads for this run; returns the number."""
    global _auto
    import torch

    check_threads(value)
    if value == "auto":
        _auto = _auto or auto_threads()
        threads, why = _auto
    else:
        threads, why = int(value), "threads="
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    log.info("CPU threads: %d (%s)", threads, why)
    return threads
