"""Join the shards of a data-parallel run into one run folder, and score it.

    python -m adafuse.run -m shard=0,1,2,3 num_shards=4 task=gsm8k      # or +sweep=shards4
    python -m adafuse.merge runs/gsm8k/2026-11-27_20-00-00 [out=DIR]

Every run folder under the sweep folder is read; runs that differ only in `shard` form one
group, which must hold every shard 0..n-1, each complete. Each group becomes one run folder
(`<sweep>/merged/`, or `merged_<k>/` when the sweep held several) whose samples, trace and
results are those of the same run done in one job (with `num_shards=1`). Bad input prints one
line and exits 2.
"""

from __future__ import annotations

import copy
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Optional

from adafuse.errors import AdaFuseError
from adafuse.runner.experiment import _totals, open_task, score_samples, select_items
from adafuse.runner.rundir import RESULTS, RunDir, config_differences, read_jsonl

USAGE = "usage: python -m adafuse.merge <sweep folder> [out=DIR]"


def find_runs(sweep_dir: Path) -> list[RunDir]:
    runs = [RunDir(p.parent) for p in sorted(sweep_dir.glob(f"*/{RESULTS}"))]
    return [r for r in runs if not r.path.name.startswith("merged")]


def unsharded(config: dict) -> dict:
    config = copy.deepcopy(config)
    config["shard"], config["num_shards"] = 0, 1
    return config


def group_shards(runs: list[RunDir]) -> list[list[tuple[RunDir, dict]]]:
    """Runs whose configs agree once `shard` is set aside, in order of first appearance."""
    groups: list[list[tuple[RunDir, dict]]] = []
    for run in runs:
        results = run.read_results() or {}
        config = results.get("config")
        if config is None:
            raise AdaFuseError(f"{run.results}: no config in it; not a run folder of adafuse.run")
        for group in groups:
            if not config_differences(unsharded(group[0][1]["config"]), unsharded(config)):
                group.append((run, results))
                break
        else:
            groups.append([(run, results)])
    return groups


def check_complete(group: list[tuple[RunDir, dict]]) -> list[tuple[RunDir, dict]]:
    """The group's shards in order; every one present once and finished."""
    count = group[0][1]["config"]["num_shards"]
    by_shard: dict[int, tuple[RunDir, dict]] = {}
    for run, results in group:
        shard = results["config"]["shard"]
        if shard in by_shard:
            raise AdaFuseError(f"shard {shard} appears twice: {by_shard[shard][0].path} and {run.path}")
        by_shard[shard] = (run, results)
    missing = [i for i in range(count) if i not in by_shard]
    if missing:
        raise AdaFuseError(f"shards {missing} of {count} are missing (found {sorted(by_shard)}); "
                           "run them, then merge again")
    unfinished = [str(run.path) for run, results in by_shard.values() if results.get("status") != "complete"]
    if unfinished:
        raise AdaFuseError(f"shards not finished: {', '.join(unfinished)}; rerun them (they resume), then merge")
    return [by_shard[i] for i in range(count)]


def merge_group(shards: list[tuple[RunDir, dict]], out_dir: Path) -> dict:
    config = unsharded(shards[0][1]["config"])
    task, _, _ = open_task(config)
    items = select_items(task, config)
    samples: dict[str, dict] = {}
    trace: list[dict] = []
    for run, _ in shards:
        for sample in read_jsonl(run.samples):
            samples.setdefault(str(sample["id"]), sample)
        trace.extend(read_jsonl(run.trace))
    missing = [doc["id"] for _, doc in items if str(doc["id"]) not in samples]
    if missing:
        raise AdaFuseError(f"{len(missing)} items have no sample in any shard (first: {missing[0]!r})")
    ordered = [samples[str(doc["id"])] for _, doc in items]
    trace.sort(key=lambda row: (row["item"], row["round"]))
    scored = score_samples(task, items, samples)
    first = shards[0][1]
    results = {
        "status": "complete",
        "task": first.get("task"),
        "run_dir": str(out_dir),
        "merged_from": [str(run.path) for run, _ in shards],
        "main_metric": scored.main_metric or None,
        "main": scored.metrics.get(scored.main_metric) if scored.main_metric else None,
        "metrics": scored.metrics,
        "n_items": len(items),
        "n_missing": scored.n_missing,
        "shard": {"index": 0, "count": 1},
        "cost": _totals(ordered, [m["name"] for m in first.get("models", [])]),
        "models": first.get("models"),
        "finished": datetime.now().isoformat(timespec="seconds"),
        "config": config,
        "versions": first.get("versions"),
        "git": first.get("git"),
    }
    out = RunDir(out_dir)
    out.path.mkdir(parents=True, exist_ok=True)
    for path, records in ((out.samples, ordered), (out.trace, trace)):
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    out.write_results(results)
    return results


def merge(sweep_dir: Path, out: Optional[Path] = None) -> list[tuple[Path, dict]]:
    if not sweep_dir.is_dir():
        raise AdaFuseError(f"no such folder: {sweep_dir}")
    runs = find_runs(sweep_dir)
    if not runs:
        raise AdaFuseError(f"{sweep_dir}: no run folders (*/{RESULTS}) in it")
    groups = [g for g in group_shards(runs) if g[0][1]["config"]["num_shards"] > 1]
    if not groups:
        raise AdaFuseError(f"{sweep_dir}: no sharded runs (num_shards > 1) to merge")
    checked = [check_complete(g) for g in groups]  # all groups checked before anything is written
    base = out or sweep_dir / "merged"
    merged = []
    for k, shards in enumerate(checked):
        target = base if len(checked) == 1 else base.with_name(f"{base.name}_{k}")
        merged.append((target, merge_group(shards, target)))
    return merged


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        paths = [a for a in args if "=" not in a]
        options = dict(a.split("=", 1) for a in args if "=" in a)
        if len(paths) != 1 or set(options) - {"out"}:
            raise AdaFuseError(USAGE)
        merged = merge(Path(paths[0]), Path(options["out"]) if "out" in options else None)
    except AdaFuseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for target, results in merged:
        main_value = results["main"]
        shown = f"{main_value:.4f}" if isinstance(main_value, float) else main_value
        print(f"{target}: {len(results['merged_from'])} shards, {results['n_items']} items, "
              f"{results['main_metric']} = {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
