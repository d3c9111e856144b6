"""Loggers: the run folder (always) and Weights & Biases (unless logger=none).

    logger = build_logger(cfg_logger, run_dir, name=..., group=..., job_type=...)
    logger.log_config(info); logger.log_sample(sample, trace); logger.log_results(results, samples)
    logger.close()
"""

from __future__ import annotations

from typing import Any

from adafuse.errors import AdaFuseError
from adafuse.loggers.base import Logger, MultiLogger
from adafuse.loggers.disk import DiskLogger

__all__ = ["DiskLogger", "Logger", "MultiLogger", "build_logger", "check_logger"]

KNOWN = ("wandb", "none")


def check_logger(settings: dict[str, Any] | None) -> None:
    """The logger node, checked before any model loads (W&B: mode, timeout, project)."""
    kind = (settings or {}).get("name", "none")
    if kind not in KNOWN:
        raise AdaFuseError(f"unknown logger {kind!r}; allowed: {', '.join(KNOWN)}")
    if kind == "wandb":
        from adafuse.loggers.wandb_logger import check_settings

        check_settings(dict(settings))


def build_logger(settings: dict[str, Any] | None, run_dir, *, name: str, group: str | None,
                 job_type: str) -> MultiLogger:
    """The disk logger, plus the one `settings["name"]` asks for."""
    from adafuse.runfolder.rundir import RunDir

    loggers: list[Logger] = [DiskLogger(RunDir(run_dir))]
    kind = (settings or {}).get("name", "none")
    if kind == "wandb":
        from adafuse.loggers.wandb_logger import WandbLogger

        loggers.append(WandbLogger(dict(settings), run_dir, name=name, group=group, job_type=job_type))
    elif kind != "none":
        raise AdaFuseError(f"unknown logger {kind!r}; allowed: {', '.join(KNOWN)}")
    return MultiLogger(loggers)
