"""The run's end waits for W&B's finish a bounded time (an unreachable server must not hold
it), and a finish that fails is a warning: the run folder is complete either way."""

from __future__ import annotations

import logging
import threading
import time

from adafuse.loggers import wandb_logger
from adafuse.loggers.wandb_logger import WandbLogger


class HangingRun:
    def __init__(self):
        self.release = threading.Event()
        self.called = threading.Event()

    def finish(self, exit_code=0):
        self.called.set()
        self.release.wait(30)


class FailingRun:
    def finish(self, exit_code=0):
        raise RuntimeError("network is unreachable")


def logger_with(run, tmp_path) -> WandbLogger:
    out = WandbLogger({}, tmp_path, name="r", group=None, job_type="run")
    out.run = run
    return out


def test_a_finish_that_hangs_is_left_after_the_timeout(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(wandb_logger, "FINISH_TIMEOUT", 0.5)
    run = HangingRun()
    logger = logger_with(run, tmp_path)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="adafuse.loggers.wandb"):
        logger.close()
    waited = time.monotonic() - started
    run.release.set()
    assert run.called.is_set() and 0.5 <= waited < 10
    assert "wandb: finish did not end within" in caplog.text
    assert f"wandb sync {tmp_path / 'wandb'}" in caplog.text
    assert logger.run is None
    logger.close()  # a second close has nothing to wait for


def test_a_finish_that_fails_is_a_warning(tmp_path, caplog):
    logger = logger_with(FailingRun(), tmp_path)
    with caplog.at_level(logging.WARNING, logger="adafuse.loggers.wandb"):
        logger.close()
    assert "wandb: finish failed (network is unreachable)" in caplog.text


def test_the_wait_is_a_minute_at_most():
    assert 0 < wandb_logger.FINISH_TIMEOUT <= 60
