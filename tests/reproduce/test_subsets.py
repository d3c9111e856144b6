"""RESULTS.md's "Baselines and ablations on their items" (adafuse/compare/subsets.py): systems
run on fewer items than the rest of their task are set against every system on those items,
each run cut to the shared items and scored again there (item means and corpus BLEU), every
difference paired; and the main grid shows n on a cell scored on fewer items than its column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adafuse.compare import load_runs
from adafuse.compare.bootstrap import build_results, percentile_interval, resample_indices
from adafuse.compare.results import main
from adafuse.compare.subsets import adafuse_differences, common_items
from tests.reproduce.test_results import SYSTEMS, write_run

FULL = {  # 10 items each: AdaFuse and the members
    "greedy_smol": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    "greedy_gemma": [1, 1, 0, 0, 1, 0, 0, 0, 0, 0],
    "adafuse": [1, 1, 1, 0, 0, 0, 0, 1, 1, 1],
}
FIRST4 = {  # the ablations: the first 4 of those items
    "adafuse_theta0": [1, 0, 0, 1],
    "fixed_span_3": [0, 0, 0, 0],
}


def sweep(root: Path, tasks=("triviaqa",), first4=FIRST4) -> Path:
    for task in tasks:
        for name, scores in {**FULL, **first4}.items():
            write_run(root / task / name, task, SYSTEMS[name], scores)
    return root


def label_of(res, label):
    return next(s for s in res.systems if s.label == label)


def test_every_run_is_cut_to_the_items_all_runs_of_its_task_finished(tmp_path):
    runs, _ = load_runs([sweep(tmp_path / "t", tasks=("triviaqa", "nq"))])
    cut, notes = common_items(runs)
    assert not notes and len(cut) == 10
    assert {run.n_done for run in cut} == {4}
    assert {str(s["id"]) for run in cut for s in run.samples} == {"0", "1", "2", "3"}
    res = build_results(cut, resamples=300, seed=0)
    ada, smol, gemma = (label_of(res, x) for x in ("AdaFuse", "smollm2-135m-instruct", "gemma3-270m"))
    assert ada.value("triviaqa") == pytest.approx(75) and smol.value("triviaqa") == pytest.approx(25)
    assert gemma.value("nq") == pytest.approx(50) and label_of(res, "AdaFuse θ_Δ=0").value("nq") == pytest.approx(50)
    assert res.best_single is gemma  # the better member on these items, as the main grid picks it
    assert res.paired_difference(ada, "triviaqa") is not None  # same items: paired


def test_differences_from_adafuse_are_paired_on_the_shared_items(tmp_path):
    runs, _ = load_runs([sweep(tmp_path / "t")])
    res = build_results(common_items(runs)[0], resamples=400, seed=5)
    rows = {d.system: d for d in adafuse_differences(res)}
    assert set(rows) == {"smollm2-135m-instruct", "gemma3-270m", "AdaFuse θ_Δ=0", "fixed_span k=3"}
    value, interval = rows["fixed_span k=3"].per_task["triviaqa"]
    assert value == pytest.approx(0 - 75)
    # recomputed here: the same resampled item indices for both systems, difference of means
    index = resample_indices("triviaqa", 4, 400, 5)
    expected = (np.array([0, 0, 0, 0])[index].mean(axis=1) - np.array([1, 1, 1, 0])[index].mean(axis=1)) * 100
    assert interval == pytest.approx(percentile_interval(expected))
    assert rows["fixed_span k=3"].average == (pytest.approx(-75), pytest.approx(interval))


def test_tasks_on_the_same_items_are_left_to_the_main_grid_and_no_shared_item_is_a_note(tmp_path):
    same = tmp_path / "same"
    for name, scores in {**FULL, **FIRST4}.items():
        write_run(same / "triviaqa" / name, "triviaqa", SYSTEMS[name], scores[:4])
    assert common_items(load_runs([same])[0]) == ([], [])
    root = sweep(tmp_path / "apart")
    for name in FIRST4:  # the ablations on items 10-13, which no full run has
        write_run(root / "nq" / name, "nq", SYSTEMS[name], [1, 0, 0, 1])
    write_run(root / "nq" / "adafuse", "nq", SYSTEMS["adafuse"], [1] * 4)
    for path in (root / "nq").glob("*/samples.jsonl"):
        if path.parent.name == "adafuse":
            path.write_text(path.read_text().replace('"id": ', '"id": 1'))  # ids 10-13
    runs, _ = load_runs([root])
    cut, notes = common_items(runs)
    assert notes == ["nq: its runs share no item; left out"]
    assert {run.task for run in cut} == {"triviaqa"}


def test_a_corpus_metric_is_scored_again_as_a_corpus_of_the_shared_items(tmp_path):
    from adafuse.tasks import get_task

    task = get_task("flores_en_de")
    docs = task.docs(limit=8)
    golds = [task.golds(d) for d in docs]
    root = tmp_path / "t"
    for name, keep in (("adafuse", 8), ("greedy_gemma", 8), ("fixed_span_3", 4)):
        responses = [" " + g[0] if (i + len(name)) % 2 else " " + g[0].split()[0] for i, g in enumerate(golds)][:keep]
        scored = task.score(responses, docs[:keep])
        write_run(root / "flores_en_de" / name, "flores_en_de", SYSTEMS[name],
                  [p.get(scored.main_metric, 0.0) for p in scored.per_item], responses=responses,
                  golds=[d["answer"] for d in docs[:keep]], main_metric=scored.main_metric, main=scored.main)
    runs, _ = load_runs([root])
    cut, notes = common_items(runs)
    assert not notes and {run.n_done for run in cut} == {4}
    ada = next(run for run in cut if run.path.name == "adafuse")
    responses = [s["response"] for s in ada.samples]
    assert ada.main == pytest.approx(task.score(responses, docs[:4]).main)  # the corpus of 4, not a mean
    res = build_results(cut, resamples=200, seed=0)
    assert label_of(res, "AdaFuse").cells["flores_en_de"].how == "corpus"


def test_results_md_shows_n_per_cell_and_the_section(tmp_path):
    root = sweep(tmp_path / "table1_sized", tasks=("triviaqa", "nq"))
    out = tmp_path / "RESULTS.md"
    assert main([str(root), "--out", str(out), "--resamples", "200", "--no-html", "--no-png"]) == 0
    text = out.read_text()
    grid = text.split("## Systems × tasks", 1)[1].split("\n## ", 1)[0]
    theta0 = next(line for line in grid.splitlines() if line.startswith("| AdaFuse θ_Δ=0 |"))
    assert theta0.count("(n=4)") == 2  # one a task; the full runs' cells carry no n
    assert "(n=" not in next(line for line in grid.splitlines() if line.startswith("| **AdaFuse** |"))
    section = text.split("## Baselines and ablations on their items", 1)[1].split("\n## ", 1)[0]
    assert "| items | 4 | 4 |" in section
    row = next(line for line in section.splitlines() if line.startswith("| fixed_span k=3 |")
               and "[" in line and "(n=" not in line and line.count("|") == 5)
    assert row.split(" | ")[1].startswith("-75.0 [")  # triviaqa: 0 against AdaFuse's 75 on the first 4


def test_results_md_says_so_when_every_task_is_paired_already(tmp_path):
    root = tmp_path / "table1"
    for name in ("greedy_smol", "greedy_gemma", "adafuse"):
        write_run(root / "triviaqa" / name, "triviaqa", SYSTEMS[name], FULL[name])
    out = tmp_path / "RESULTS.md"
    assert main([str(root), "--out", str(out), "--resamples", "100", "--no-html", "--no-png"]) == 0
    assert "_Every task's systems ran on the same items: the grid above pairs them all._" in out.read_text()


def test_the_computed_facts_set_no_subset_cell_against_the_full_ones(tmp_path):
    from adafuse.compare.facts import reading_facts

    root = tmp_path / "t"
    for name, scores in {**FULL, "fixed_span_3": [1, 1, 1, 1]}.items():  # 100% on its 4 items
        write_run(root / "triviaqa" / name, "triviaqa", SYSTEMS[name], scores)
    runs, _ = load_runs([root])
    facts = reading_facts(build_results(runs, resamples=200, seed=0))
    assert "Highest average over all 1 tasks: AdaFuse, " in facts[0]  # not fixed_span's 100 on 4 items
    line = next(f for f in facts if f.startswith("triviaqa: "))
    assert line.startswith("triviaqa: best AdaFuse (60.0); intervals overlapping it: 2 of 2 other systems (1 more "
                           "on fewer items: see the baselines and ablations on their items).")
