"""RESULTS.md's "AdaFuse against its members, and the oracle" (adafuse/compare/members.py) on
synthetic run folders whose per-item scores fix every number: each member, the better one,
the paired differences and their half-widths, the oracle (either member right) and AdaFuse's
share of the headroom, n per row, and the tasks left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adafuse.compare.bootstrap import percentile_interval, resample_indices
from adafuse.compare.members import member_rows
from adafuse.compare.results import main
from tests.reproduce.test_results import SYSTEMS, results_of, write_run

SMOL, GEMMA = "smollm2-135m-instruct", "gemma3-270m"
SCORES = {
    "triviaqa": {"greedy_smol": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],   # 20
                 "greedy_gemma": [1, 0, 1, 1, 0, 0, 0, 0, 0, 0],  # 30; either right: 40
                 "adafuse": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]},      # 30
    "nq": {"greedy_smol": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],         # 30
           "greedy_gemma": [0, 0, 0, 1, 1, 0, 0, 0, 0, 0],        # 20; either right: 50
           "adafuse": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]},            # 60, above the oracle
}


def write(root: Path, scores: dict) -> Path:
    for task, systems in scores.items():
        for name, values in systems.items():
            write_run(root / task / name, task, SYSTEMS[name], values)
    return root


@pytest.fixture
def sweep(tmp_path):
    return write(tmp_path / "table1", SCORES)


def test_each_member_the_better_one_the_oracle_and_the_share(sweep):
    res = results_of(sweep, resamples=400)
    rows, notes = member_rows(res)
    assert not notes
    trivia, nq, average = rows
    assert (trivia.task, trivia.n, trivia.members, trivia.better) == ("triviaqa", 10, {SMOL: 20, GEMMA: 30}, GEMMA)
    assert trivia.adafuse == pytest.approx(30) and trivia.oracle == pytest.approx(40)
    assert trivia.vs[SMOL][0] == pytest.approx(10) and trivia.vs_better[0] == pytest.approx(0)
    assert trivia.share == pytest.approx(0.0)
    assert (nq.better, nq.oracle) == (SMOL, pytest.approx(50))
    assert nq.share == pytest.approx(30 / 20)  # AdaFuse builds answers neither member gave
    assert average.task is None and average.tasks == ["triviaqa", "nq"] and average.n == 20
    assert average.members == {SMOL: 25, GEMMA: 25} and average.adafuse == pytest.approx(45)
    assert average.oracle == pytest.approx(45) and average.share == pytest.approx(1.0)


def test_intervals_are_the_paired_bootstrap_recomputed_from_the_items(sweep):
    res = results_of(sweep, resamples=400, seed=3)
    trivia = member_rows(res)[0][0]
    index = resample_indices("triviaqa", 10, 400, 3)
    ours, gemma, smol = (np.asarray(SCORES["triviaqa"][k], float)[index].mean(axis=1) * 100
                         for k in ("adafuse", "greedy_gemma", "greedy_smol"))
    low, high = percentile_interval(ours - gemma)
    assert trivia.vs_better[1] == pytest.approx((low, high))
    assert trivia.half_width == pytest.approx((high - low) / 2) and trivia.half_width > 0
    either = np.maximum(*(np.asarray(SCORES["triviaqa"][k], float) for k in ("greedy_gemma", "greedy_smol")))
    assert trivia.oracle_interval == pytest.approx(percentile_interval(either[index].mean(axis=1) * 100))
    assert np.all(either[index].mean(axis=1) * 100 >= np.maximum(gemma, smol))  # never below a member


def test_a_task_on_other_items_is_a_note_and_partial_credit_has_no_oracle(tmp_path):
    scores = {"triviaqa": SCORES["triviaqa"],
              "nq": {"greedy_smol": [0.5, 1, 0, 0], "greedy_gemma": [1, 0, 0, 0], "adafuse": [1, 1, 0, 0]}}
    root = write(tmp_path / "table1", scores)
    write_run(root / "gsm8k" / "greedy_smol", "gsm8k", SYSTEMS["greedy_smol"], [0, 0, 0])
    write_run(root / "gsm8k" / "greedy_gemma", "gsm8k", SYSTEMS["greedy_gemma"], [0, 0, 0])
    write_run(root / "gsm8k" / "adafuse", "gsm8k", SYSTEMS["adafuse"], [0, 0])  # other items
    rows, notes = member_rows(results_of(root, resamples=200))
    assert [r.task for r in rows] == ["triviaqa", "nq"]  # no average: one task has an oracle
    assert rows[1].oracle is None and rows[1].share is None and rows[1].better == SMOL
    assert len(notes) == 1 and notes[0].startswith("gsm8k:")


def test_results_md_has_the_section_with_half_widths(sweep, tmp_path):
    out = tmp_path / "RESULTS.md"
    assert main([str(sweep), "--out", str(out), "--resamples", "200", "--no-html", "--no-png"]) == 0
    text = out.read_text(encoding="utf-8")
    section = text.split("## AdaFuse against its members, and the oracle")[1].split("## Cost")[0]
    rows = {cells[0]: cells[1:] for cells in
            ([c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
             if line.startswith("| "))}
    assert rows[""] == ["triviaqa", "nq", "Average (triviaqa, nq)"]
    assert rows["n (items)"] == ["10", "10", "20"] and rows[GEMMA] == ["30.0", "20.0", "25.0"]
    assert rows["better member"] == [GEMMA, SMOL, SMOL] and rows["**AdaFuse**"] == ["30.0", "60.0", "45.0"]
    assert [c.split(" [")[0] for c in rows["AdaFuse − better member [paired 95% CI]"]] == ["0.0", "30.0", "20.0"]
    assert all(c.startswith("±") for c in rows["± (half-width) against the better member"])
    assert [c.split(" [")[0] for c in rows["**oracle**: either member right [95% CI]"]] == ["40.0", "50.0", "45.0"]
    assert rows["AdaFuse's share of the headroom"] == ["0%", "150%", "100%"]
    best = text.split("## AdaFuse against the best single model")[1].split("##")[0]
    assert "± (half-width)" in best and "| ±" in best


def test_results_md_while_adafuse_is_partway_through_its_only_task(tmp_path):
    """A part still running: AdaFuse has fewer items than the members on the one task there is,
    so no task is paired; RESULTS.md is still written, with no average row and a note."""
    root = tmp_path / "table1"
    for name, values in SCORES["triviaqa"].items():
        write_run(root / "triviaqa" / name, "triviaqa", SYSTEMS[name], values if name != "adafuse" else values[:6])
    out = tmp_path / "RESULTS.md"
    assert main([str(root), "--out", str(out), "--resamples", "50", "--no-html", "--no-png"]) == 0
    best = out.read_text(encoding="utf-8").split("## AdaFuse against the best single model")[1].split("##")[0]
    assert "| triviaqa |" in best and "**Average**" not in best
    assert "did not run on the same items" in out.read_text(encoding="utf-8")
