"""Run experiments: decode a task (or one prompt) with an ensemble or one model, through Hydra.

    python -m adafuse.run                                    # the default pair, one prompt
    python -m adafuse.run task=gsm8k theta_delta=0.5 limit=50
    python -m adafuse.run -m theta_delta=0.3,0.5,0.7 max_words=2,3 task=triviaqa limit=20
    python -m adafuse.run -m +sweep=theta_grid task=triviaqa
    python -m adafuse.run task=triviaqa resume=runs/triviaqa/2026-11-27_20-00-00

Each run writes runs/<task>/<date>_<time>/ (a multirun: one folder a job under one sweep
folder): results.json, samples.jsonl, trace.jsonl and Hydra's .hydra/. Configs: conf/.
Bad input (a typo'd key, an unknown task, θ outside [0, 1], ...) prints one line and exits 2.
"""

from __future__ import annotations

import difflib
import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from adafuse.errors import AdaFuseError
from adafuse.runner import schema

log = logging.getLogger("adafuse.run")

GROUP_NAMES = {"task": "task", "models": "model set", "decoder": "decoder", "logger": "logger",
               "sweep": "sweep preset", "hydra/launcher": "launcher"}


class RunFailed(Exception):
    """A job ended on bad input; its one-line message is already printed."""


CONF = Path(__file__).resolve().parent.parent / "conf"  # absolute: also when imported, not run


@hydra.main(version_base=None, config_path=str(CONF), config_name="config")
def run(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from adafuse.runner.experiment import RunContext, run_experiment

    hc = HydraConfig.get()
    run_dir = Path(cfg.resume) if cfg.resume else Path(hc.runtime.output_dir)
    sweep_dir = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
        return run_experiment(config, RunContext(run_dir=run_dir, sweep_dir=sweep_dir))
    except AdaFuseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        remove_unused(Path(hc.runtime.output_dir), schema.written_hydra_subdir(hc.runtime.output_dir))
        if sweep_dir is None:
            raise SystemExit(2) from None
        # in a sweep the other jobs go on; Hydra names the failed one, main() exits with 2
        raise RunFailed(str(exc)) from None


def remove_unused(output_dir: Path, hydra_subdir: str | None) -> None:
    """After bad input: remove what this invocation created and nothing else, i.e. the
    folder of a run that never started (only Hydra's files in it), or the .hydra/reruns/
    entry it added to an existing run. A folder that another process holds (refused by its
    lock, this one did not create it: its holder may still be loading models, with nothing
    written yet) is left alone; a folder is removed while holding its lock, so no run starts
    in it meanwhile."""
    from adafuse import runfolder

    if hydra_subdir and hydra_subdir.startswith(".hydra/reruns/"):
        shutil.rmtree(output_dir / hydra_subdir, ignore_errors=True)
        return
    try:
        with runfolder.hold(output_dir, create=False) as held:
            if not held or not all(p.name in (".hydra", runfolder.LOCK) or p.suffix == ".log"
                                   for p in output_dir.iterdir()):
                return
            shutil.rmtree(output_dir, ignore_errors=True)
    except runfolder.FolderInUse:
        return
    for parent in (output_dir.parent, output_dir.parent.parent):  # runs/<task>, runs
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break


def one_line(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line messages, as one line."""
    from hydra.errors import MissingConfigException

    missing = getattr(exc, "missing_cfg_file", None) or ""
    if missing.startswith("schema/launcher/"):
        return (f"hydra/launcher={missing.rpartition('/')[2]} needs hydra-submitit-launcher: "
                "pip install -e '.[cluster]'")
    if isinstance(exc, MissingConfigException) and exc.options is not None and exc.missing_cfg_file:
        group, _, name = exc.missing_cfg_file.rpartition("/")
        what = GROUP_NAMES.get(group, group or "config")
        known = ", ".join(sorted(o for o in exc.options)) or "none"
        return f"unknown {what} {name!r}; known: {known}"
    parts = []
    while exc is not None and len(parts) < 3:
        if isinstance(exc, AdaFuseError):  # raised inside a resolver: its message says it all
            return str(exc)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        # OmegaConf appends "full_key: ..." and "object_type=..." lines: the first says enough;
        # a cause may repeat its message as an unfilled template ("Value '$VALUE' ...")
        if lines and lines[0] not in parts and "$VALUE" not in lines[0]:
            parts.append(lines[0].rstrip("."))
        exc = exc.__cause__ or exc.__context__
    message = ": ".join(parts) or "invalid configuration"
    return message + did_you_mean(message)


def did_you_mean(message: str) -> str:
    """For "Key 'theta_dlta' is not in struct": the closest known key, if one is close."""
    import re

    match = re.search(r"[Kk]ey '([^']+)' (?:is )?not in", message)
    if not match:
        return ""
    key = match.group(1)
    known = list(schema.RunConfig.__dataclass_fields__)
    for cls in (schema.AdaFuseConf, schema.GreedyConf, schema.TaskConf, schema.ModelConf,
                schema.WandbConf):
        known += list(cls.__dataclass_fields__)
    close = difflib.get_close_matches(key.split(".")[-1], sorted(set(known)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def main() -> None:
    """Hydra's entry, with its errors on one line and exit status 2 for bad input."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # let Hydra raise instead of printing a multi-line report and exiting with 1
    os.environ["HYDRA_FULL_ERROR"] = "1"
    os.environ[schema.SWEEP_KEYS_ENV] = ",".join(swept_keys(sys.argv[1:]))
    try:
        run()
    except RunFailed:
        sys.exit(2)
    except AdaFuseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (HydraException, OmegaConfBaseException) as exc:
        if full_error:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    finally:
        if not full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        os.environ.pop(schema.SWEEP_KEYS_ENV, None)


def swept_keys(argv: list[str]) -> list[str]:
    """Keys given several values on the command line (theta_delta=0.3,0.5): they name the
    job folders of a multirun. The jobs read them from the environment (submitit's too)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not {"-m", "--multirun"} & set(argv):
        return []
    try:
        parsed = OverridesParser.create().parse_overrides([a for a in argv if not a.startswith("-")])
    except Exception:  # Hydra reports a bad override itself, in its own words
        return []
    return [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]


if __name__ == "__main__":
    main()
