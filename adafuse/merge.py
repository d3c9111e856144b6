"""Join the shards of a data-parallel run into one run folder, and score it.

    python -m adafuse.merge runs/gsm8k/2026-11-27_20-00-00

Its command line and what it checks: COMMAND below (`--help` prints them).
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

from adafuse import cli, runfolder
from adafuse.errors import AdaFuseError
from adafuse.runfolder import RESULTS, SAMPLES, TRACE, Results, Sample, TraceRow, read_jsonl
from adafuse.runfolder.rundir import RunDir, config_differences
from adafuse.tasks.selection import input_digests, open_task, score_samples, select_items, shard_slice

COMMAND = cli.Command(
    prog="python -m adafuse.merge",
    summary="Join the shards of a data-parallel run into one run folder, and score it.",
    usage=("<sweep folder> [out=DIR] [replace=true]",),
    args=(
        cli.Arg("<sweep folder>", "the sweep folder of a data-parallel run (one job a shard)"),
        cli.Arg("out=DIR", "where the merged run goes", default="<sweep>/merged"),
        cli.Arg("replace=true", "replace a run already in the merged folder", default="false"),
    ),
    examples=(
        "runs/gsm8k/2026-11-27_20-00-00",
        "runs/gsm8k/2026-11-27_20-00-00 out=runs/gsm8k/merged replace=true",
    ),
    notes="""\
The shards come from a run such as
    python -m adafuse.run -m shard=0,1,2,3 num_shards=4 task=gsm8k      # or +sweep=shards4
