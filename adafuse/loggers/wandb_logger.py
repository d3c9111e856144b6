"""Weights & Biases: one W&B run per run folder, grouped by sweep.

Logged: the resolved config, running metrics per item, the final metrics and costs in the
summary, a per-sample table, and histograms of span lengths (words per committed span) and
of each item's share of uncertain rounds.

It never blocks or ends a run: with no API key (or no network) it logs offline into the run
folder (`wandb sync` it later) and says so in one line; if W&B fails at any point, it says so
in one line and the run goes on with its folder alone.
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
from pathlib import Path
from typing import Any

log = logging.getLogger("adafuse.loggers.wandb")

RUN_ID_FILE = "run-id"  # in <run folder>/wandb/
TABLE_COLUMNS = ("id", "response", "extracted", "gold", "score", "rounds", "words",
                 "uncertain_share", "forwards", "seconds")


MODES = ("online", "offline", "disabled")
MAX_INIT_TIMEOUT = 600.0  # seconds: longer is a hang by another name
FINISH_TIMEOUT = 60.0  # seconds the run's end waits for W&B to finish (upload, sync) at most
PROJECT_FORBIDDEN = set("/\\#?%:")  # W&B refuses these in a project name


def check_settings(settings: dict[str, Any]) -> None:
    """The logger node and $WANDB_MODE, checked before any model loads: one line naming the
    bad value and what is allowed."""
    from adafuse.errors import AdaFuseError

    mode = settings.get("mode")
    if mode is not None and mode not in MODES:
        raise AdaFuseError(f"logger.mode={mode!r} is not allowed; allowed: {', '.join(MODES)} "
                           "or null (online iff an API key is set)")
    env = os.environ.get("WANDB_MODE", "")
    if mode is None and env and env not in MODES:
        raise AdaFuseError(f"WANDB_MODE={env!r} is not allowed; allowed: {', '.join(MODES)} "
                           "or unset")
    timeout = settings.get("init_timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout <= MAX_INIT_TIMEOUT:
        raise AdaFuseError(f"logger.init_timeout={timeout!r} is not allowed; it must be a number "
                           f"of seconds in (0, {MAX_INIT_TIMEOUT:g}]")
    project = settings.get("project")
    if project is not None and (not isinstance(project, str) or not project.strip()
                                or len(project) > 128 or PROJECT_FORBIDDEN & set(project)):
        raise AdaFuseError(f"logger.project={project!r} is not allowed; a W&B project name is 1 to "
                           "128 characters without / \\ # ? % :")
    for key in ("entity", "group", "job_type", "run_name"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 128):
            raise AdaFuseError(f"logger.{key}={value!r} is not allowed; it must be a string of at "
                               "most 128 characters, or null")


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(configured: str | None) -> tuple[str, str]:
    """(mode, why): the configured mode, else $WANDB_MODE, else online iff a key is set."""
    if configured:
        return configured, "logger.mode"
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"], "WANDB_MODE"
    if has_api_key():
        return "online", "API key"
    return "offline", "no API key"


class WandbLogger:
    def __init__(self, settings: dict[str, Any], run_dir: Path, *, name: str, group: str | None,
                 job_type: str):
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.name, self.group, self.job_type = name, group, job_type
        self.run = None
        self.wandb = None

    def _failed(self, what: str, exc: BaseException) -> None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("wandb: %s failed (%s); continuing with the run folder only", what, first)
        run, self.run = self.run, None
        if run is not None:
            try:
                run.finish(exit_code=1)
            except Exception:
                pass

    def log_config(self, info: dict[str, Any]) -> None:
        mode, why = choose_mode(self.settings.get("mode"))
        if mode == "disabled":
            return
        try:
            import wandb

            self.wandb = wandb
            run_id, resumed = self.run_id()
            self.run = wandb.init(
                id=run_id,
                resume="allow",  # a continued run folder continues its W&B run
                project=self.settings.get("project") or "adafuse",
                entity=self.settings.get("entity"),
                group=self.settings.get("group") or self.group,
                job_type=self.settings.get("job_type") or self.job_type,
                name=self.settings.get("run_name") or self.name,
                tags=list(self.settings.get("tags") or []),
                config=info["config"],
                dir=str(self.run_dir),
                mode=mode,
                settings=wandb.Settings(
                    silent=True,
                    console="off",  # our progress bar and logs stay ours
                    init_timeout=float(self.settings.get("init_timeout", 30)),
                    x_disable_stats=True,  # no system-metrics thread for a decode loop
                    save_code=False,
                ),
            )
            self.run.summary.update({"provenance": {k: info[k] for k in ("versions", "git") if k in info}})
        except Exception as exc:  # wandb raises its own errors, timeouts among them
            self._failed("init", exc)
            return
        if resumed:
            log.info("wandb: continuing run %s", run_id)
        if mode == "offline":
            where = Path(self.run.dir).parent
            log.info("wandb: offline (%s); sync later with: wandb sync %s", why, where)
        else:
            log.info("wandb: %s", getattr(self.run, "url", None) or mode)

    def run_id(self) -> tuple[str, bool]:
        """(id, whether it is an earlier one): one W&B run per run folder, its id kept in the
        folder (wandb/run-id), so a continued run logs into the same W&B run, online or not."""
        from adafuse import runfolder

        path = self.run_dir / "wandb" / RUN_ID_FILE
        stored = (runfolder.read_bytes(path) or b"").decode("utf-8", "replace").strip()
        if stored:
            return stored, True
        run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        runfolder.write_text_atomic(path, run_id + "\n")
        return run_id, False

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log(dict(metrics), step=step)
        except Exception as exc:
            self._failed("log", exc)

    def log_sample(self, sample: dict[str, Any], trace_rows: list[dict[str, Any]]) -> None:
        pass  # the table is built at the end from every sample, those of a continued run too

    def log_results(self, results: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        if self.run is None:
            return
        wandb = self.wandb
        try:
            summary = {f"metrics/{k}": v for k, v in results.get("metrics", {}).items()}
            if results.get("main_metric"):
                summary["main"] = results["metrics"].get(results["main_metric"])
            cost = dict(results.get("cost", {}))
            # "/" nests W&B keys: name a model by the last part of its path or hub id
            per_model = {Path(name).name or name: v for name, v in cost.pop("per_model", {}).items()}
            summary.update(_flat("cost", {**cost, "per_model": per_model}))
            summary["n_items"] = results.get("n_items")
            self.run.summary.update(summary)
            final: dict[str, Any] = {}
            spans = [w for s in samples for w in s.get("span_words", [])]
            if spans:
                final["span_words"] = wandb.Histogram(spans)
            shares = [s["uncertain_share"] for s in samples if s.get("uncertain_share") is not None]
            if shares:
                final["uncertain_share"] = wandb.Histogram(shares)
            if self.settings.get("log_samples", True) and samples:
                final["samples"] = wandb.Table(columns=list(TABLE_COLUMNS),
                                               data=[_table_row(s) for s in samples])
            if final:
                self.run.log(final, step=len(samples) + 1)
        except Exception as exc:
            self._failed("summary", exc)

    def close(self) -> None:
        """Finish the W&B run, waiting FINISH_TIMEOUT seconds at most (an unreachable server
        must not hold the run's end); the run folder is complete either way."""
        import threading

        if self.run is None:
            return
        run, self.run = self.run, None
        errors: list[BaseException] = []

        def finish() -> None:
            try:
                run.finish()
            except Exception as exc:
                errors.append(exc)

        worker = threading.Thread(target=finish, name="wandb-finish", daemon=True)
        worker.start()
        worker.join(FINISH_TIMEOUT)
        if worker.is_alive():
            log.warning("wandb: finish did not end within %.0f s; the run folder is complete, "
                        "sync the W&B files later (wandb sync %s)", FINISH_TIMEOUT,
                        self.run_dir / "wandb")
        elif errors:
            log.warning("wandb: finish failed (%s)", errors[0])


def _flat(prefix: str, data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(_flat(name, value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def _table_row(sample: dict[str, Any]) -> list[Any]:
    score = sample.get("main_score")
    cost = sample.get("cost", {})
    gold = sample.get("gold")
    return [
        str(sample.get("id")), sample.get("response"), sample.get("extracted"),
        gold if isinstance(gold, str) or gold is None else " | ".join(map(str, gold)),
        score, sample.get("rounds"), sample.get("words"), sample.get("uncertain_share"),
        cost.get("forwards"), _decode_seconds(sample.get("seconds")),
    ]


def _decode_seconds(seconds: Any) -> Any:
    """The table's `seconds` column: the item's decode seconds, a number in every row (the
    sample's `seconds` is a dict whose keys differ between items: `warmup` on a sitting's first)."""
    return seconds.get("decode") if isinstance(seconds, dict) else seconds
