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
        "Table 1: systems × tasks, main metric on 0-100 (items in brackets), gain over the best "
        "single model on the same items with its 95% paired-bootstrap interval (* = average over "
        "fewer tasks)"]
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
                          "differences are not paired",
                          "triviaqa, AdaFuse: 4 items against the best single model's 8; no gain "
                          "shown on this task"]
    adafuse = grid.systems[1]
    assert grid.gain(adafuse) is None and grid.gain(adafuse, "triviaqa") is None


def test_the_terminal_grid_shows_items_per_cell_and_gains_with_intervals_on_the_same_items(tmp_path, capsys):
    """A 3-item run is shown without a gain beside a 20-item best single; runs on the same
    items get the paired-bootstrap interval RESULTS.md prints (bootstrap.py, one owner)."""
    from compare_helpers import make_sample

    from adafuse.compare.__main__ import main
    from adafuse.compare.bootstrap import build_results

    def samples(n, right):
        return [make_sample(i, " Paris", ["Paris"], float(i < right), [1], 0.5) for i in range(n)]

    make_run(tmp_path / "single", decoder="greedy", theta=None, max_words=None, model_index=0,
             n_items=20, main=0.25, samples=samples(20, 5))
    make_run(tmp_path / "ens", n_items=20, main=0.4, samples=samples(20, 8))
    make_run(tmp_path / "small", theta=0.2, n_items=3, main=1.0, samples=samples(3, 3))
    runs = load_runs([tmp_path])[0]
    grid = build_grid(runs)
    res = build_results(runs)
    ens = next(s for s in res.systems if s.label == "AdaFuse")
    low, high = res.gain_interval(ens)
    assert low <= res.gain(ens) <= high and low < high
    assert main([str(tmp_path)]) == 0
    table = capsys.readouterr().out.split("Table 1")[1]
    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "25.0 (20)" in rows["smollm2-135m-instruct (best single)"]
    assert rows["AdaFuse"].rstrip().endswith(f"+60.0% [{low * 100:+.1f}, {high * 100:+.1f}]")
    assert "100.0 (3)" in rows["AdaFuse θ_Δ=0.2"] and rows["AdaFuse θ_Δ=0.2"].rstrip().endswith("—")
    assert ("note: triviaqa, AdaFuse θ_Δ=0.2: 3 items against the best single model's 20; no gain "
            "shown on this task") in table
    # the bootstrap makes a new grid: the one it is given keeps its own cells
    from adafuse.compare.bootstrap import Results

    before = [(s, dict(s.cells)) for s in grid.systems]
    copied = Results(grid, 10, 0)
    assert all(s.cells[t] is c for s, cells in before for t, c in cells.items())
    assert copied.grid is not grid and copied.systems[0] is not grid.systems[0]