Every run folder under the sweep folder is read; runs that differ only in `shard` form one
group, which must hold every shard 0..n-1, each complete and holding each of its items once.
Each group becomes one run folder (`<sweep>/merged/`, or `merged_<k>/` when the sweep held
several) whose samples, trace and results are those of the same run done in one job (with
`num_shards=1`). A folder that already holds a run is left alone unless `replace=true`, and
even then only a merge of the same sweep (its results.json's `merged_from` in this sweep
folder, the same task) or a merge cut short (samples, no results.json, no .hydra) is replaced.
Bad input, and a damaged shard folder, print one line and exit 2.""",
)
USAGE = f"usage: {COMMAND.prog} {COMMAND.usage[0]}"
RUN_FILES = (RESULTS, SAMPLES, TRACE, ".hydra")  # what makes a folder hold a run


def find_runs(sweep_dir: Path) -> list[RunDir]:
    runs = [RunDir(p.parent) for p in sorted(sweep_dir.glob(f"*/{RESULTS}"))]
    return [r for r in runs if not r.path.name.startswith("merged")]


def unsharded(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["shard"], config["num_shards"] = 0, 1
    return config


def group_shards(runs: list[RunDir]) -> list[list[tuple[RunDir, dict]]]:
    """Runs whose configs agree once `shard` is set aside, in order of first appearance. Each
    results.json is read through its record (`Results`): a field of another type than a run
    writes there is one line naming the file and the field."""
    groups: list[list[tuple[RunDir, dict]]] = []
    for run in runs:
        results = run.read_results() or {}
        config = Results(results, str(run.results)).config
        for group in groups:
            if not config_differences(unsharded(group[0][1]["config"]), unsharded(config)):
                group.append((run, results))
                break
        else:
            groups.append([(run, results)])
    return groups


def empty_shards(config: dict) -> set[int]:
    """The shards that hold no item (more shards than items): their jobs have nothing to
    decode and write no run, and a merge does without them."""
    count = config.get("num_shards") or 1
    task, _, _ = open_task(unsharded(config))
    n_items = len(select_items(task, unsharded(config)))
    return {i for i in range(count) if not shard_slice(n_items, i, count)}


def shard_count(results: dict) -> int:
    return results["config"].get("num_shards") or 1


def check_complete(group: list[tuple[RunDir, dict]]) -> list[tuple[int, RunDir, dict]]:
    """The group's shards in order, as (shard, run, results); every one that holds items
    present once and finished."""
    count = shard_count(group[0][1])
    empty = empty_shards(group[0][1]["config"])
    by_shard: dict[int, tuple[RunDir, dict]] = {}
    for run, results in group:
        shard = results["config"].get("shard") or 0
        if shard >= count:
            raise AdaFuseError(f"{run.results}: config.shard is {shard}, not one of the {count} shards "
                               f"(0..{count - 1})")
        if shard in by_shard:
            raise AdaFuseError(f"shard {shard} appears twice: {by_shard[shard][0].path} and {run.path}")
        by_shard[shard] = (run, results)
    missing = [i for i in range(count) if i not in by_shard and i not in empty]
    if missing:
        raise AdaFuseError(f"shards {missing} of {count} are missing (found {sorted(by_shard)}); "
                           "run them, then merge again")
    unfinished = [str(run.path) for run, results in by_shard.values() if results.get("status") != "complete"]
    if unfinished:
        raise AdaFuseError(f"shards not finished: {', '.join(unfinished)}; rerun them (they resume), then merge")
    return [(i, *by_shard[i]) for i in range(count) if i in by_shard]


def shard_samples(run: RunDir, shard: int, expected: list[tuple[int, dict]]) -> list[dict]:
    """The shard's samples, each of its items once, none of another shard's."""
    ids = {str(doc["id"]) for _, doc in expected}
    seen: dict[str, dict] = {}
    for n, record in enumerate(read_jsonl(run.samples), 1):
        sample = Sample(record, f"{run.samples}:{n}")
        if sample.key in seen:
            raise AdaFuseError(f"shard {shard} ({run.path}): item {sample.get('id')!r} appears twice "
                               f"in {SAMPLES}")
        if sample.key not in ids:
            raise AdaFuseError(f"shard {shard} ({run.path}): item {sample.get('id')!r} is not one of "
                               "its items; was it run with another config?")
        seen[sample.key] = record
    missing = [doc["id"] for _, doc in expected if str(doc["id"]) not in seen]
    if missing:
        raise AdaFuseError(f"shard {shard} ({run.path}): {len(missing)} of its {len(expected)} items "
                           f"have no sample (first: {missing[0]!r}); rerun it (it resumes), then merge")
    return list(seen.values())


def shard_trace(run: RunDir, shard: int, ids: set[str]) -> list[dict]:
    rows = [TraceRow(r, f"{run.trace}:{n}") for n, r in enumerate(read_jsonl(run.trace), 1)]
    stray = next((r for r in rows if r.key not in ids), None)
    if stray is not None:
        raise AdaFuseError(f"shard {shard} ({run.path}): {TRACE} has rounds of item "
                           f"{stray.get('id')!r}, which is not one of its items")
    return [r.to_json() for r in rows]


def gather(shards: list[tuple[int, RunDir, dict]]) -> tuple[dict, object, list, dict, list[dict]]:
    """Everything a merged folder holds, read and checked before anything is written."""
    count = shard_count(shards[0][2])
    config = unsharded(shards[0][2]["config"])
    task, _, _ = open_task(config)
    items = select_items(task, config)
    samples: dict[str, dict] = {}
    trace: list[dict] = []
    for shard, run, results in shards:
        expected = select_items(task, {**config, "shard": shard, "num_shards": count})
        for record in shard_samples(run, shard, expected):
            samples[str(record["id"])] = record
        trace.extend(shard_trace(run, shard, {str(doc["id"]) for _, doc in expected}))
    trace.sort(key=lambda row: (row["item"], row["round"]))
    return config, task, items, samples, trace


def merge_group(shards: list[tuple[int, RunDir, dict]], out_dir: Path) -> tuple[dict, list[dict], list[dict]]:
    """results.json, samples and trace of the merged run, checked; nothing is written."""
    config, task, items, samples, trace = gather(shards)
    ordered = [samples[str(doc["id"])] for _, doc in items]
    scored = score_samples(task, items, samples)
    first = shards[0][2]
    # one job would prefill the shared prefix once: the first shard's entry (None: shards
    # written before it had one, whose first items carry it each)
    cost = Results(first, str(shards[0][1].results)).cost
    totals = runfolder.totals(ordered, [m["name"] for m in first.get("models") or []],
                              cost.shared_prefix if cost else None)
    head = runfolder.header(config=config, task=first.get("task"), versions=first.get("versions"),
                            git=first.get("git"), run_dir=str(out_dir), sweep_dir=None,
                            started=first.get("started"), inputs=input_digests(task, items))
    results = runfolder.complete_results(
        head, finished=datetime.now().isoformat(timespec="seconds"),
        main_metric=scored.main_metric, metrics=scored.metrics, n_items=len(items),
        n_missing=scored.n_missing, shard={"index": 0, "count": 1}, cost=totals.to_json(),
        models=first.get("models"), merged_from=[str(run.path.absolute()) for _, run, _ in shards])
    return results, ordered, trace


def write_merged(out_dir: Path, results: dict, samples: list[dict], trace: list[dict],
                 replace: bool) -> None:
    """Write one merged folder, holding its lock; each file replaced whole."""
    with runfolder.hold(out_dir):
        check_target(out_dir, replace, results)
        for name in RUN_FILES:  # replace=true: nothing of the old run may contradict the new
            path = out_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        # results.json last: a folder whose merge was cut short has no results, never old ones
        runfolder.write_jsonl_atomic(out_dir / SAMPLES, samples)
        runfolder.write_jsonl_atomic(out_dir / TRACE, trace)
        runfolder.write_json_atomic(out_dir / RESULTS, results)


def check_target(out_dir: Path, replace: bool, merged: Optional[dict] = None) -> None:
    """Refuse to write into a file, into a folder that holds a run (unless `replace`), and,
    even with `replace`, into one that holds anything but a merge of the same sweep
    (`merged`: the results.json about to be written, whose `merged_from` and task it must
    match) or a merge cut short (samples and trace, no results.json, no .hydra)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AdaFuseError(f"out={out_dir} is a file; give a folder")
    held = [name for name in RUN_FILES if os.path.lexists(out_dir / name)]
    if held and not replace:
        raise AdaFuseError(f"{out_dir} already holds a run ({', '.join(held)}); choose another "
                           "out=, or pass replace=true to replace it")
    if held and merged is not None:
        other = foreign_run(out_dir, merged)
        if other:
            raise AdaFuseError(f"{out_dir} holds {other}, not a merge of this sweep; replace=true "
                               "replaces only that: choose another out=")


