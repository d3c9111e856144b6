import pytest
from compare_helpers import make_run

from adafuse.compare.grid import build_grid
from adafuse.compare.load import load_runs
from adafuse.compare.table import (
    best,
    by_task,
    pareto_front,
    task_rows,
    terminal_report,
)


def test_runs_are_grouped_by_task_and_sorted_by_the_main_metric(sweep):
    runs, _ = load_runs([sweep])
    tasks = by_task(runs)
    assert list(tasks) == ["gsm8k", "triviaqa"]
    mains = [r.main for r in tasks["triviaqa"]]
    assert mains == sorted(mains, reverse=True)
    assert [(r.theta_delta, r.max_words) for r in best(tasks["triviaqa"])] == [(1.0, 3)]


def test_ties_are_all_best_and_runs_without_the_metric_come_last(tmp_path):
    make_run(tmp_path / "a", main=0.5)
    make_run(tmp_path / "b", main=0.5, theta=0.3)
    make_run(tmp_path / "c", metrics={})
    make_run(tmp_path / "d", main=0.25)
    runs, _ = load_runs([tmp_path])
    ordered = by_task(runs)["triviaqa"]
    assert [r.path.name for r in ordered] == ["a", "b", "d", "c"]
    assert {r.path.name for r in best(ordered)} == {"a", "b"}
    header, rows = task_rows(ordered)
    assert header[:8] == ["", "task", "models", "decoder", "θ_Δ", "max_words", "B", "n"]
    assert header[-3:] == ["s/item", "fwd/word", "run"]
    assert [row[0] for row in rows] == ["*", "*", "", ""]
    assert rows[3][header.index("em_lenient_triviaqa")] == "—"


def test_the_terminal_report_has_one_table_a_task_with_every_column(sweep, tmp_path):
    make_run(tmp_path / "partial", status=None, n_items=8, samples=[])  # skipped: nothing finished
    runs, _ = load_runs([sweep])
    text = terminal_report(runs)
    blocks = text.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        "gsm8k: sorted by gsm8k_accuracy (0-100, higher is better), * = best",
        "triviaqa: sorted by em_lenient_triviaqa (0-100, higher is better), * = best",
        "Table 1: systems × tasks, main metric on 0-100, gain over the best single model "
        "(* = average over fewer tasks)"]
    trivia = blocks[1].splitlines()
    assert len(trivia) == 3 + 8  # title, header, rule; 6 sweep runs and 2 single models
    best_line = trivia[3]
    assert best_line.startswith("*  triviaqa  smollm2-135m-instruct + gemma3-270m  adafuse  1.00  3")
    assert "55.0" in best_line and "sweep/5_theta_delta=1.0,max_words=3" in best_line
    greedy_line = next(line for line in trivia if "greedy" in line)
    assert "gemma3-270m" in greedy_line and "smollm2" not in greedy_line


def test_pareto_front_keeps_the_points_nothing_cheaper_beats():
    points = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.6), (3.0, 0.6), (0.5, 0.1), (2.0, 0.6)]
    assert pareto_front(points) == [4, 0, 2, 5]  # equal points both stay; sorted by cost
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 0.2)]) == [0]


def test_grid_averages_and_gains_over_the_best_single_model(sweep):
    runs, _ = load_runs([sweep])
    grid = build_grid(runs)
    assert grid.tasks == ["gsm8k", "triviaqa"]
    assert grid.metrics == {"gsm8k": "gsm8k_accuracy", "triviaqa": "em_lenient_triviaqa"}
    assert [s.single for s in grid.systems] == [True] * 2 + [False] * 6
    assert grid.best_single.label == "gemma3-270m"
    # fractions on the 0-100 scale RESULTS.md uses
    assert grid.best_single.average(grid.tasks) == pytest.approx((40 + 50) / 2)
    top = max(grid.systems, key=lambda s: s.average(grid.tasks))
    assert top.label == "AdaFuse θ_Δ=1" and top.key == "adafuse θ_Δ=1 max_words=3 B=3 · smollm2-135m-instruct + gemma3-270m"
    assert top.average(grid.tasks) == pytest.approx((55 + 65) / 2)
    assert grid.gain(top, "triviaqa") == pytest.approx((0.55 - 0.4) / 0.4)
    assert grid.gain(top) == pytest.approx((0.6 - 0.45) / 0.45)
    assert grid.gain(grid.best_single) is None
    assert grid.notes == []


def test_grid_with_missing_cells_duplicates_and_unequal_item_counts(tmp_path):
    make_run(tmp_path / "g0", decoder="greedy", theta=None, max_words=None, model_index=0, main=0.4, n_items=4)
    make_run(tmp_path / "g0_nq", task="nq", decoder="greedy", theta=None, max_words=None, model_index=0, main=0.2)
    make_run(tmp_path / "a_small", main=0.9, n_items=2)  # the same system twice on triviaqa:
    make_run(tmp_path / "a_big", main=0.5, n_items=4)  # the run with more items is shown
    make_run(tmp_path / "p", main=None, status=None, n_items=4,  # a partial run of another system
             theta=0.1, samples=[])
    runs, _ = load_runs([tmp_path])
    grid = build_grid(runs)
    assert grid.tasks == ["triviaqa", "nq"]  # Table 1's order
    ensemble = next(s for s in grid.systems if not s.single)
    assert ensemble.runs["triviaqa"].path.name == "a_big"
    assert not ensemble.covers(grid.tasks) and ensemble.average(grid.tasks) == 50.0
    assert grid.gain(ensemble) == pytest.approx((0.5 - 0.4) / 0.4)  # over the shared task only
    assert grid.gain(ensemble, "nq") is None
    assert any("2 runs; shown: " in n for n in grid.notes)
    assert not any("not all run on the same items" in n for n in grid.notes)


def test_grid_notes_systems_scored_on_different_item_counts(tmp_path):
    make_run(tmp_path / "g", decoder="greedy", theta=None, max_words=None, model_index=0, n_items=8)
    make_run(tmp_path / "a", n_items=4)
    grid = build_grid(load_runs([tmp_path])[0])
    assert grid.notes == ["triviaqa: the runs did not all run on the same items (4, 8 items); "
                          "differences are not paired"]
