"""One run: check the config, pick the items, load the models, decode, write, score.

    results = run_experiment(config, RunContext(run_dir=Path("runs/triviaqa/x")))

`adafuse.run` calls this from Hydra with the composed config. Everything that can be wrong
with the input is checked before the models load and before anything is written; a run
folder that already holds finished items is continued (same config required).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from adafuse.decoding.base import MODES, check_prompt, check_range, check_stop
from adafuse import runfolder
from adafuse.errors import AdaFuseError
from adafuse.runner import provenance
from adafuse.runner.items import make_sample, trace_rows
from adafuse.runner.plan import check_context, estimate_after, estimate_line, used_models
from adafuse.runfolder.provenance import git_state, versions
from adafuse.runfolder.rundir import RunDir
from adafuse.runner.threads import apply_threads, check_threads
from adafuse.tasks.selection import (INPUT_NAMES, PromptTask, input_digests, open_task, score_samples,
                                      select_items)

log = logging.getLogger("adafuse.run")

# prompts decoded together: beyond this a batch only holds more caches in memory, and on a
# CPU a padded forward of hundreds of rows is slower than several smaller ones
MAX_BATCH_SIZE = 256


@dataclass
class RunContext:
    run_dir: Path
    sweep_dir: Optional[Path] = None  # the sweep folder, in a multirun
    name: str = ""  # the W&B run name; default <task>/<run folder>
    continue_command: str = ""  # the command that continues this run, shown at start and on Ctrl-C
    locked: bool = False  # the caller holds run_dir's lock (adafuse.run takes it before its first check)
    nothing_to_do: bool = False  # set by the run: the folder held the finished run already


# --- checks, before anything is loaded or written --------------------------------------------


def check_config(config: dict) -> None:
    from adafuse.loggers import check_logger
    from adafuse.model_checks import check_models

    models = config.get("models") or []
    check_models(models)
    decoder = config.get("decoder") or {}
    if decoder.get("mode", MODES[0]) not in MODES:
        raise AdaFuseError(f"decoder.mode={decoder['mode']!r}; allowed: {', '.join(MODES)}")
    # the decoder's parameters, as its class declares them; here they fail before any model loads
    from adafuse.decoding.registry import check_decoder_config

    check_decoder_config({k: v for k, v in decoder.items() if k != "batch_size"}, len(models),
                         config.get("engine"))
    check_range("batch_size", decoder.get("batch_size", 1), 1, MAX_BATCH_SIZE, integer=True)
    check_threads(config.get("threads", "auto"))
    check_logger(config.get("logger"))
    check_range("num_shards", config["num_shards"], 1, integer=True)
    check_range("shard", config["shard"], 0, config["num_shards"] - 1, integer=True)
    task = config.get("task") or {}
    for key in ("limit", "max_new_tokens"):
        value = task.get(key, config.get(key))
        if value is not None:
            check_range(key, value, 0 if key == "limit" else 1, integer=True)
    stop = task.get("stop", config.get("stop"))
    if stop is not None and not isinstance(stop, list):
        raise AdaFuseError(f"stop={stop!r} must be a list of strings, e.g. stop='[\"\\n\"]'")
    if stop is not None:
        check_stop(stop)
    if not task:
        check_prompt(config.get("prompt"))
        if config.get("limit") is not None:
            raise AdaFuseError(f"limit={config['limit']!r} applies to a task, and prompt mode decodes "
                               "the one prompt= given; add task=<name> (e.g. task=triviaqa) or drop limit")


# --- models ------------------------------------------------------------------------------------

_loaded: tuple[str, list] | None = None  # the last model set: a sweep's jobs in one process reuse it


def load_models(specs: list[dict], ray: dict | None = None) -> list:
    """The models of `specs`, loaded once per process for the same specs; members placed in
    Ray actors join the cluster of `ray` (address, num_cpus, timeout_s) first."""
    global _loaded
    from adafuse.models import load_model

    key = json.dumps([specs, ray], sort_keys=True, default=str)
    if _loaded is not None and _loaded[0] == key:
        return _loaded[1]
    _loaded = None  # free the previous set before loading the next
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would bury ours
    except ImportError:
        pass
    if any(dict(spec).get("placement") == "ray" for spec in specs):
        from adafuse.decoding.engine.ray_member import connect

        ray = dict(ray or {})
        connect(ray.get("address"), ray.get("num_cpus"), ray.get("timeout_s", 30.0))
    models = []
    for spec in specs:
        lm = load_model(spec)
        log.info("loaded %s in %.1f s (%s, %s)", lm.name, lm.load_seconds, lm.device,
                 str(lm.model.dtype).replace("torch.", ""))
        models.append(lm)
    _loaded = (key, models)
    return models


# --- the run -----------------------------------------------------------------------------------


def _progress(total: int, done: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="item", disable=not enabled,
                file=sys.stderr, dynamic_ncols=True, leave=True)


def next_rescore(finished: int) -> int:
    """After the running metric was scored over `finished` items, the count of finished items
    at which it is scored again (and always after the last): every 10% more. Rescoring all
    finished items after each one costs O(n²) (a corpus BLEU an item on FLORES); this way
    about 11 items are rescored per item decoded, however many there are."""
    return finished + max(1, finished // 10)


def run_experiment(config: dict, ctx: RunContext) -> dict:
    """Run (or continue) one experiment in `ctx.run_dir`; returns what results.json holds."""
    check_config(config)
    return Experiment(config, ctx).run()


class Experiment:
    """One run's state: its task and items, its folder, models, decoder and loggers."""

    def __init__(self, config: dict, ctx: RunContext):
        self.config, self.ctx = config, ctx
        self.started_at = datetime.now().isoformat(timespec="seconds")
        self.started = time.perf_counter()
        self.task, self.stop, self.max_new_tokens = open_task(config)
        self.items = select_items(self.task, config)
        self.inputs = input_digests(self.task, self.items)

    def run(self) -> dict:
        folder = RunDir(self.ctx.run_dir)
        with contextlib.nullcontext(folder) if self.ctx.locked else folder.lock() as store:
            self.store = store
            store.check_config(self.config)
            store.check_inputs(self.inputs, INPUT_NAMES, first=self.first_digests)
            stored = store.read_results()
            finished = store.finished()
            if (stored or {}).get("status") == "complete" and \
                    all(str(doc["id"]) in finished for _, doc in self.items):
                log.info("%s is complete (%d items): nothing to do; its results stay as they were",
                         store.path, len(self.items))
                self.ctx.nothing_to_do = True
                return stored
            if finished:
                log.info("continuing %s: %d of %d items already done", store.path, len(finished),
                         len(self.items))
            todo = sum(str(doc["id"]) not in finished for _, doc in self.items)
            log.info("decoding %d item%s into %s%s", todo, "" if todo == 1 else "s", store.path,
                     f"; if stopped, continue with: {self.ctx.continue_command}"
                     if self.ctx.continue_command and todo > 1 else "")
            apply_threads(self.config.get("threads", "auto"))
            used, self.decoder_config = used_models(self.config)
            self.models = load_models([self.config["models"][i] for i in used], self.config.get("ray"))
            left = [(i, doc) for i, doc in self.items if str(doc["id"]) not in finished]
            check_context(self.models, [self.task.prompt(doc) for _, doc in left],
                          [doc["id"] for _, doc in left], self.max_new_tokens)
            self.decoder, self.batch_size = self.build_decoder()
            logger = self.build_logger(store)
            try:
                header = self.header(store)
                logger.log_config(header)
                try:
                    done = self.decode(finished, logger)
                except KeyboardInterrupt:
                    mark_interrupted(store)
                    raise
                results, samples = self.results(header, finished, done)
                logger.log_results(results, samples)
            finally:
                logger.close()
        self.report(store, results, samples)
        return results

    def first_digests(self, n: int) -> dict[str, str] | None:
        """The input digests of this job's first n items; None when it has no more than n."""
        return input_digests(self.task, self.items[:n]) if len(self.items) > n else None

    def build_decoder(self):
        from adafuse.decoding import build_decoder

        if self.config.get("seed") is not None:
            import torch

            torch.manual_seed(self.config["seed"])
        args = dict(self.decoder_config)
        batch_size = int(args.pop("batch_size", 1))
        return build_decoder(args, self.models, self.config.get("engine")), batch_size

    def build_logger(self, store: RunDir):
        from adafuse.loggers import build_logger

        label, sweep = self.task.name, self.ctx.sweep_dir
        return build_logger(self.config.get("logger"), store.path,
                            name=self.ctx.name or f"{label}/{store.path.name}",
                            group=f"{label}/{sweep.name}" if sweep else None, job_type=label)

    def header(self, store: RunDir) -> dict:
        """What results.json holds from the start: enough to continue the run later."""
        return runfolder.header(
            config=self.config,
            task={**self.task.describe(), "stop": self.stop, "max_new_tokens": self.max_new_tokens},
            versions=versions(), git=git_state(), run_dir=str(store.path),
            sweep_dir=str(self.ctx.sweep_dir) if self.ctx.sweep_dir else None,
            started=self.started_at, inputs=self.inputs)

    def decode(self, finished: dict[str, dict], logger) -> dict[str, dict]:
        """Decode the unfinished items, `batch_size` at a time; each item is written (and
        flushed) as soon as it finishes."""
        task, items = self.task, self.items
        done = dict(finished)
        todo = [(i, doc) for i, doc in items if str(doc["id"]) not in done]
        main = task.main_metric
        bar = _progress(len(items), len(items) - len(todo), task.name, self.config.get("progress", True))
        seconds, count = 0.0, 0
        self.last_output = None
        prompts = [task.prompt(doc) for _, doc in todo]
        so_far = [(i, d) for i, d in items if str(d["id"]) in done]  # finished, appended as they end
        rescore_at, postfix = len(so_far) + 1, {}
        self.shared_prefix = self.store.shared_prefix()  # recorded by an earlier sitting

        def write(position: int, out) -> None:
            nonlocal seconds, count, rescore_at
            index, doc = todo[position]
            if self.shared_prefix is None:  # recorded before the sitting's first item is written
                self.shared_prefix = runfolder.prefix_totals(self.decoder.prefix_costs)
                self.store.record_shared_prefix(self.shared_prefix)
            sample = make_sample(index, doc, prompts[position], out, task.score([out.text], [doc]))
            if count == 0 and len(todo) > 1:  # a sitting's first item carries its warm-up
                sample["seconds"]["warmup"] = True
            logger.log_sample(sample, trace_rows(index, doc, out))
            done[str(doc["id"])] = sample
            seconds, count, self.last_output = seconds + out.stats.seconds, count + 1, out
            running = {"items_done": len(items) - len(todo) + count,
                       "seconds_per_item": seconds / count}
            postfix["s/item"] = f"{seconds / count:.2f}"  # the metric shown stays until rescored
            so_far.append((index, doc))
            if main and (len(so_far) >= rescore_at or count == len(todo)):
                rescore_at = next_rescore(len(so_far))
                value = score_samples(task, so_far, done).metrics.get(main)
                running[f"running/{main}"] = value
                if value is not None:
                    postfix[main] = f"{value:.3f}"
            logger.log_metrics(running, step=running["items_done"])
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            first_at = estimate_after(self.batch_size, len(todo))
            if len(todo) > 1 and count in (first_at, 2 * first_at) and count < len(todo):
                # after the first items (warm-up included), then after as many again (the
                # rate the run keeps)
                now = time.perf_counter()
                steady = count == 2 * first_at
                line, long = estimate_line(now - estimated_at[0] if steady else now - decode_started,
                                           first_at, len(todo) - count, steady=steady)
                estimated_at[0] = now
                (log.warning if long else log.info)(
                    "%s%s", line, "; more than an hour: limit=N decodes fewer" if long else "")

        decode_started = time.perf_counter()
        estimated_at = [decode_started]  # when the last estimate was made
        try:
            # the decoder's session, round by round: a finished item's place in the batch is
            # refilled at once, and each item is written (and flushed) as soon as it finishes,
            # here, outside the decoder's rounds
            session = self.decoder.session(max_new_tokens=self.max_new_tokens, stop=self.stop,
                                           batch_size=self.batch_size, shared_prefix=task.shared_prefix)
            for position, prompt in enumerate(prompts):
                session.add(prompt, key=position)
            while session.busy:
                for position, out in session.step():
                    write(position, out)
            self.decoder.last_totals = session.totals
        finally:
            bar.close()
        return done

    def results(self, header: dict, finished: dict, done: dict) -> tuple[dict, list[dict]]:
        scored = score_samples(self.task, self.items, done)
        ordered = [done[str(doc["id"])] for _, doc in self.items]
        # the shared prefix once per run: as recorded by the first sitting that decoded
        shared = self.shared_prefix
        if shared is None:
            shared = runfolder.prefix_totals(self.decoder.prefix_costs)
        cost = runfolder.totals(ordered, [m.name for m in self.models], shared)
        results = runfolder.complete_results(
            header, finished=datetime.now().isoformat(timespec="seconds"),
            wall_seconds=round(time.perf_counter() - self.started, 3),
            main_metric=scored.main_metric, metrics=scored.metrics, n_items=len(self.items),
            n_missing=scored.n_missing, resumed_items=len(finished),
            shard={"index": self.config["shard"], "count": self.config["num_shards"]},
            cost=cost.to_json(), models=[provenance.model_record(lm) for lm in self.models])
        return results, ordered

    def report(self, store: RunDir, results: dict, samples: list[dict]) -> None:
        if isinstance(self.task, PromptTask):
            _print_prompt_answer(self.task, samples[0], self.last_output, self.decoder)
            log.info("run folder: %s", store.path)
            return
        value = results["main"]
        shown = f"{value:.4f}" if isinstance(value, (int, float)) else value
        log.info("%s: %s = %s over %d items, %.2f s/item; %s", self.task.name,
                 results["main_metric"], shown, len(self.items),
                 results["cost"]["seconds_per_item"], store.results)


def mark_interrupted(store: RunDir) -> None:
    """results.json says the run was stopped (Ctrl-C, SIGTERM) and when; items stay as written."""
    current = store.read_results()
    if current is not None and current.get("status") != "complete":
        store.write_results({**current, "status": "interrupted",
                             "interrupted": datetime.now().isoformat(timespec="seconds")})


def _print_prompt_answer(task, sample: dict, out, decoder) -> None:
    print(f"\nprompt: {task.text!r}")
    print(f"answer: {sample['response']!r}  ({sample['finish_reason']})")
    if out is not None and out.trace:
        print(out.summary(decoder.model_names))
    costs = ", ".join(f"{name}: {c['forwards']} forwards, {c['tokens_fed']} tokens"
                      for name, c in sample["cost"]["models"].items())
    print(f"{sample['rounds']} rounds, {sample['words']} words, "
          f"{sample['seconds']['decode']:.1f} s; {costs}")
