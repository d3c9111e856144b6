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

import contextlib
import difflib
import logging
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from adafuse import cli
from adafuse.errors import AdaFuseError, Interrupted
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

    from adafuse import runfolder

    hc = HydraConfig.get()
    run_dir = Path(cfg.resume) if cfg.resume else Path(hc.runtime.output_dir)
    sweep_dir = Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    again = continue_command([*hc.overrides.hydra, *hc.overrides.task], run_dir, sweep_dir)
    refused = schema.refused_job(hc.runtime.output_dir)
    if refused is not None:  # a sweep job whose folder is locked or damaged: the others go on
        fail(refused, sweep_dir, run_dir)
    try:
        # held from before Hydra wrote .hydra/ (schema.hydra_subdir took it) to the end: what
        # this invocation removes after bad input can be nobody else's
        with schema.taken_lock(hc.runtime.output_dir) or runfolder.hold(run_dir):
            return held_run(cfg, hc, run_dir, sweep_dir, again)
    except (AdaFuseError, OSError) as exc:  # held by another run; a folder not writable
        fail(exc, sweep_dir, run_dir)


FAILED_JOBS: list[tuple[str, str]] = []  # (job folder, why) of this invocation's failed sweep jobs


def fail(exc: BaseException, sweep_dir: Path | None, run_dir: Path | None = None):
    """Bad input: one line, exit 2; in a sweep the other jobs go on, and main() names the
    failed ones at the end and exits with 2."""
    message = str(exc) if isinstance(exc, AdaFuseError) else os_error(exc)
    if sweep_dir is None:
        cli.fail(message)
    cli.error(message)
    FAILED_JOBS.append((str(run_dir.name if run_dir is not None else "?"), message))
    raise RunFailed(message) from None


def held_run(cfg: DictConfig, hc, run_dir: Path, sweep_dir: Path | None, again: str) -> dict:
    from adafuse.runner.experiment import RunContext, run_experiment
    from adafuse.tasks.selection import EmptyShard

    try:
        config = OmegaConf.to_container(cfg, resolve=True)
        ctx = RunContext(run_dir=run_dir, sweep_dir=sweep_dir, continue_command=again, locked=True)
        results = run_experiment(config, ctx)
        if ctx.nothing_to_do:  # a finished run rerun: not even a .hydra/reruns/ entry stays
            remove_unused(Path(hc.runtime.output_dir),
                          schema.written_hydra_subdir(hc.runtime.output_dir), held=True)
        return results
    except EmptyShard as exc:
        remove_unused(Path(hc.runtime.output_dir), schema.written_hydra_subdir(hc.runtime.output_dir),
                      held=True)
        if sweep_dir is None:
            fail(exc, sweep_dir, run_dir)
        # a sweep's shard of no items: nothing to decode, and merge does without it (printed:
        # the job's run.log went with its folder)
        print(f"note: {run_dir.name}: nothing to decode ({exc}); no run folder written",
              file=sys.stderr)
        return {}
    except (AdaFuseError, OSError) as exc:
        remove_unused(Path(hc.runtime.output_dir), schema.written_hydra_subdir(hc.runtime.output_dir),
                      held=True)
        fail(exc, sweep_dir, run_dir)
    except KeyboardInterrupt as exc:
        code = exc.exit_code if isinstance(exc, Interrupted) else 130
        if (run_dir / "results.json").is_file():
            print(f"interrupted; the run folder is {run_dir}; continue it with: {again}",
                  file=sys.stderr)
        else:  # stopped while loading: nothing was decoded, nothing to continue
            remove_unused(Path(hc.runtime.output_dir),
                          schema.written_hydra_subdir(hc.runtime.output_dir), held=True)
            print("interrupted before the first item; nothing was written", file=sys.stderr)
        raise SystemExit(code) from None


def continue_command(overrides: list[str], run_dir: Path, sweep_dir: Path | None) -> str:
    """The command that continues this run (a sweep: the whole sweep) where it stopped."""
    if sweep_dir is not None:
        args = [a for a in sys.argv[1:] if not a.startswith("hydra.sweep.dir=")]
        args = args if {"-m", "--multirun"} & set(args) else ["-m", *args]
        args.append(f"hydra.sweep.dir={sweep_dir}")
    else:
        # hydra.mode=RUN is Hydra's own addition, not the user's
        args = [o for o in overrides if not o.startswith(("resume=", "hydra.run.dir=", "hydra.mode="))]
        args.append(f"resume={run_dir}")
    return "python -m adafuse.run " + " ".join(shlex.quote(a) for a in args)


def os_error(exc: OSError) -> str:
    """A failed read or write (a full disk, a read-only folder), naming the path once."""
    where = exc.filename if exc.filename is not None else "a file of the run"
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return f"{where}: {exc.strerror}; a run folder must be a folder (or a new path), not a file"
    return f"{where}: {exc.strerror or exc}"