def foreign_run(out_dir: Path, merged: dict) -> Optional[str]:
    """What makes the run in `out_dir` another than an earlier merge of `merged`'s sweep and
    task (said in a few words), or None when it is one, or a merge cut short."""
    try:
        old = RunDir(out_dir).read_results()
    except AdaFuseError as exc:
        return f"a run whose {RESULTS} cannot be read ({str(exc).removeprefix(f'{out_dir / RESULTS}: ')})"
    if old is None:  # a merge writes its results last, and never .hydra; a run writes both first
        return f"a run of adafuse.run (.hydra, no {RESULTS})" if os.path.lexists(out_dir / ".hydra") else None
    sources = old.get("merged_from")
    if not sources:
        return "a run of adafuse.run (its results.json has no merged_from)"
    sweep = {Path(p).resolve().parent for p in merged["merged_from"]}
    if {Path(p).resolve().parent for p in sources} != sweep:
        return f"a merge of another sweep ({Path(sources[0]).parent})"
    names = [(r.get("task") or {}).get("name") for r in (old, merged)]
    if names[0] != names[1]:
        return f"a merge of another task ({names[0]})"
    return None


def merge(sweep_dir: Path, out: Optional[Path] = None, replace: bool = False) -> list[tuple[Path, dict]]:
    if not sweep_dir.is_dir():
        raise AdaFuseError(f"no such folder: {sweep_dir}")
    runs = find_runs(sweep_dir)
    if not runs:
        raise AdaFuseError(f"{sweep_dir}: no run folders (*/{RESULTS}) in it")
    groups = [g for g in group_shards(runs) if shard_count(g[0][1]) > 1]
    if not groups:
        raise AdaFuseError(f"{sweep_dir}: no sharded runs (num_shards > 1) to merge")
    checked = [check_complete(g) for g in groups]  # all groups checked before anything is written
    base = out or sweep_dir / "merged"
    targets = [base if len(checked) == 1 else base.with_name(f"{base.name}_{k}") for k in range(len(checked))]
    for target in targets:
        check_target(target, replace)
    # every shard read and checked before the first folder is written
    prepared = [merge_group(shards, target) for target, shards in zip(targets, checked)]
    for target, (results, _, _) in zip(targets, prepared):
        check_target(target, replace, results)  # every target checked before the first is written
    for target, (results, samples, trace) in zip(targets, prepared):
        write_merged(target, results, samples, trace, replace)
    return [(target, results) for target, (results, _, _) in zip(targets, prepared)]


def parse_args(args: list[str]) -> tuple[Path, Optional[Path], bool]:
    paths = [a for a in args if "=" not in a]
    options = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = sorted(set(options) - set(COMMAND.keys())) + [a for a in paths if a.startswith("-")]
    if unknown:
        raise AdaFuseError(f"unknown option {unknown[0]!r}; allowed: out=DIR, replace=true|false, --help")
    if len(paths) != 1:
        raise AdaFuseError(f"give one sweep folder (got {len(paths)}); {USAGE}")
    replace = options.get("replace", "false").lower()
    if replace not in ("true", "false"):
        raise AdaFuseError(f"replace={options['replace']!r}; allowed: true, false")
    if "out" in options and not options["out"]:
        raise AdaFuseError("out= is empty; give a folder")
    return Path(paths[0]), Path(options["out"]) if "out" in options else None, replace == "true"


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if cli.asks_help(args):
        return cli.print_help(COMMAND)
    try:
        sweep_dir, out, replace = parse_args(args)
        merged = merge(sweep_dir, out, replace)
    except AdaFuseError as exc:
        return cli.error(exc)
    except OSError as exc:  # out= under a file, a read-only or full disk: the path, once
        where = exc.filename if exc.filename is not None else "the merged folder"
        return cli.error(f"cannot write {where}: {exc.strerror or exc}")
    for target, results in merged:
        main_value = results["main"]
        shown = f"{main_value:.4f}" if isinstance(main_value, float) else main_value
        print(f"{target}: {len(results['merged_from'])} shards, {results['n_items']} items, "
              f"{results['main_metric']} = {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
