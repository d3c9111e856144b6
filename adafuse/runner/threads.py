"""CPU threads of a run: `threads=auto` (the default) or a number.

torch's default is one thread per physical core. When other work shares those cores, its
threads wait on each other at every small matrix product and a decode slows many-fold (see
the README's "CPU threads"). `auto` therefore takes the cores this process may use
(`os.sched_getaffinity`, physical cores at most) less the load other processes put on them
(the 1-minute load average less this process's own share of it, see `own_load`), and at
least one; an explicit `OMP_NUM_THREADS` or `threads=N` wins. N may
be at most `THREADS_PER_CPU` times the CPUs (`os.cpu_count()`): more only contend, and
OpenMP aborts the process when it cannot start them all (`threads=100000` ended in a
segfault).

The rule applies wherever models decode: the runner sets `threads` before loading, and
`adafuse.models.load_model` (the Python API, the lm-eval wrapper) calls `apply_auto_once`,
which applies `auto` unless something set the threads already; it is logged once a process.
"""

from __future__ import annotations

import logging
import math
import os
import time

from adafuse.errors import AdaFuseError

log = logging.getLogger("adafuse.run")


THREADS_PER_CPU = 4


def max_threads() -> int:
    return THREADS_PER_CPU * (os.cpu_count() or 1)


def check_threads(value) -> None:
    top = max_threads()
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= top):
        return
    raise AdaFuseError(f"threads={value!r} is not allowed; threads must be auto or an integer in "
                       f"[1, {top}] ({THREADS_PER_CPU} x this machine's {os.cpu_count() or 1} CPUs)")


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


def own_load(cpu_seconds: float | None = None, age: float | None = None) -> float:
    """This process's estimated share of the 1-minute load average.

    The kernel's load average decays with a 60 s time constant, so a process that kept r
    threads busy for its whole age t adds about r * (1 - exp(-t / 60)) to it. A test runner or
    notebook busy for minutes is about a whole core of the load it would otherwise leave to
    others (measured: a pytest process chose 1 of 2 idle cores because of its own load); a
    command that just started adds almost nothing. r is the CPU time over the age."""
    if cpu_seconds is None or age is None:
        try:
            import psutil

            proc = psutil.Process()
            times = proc.cpu_times()
            cpu_seconds, age = times.user + times.system, time.time() - proc.create_time()
        except Exception:  # noqa: BLE001 - no psutil, or no process table: no correction
            return 0.0
    if age <= 0:
        return 0.0
    return (cpu_seconds / age) * (1.0 - math.exp(-age / 60.0))


def auto_threads(cores: int | None = None, load: float | None = None,
                 own: float | None = None) -> tuple[int, str]:
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
        own = own_load() if own is None else own
    others = max(0.0, load - (own or 0.0))
    free = max(1, min(cores, int(cores - others + 0.5)))
    return free, f"{cores} usable core(s), load {others:.1f} from other processes"


_auto: tuple[int, str] | None = None  # chosen once a process: a sweep's later jobs would see their own load
_applied: tuple[int, str] | None = None  # what this process last set, and why (logged when it changes)
_default: int | None = None  # torch's own count before this module first set it


def apply_threads(value) -> int:
    """Set torch's intra-op threads for this run; returns the number."""
    global _auto, _applied, _default
    import torch

    check_threads(value)
    if value == "auto":
        _auto = _auto or auto_threads()
        threads, why = _auto
    else:
        threads, why = int(value), "threads="
    if _default is None:
        _default = torch.get_num_threads()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    if _applied != (threads, why):
        log.info("CPU threads: %d (%s)", threads, why)
    _applied = (threads, why)
    return threads


def apply_auto_once() -> None:
    """`threads=auto` for a load outside the runner (the Python API, lm-eval): applied the
    first time only, and not where the threads were set already (by the runner, by
    `torch.set_num_threads`, by OMP_NUM_THREADS, which `auto` follows anyway)."""
    global _default
    import torch

    if _applied is not None or _default is not None:
        return
    _default = torch.get_num_threads()
    if _default != physical_cores() and not os.environ.get("OMP_NUM_THREADS", "").strip():
        return  # someone chose a count (torch.set_num_threads): theirs stands
    _default = None
    apply_threads("auto")