def remove_unused(output_dir: Path, hydra_subdir: str | None, held: bool = False) -> None:
    """After bad input: remove what this invocation created and nothing else, i.e. the
    folder of a run that never started (only Hydra's files in it), or the .hydra/reruns/
    entry it added to an existing run. A folder that another process holds (refused by its
    lock, this one did not create it: its holder may still be loading models, with nothing
    written yet) is left alone; a folder is removed while holding its lock, so no run starts
    in it meanwhile. held: this process holds the folder's lock already (`run` takes it
    before its first check)."""
    from adafuse import runfolder

    if hydra_subdir and hydra_subdir.startswith(".hydra/reruns/"):
        shutil.rmtree(output_dir / hydra_subdir, ignore_errors=True)
        with contextlib.suppress(OSError):  # only when this invocation's entry was its first
            (output_dir / ".hydra" / "reruns").rmdir()
        return
    try:
        with contextlib.nullcontext(output_dir.is_dir()) if held else \
                runfolder.hold(output_dir, create=False) as mine:
            if not mine or not all(p.name in (".hydra", runfolder.LOCK) or p.suffix == ".log"
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
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(exc, OverrideParseException):
        why = next((ln.strip() for ln in str(exc.message).splitlines() if ln.strip()), "")
        why = why.replace("LexerNoViableAltException: ", "cannot read ")
        return (f"cannot parse the override {exc.override!r} ({why}); a list is written [a,b], "
                "and a value holding a comma, a bracket, '=' or a space goes in quotes")
    text = str(exc)
    if text.lstrip().startswith("Ambiguous value for argument"):  # a sweep typed without -m
        given = text.split("'")[1] if text.count("'") >= 2 else "the value"
        return (f"ambiguous value {given!r}: to sweep over it, add -m (--multirun); as a list, "
                "write key=[a,b]; as a string, quote it: key='a,b'")
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
    """For "Key 'theta_dlta' is not in struct": the closest known key, if one is close; for a
    key a decoder's schema lacks (`Key 'top_k' not in 'AdaFuseConf'`), the closest of that
    decoder's parameters, else the list of them."""
    import re

    from adafuse.decoding.registry import schema_keys, schema_name

    match = re.search(r"[Kk]ey '([^']+)' (?:is )?not in(?: '(\w+)')?", message)
    if not match:
        return ""
    key = match.group(1).split(".")[-1]
    decoder = next((cls for cls in schema.DECODERS.values() if schema_name(cls) == match.group(2)), None)
    if decoder is not None:
        known = schema_keys(decoder)
        close = difflib.get_close_matches(key, known, n=1)
        return f" (did you mean {close[0]!r}?)" if close else f"; decoder {decoder.name!r} takes: {', '.join(known)}"
    known = list(schema.RunConfig.__dataclass_fields__)
    for cls in (schema.TaskConf, schema.ModelConf, schema.WandbConf):
        known += list(cls.__dataclass_fields__)
    for cls in schema.DECODERS.values():
        known += schema_keys(cls)
    close = difflib.get_close_matches(key, sorted(set(known) - {key}), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def main() -> None:
    """Hydra's entry, with its errors on one line and exit status 2 for bad input."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    # let Hydra raise instead of printing a multi-line report and exiting with 1
    os.environ["HYDRA_FULL_ERROR"] = "1"
    os.environ[schema.SWEEP_KEYS_ENV] = ",".join(swept_keys(sys.argv[1:]))
    FAILED_JOBS.clear()
    handlers = catch_signals()
    try:
        check_locations(sys.argv[1:])
        with cli.usage_errors("python -m adafuse.run"):
            run()
        if FAILED_JOBS:  # a launcher that does not re-raise a job's failure
            raise RunFailed(FAILED_JOBS[0][1])
    except RunFailed:
        if len(FAILED_JOBS) > 0:
            shown = "; ".join(f"{job}: {why}" for job, why in FAILED_JOBS[:5])
            more = f"; and {len(FAILED_JOBS) - 5} more" if len(FAILED_JOBS) > 5 else ""
            cli.error(f"{len(FAILED_JOBS)} job(s) of the sweep failed, the others ran: {shown}{more}")
        sys.exit(cli.BAD_INPUT)
    except AdaFuseError as exc:
        cli.fail(exc)
    except KeyboardInterrupt as exc:  # before a run started (composing the config)
        print("interrupted", file=sys.stderr)
        sys.exit(exc.exit_code if isinstance(exc, Interrupted) else 130)
    except (HydraException, OmegaConfBaseException) as exc:
        if full_error:
            raise
        cli.fail(one_line(exc))
    except (OSError, ValueError) as exc:
        # Hydra creating a folder where a file is (hydra.run.dir=<file>), or its run.log in a
        # folder that cannot be written (logging wraps that OSError in a ValueError)
        cause = exc if isinstance(exc, OSError) else exc.__cause__ or exc.__context__
        if not isinstance(cause, OSError):
            raise
        cli.fail(os_error(cause))
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if not full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        os.environ.pop(schema.SWEEP_KEYS_ENV, None)


def catch_signals() -> dict:
    """Ctrl-C and SIGTERM raise Interrupted, so a run ends cleanly (results.json says
    `interrupted`, the lock is let go) and says how to continue; returns the old handlers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum, frame):
        for each in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the clean-up
            signal.signal(each, signal.SIG_IGN)
        raise Interrupted(signum)

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}


LOCATION_KEYS = ("runs_dir", "hydra.run.dir", "hydra.sweep.dir")


def check_locations(argv: list[str]) -> None:
    """runs_dir, hydra.run.dir and hydra.sweep.dir given on the command line name a folder of
    their own: empty would mean the current folder (or `/<task>/...` for runs_dir), the root
    the whole file system. Checked before Hydra creates anything."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from adafuse.runfolder import check_location

    wanted = [a for a in argv
              if not a.startswith("-") and a.split("=", 1)[0].lstrip("+~") in LOCATION_KEYS]
    if not wanted:
        return
    try:
        parsed = OverridesParser.create().parse_overrides(wanted)
    except Exception:  # Hydra reports a bad override itself, in its own words
        return
    for override in parsed:
        if override.is_sweep_override() or override.is_delete():
            continue
        value = override.value()
        check_location(override.get_key_element().lstrip("+~"), "" if value is None else value)


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
