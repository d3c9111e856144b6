"""One grid behind every view (issue 16, item 3): RESULTS.md, the HTML report, the terminal and
W&B print the same averages and gains on the same 0-100 scale, computed here from the same
runs in one process; compare warns about tables whose runs differ in their items, and never
marks a run of 0 items best."""

import pytest
from compare_helpers import make_run, make_sample
from grid_views import extract_table1, html_grid, markdown_grid, terminal_grid

from adafuse.compare.__main__ import main as compare_main
from adafuse.compare.grid import build_grid, fmt_gain, fmt_score
from adafuse.compare.load import load_runs
from adafuse.compare.results import main as results_main
from adafuse.compare.table import best, by_task, terminal_report
from adafuse.compare.wandb_table import grid_table


def views(root, tmp_path, capsys):
    """(RESULTS.md grid, report grid, terminal grid, W&B grid) for the runs below root."""
    out = tmp_path / "out" / "RESULTS.md"
    assert results_main([str(root), "--out", str(out), "--resamples", "30", "--no-png"]) == 0
    capsys.readouterr()
    assert compare_main([str(root)]) == 0
    terminal = capsys.readouterr().out
    runs, _ = load_runs([root])
    columns, rows = grid_table(build_grid(runs))
    wandb = {row[0]: (fmt_score(row[columns.index("avg")]), fmt_gain(row[columns.index("gain_vs_best_single")]))
             for row in rows}
    page = (out.parent / "results" / "report.html").read_text()
    return markdown_grid(out.read_text()), html_grid(page), terminal_grid(terminal), wandb


def test_every_view_shows_the_table1_runs_averages_and_gains_alike(tmp_path, capsys):
    """The committed Table-1 runs: fractions (accuracy, exact match) and BLEU side by side."""
    root = extract_table1(tmp_path / "runs")
    md, report, terminal, wandb = views(root, tmp_path, capsys)
    assert len(md) == 11 and md["gemma3-270m"][1] == "—"
    assert report == md and terminal == md and wandb == md
    # the mixed-scale grid averaged raw fractions with BLEU: gemma's average was 4.85 there
    gemma = float(md["gemma3-270m"][0])
    assert gemma > 10


def test_fractions_are_percent_and_bleu_as_is_in_every_view(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root / "g0", decoder="greedy", theta=None, max_words=None, model_index=0, main=0.25)
    make_run(root / "g1", decoder="greedy", theta=None, max_words=None, model_index=1, main=0.5)
    make_run(root / "a", main=0.75)
    make_run(root / "g0_bleu", task="flores_en_de", decoder="greedy", theta=None, max_words=None,
             model_index=0, main=None, metrics={"bleu_13a": 20.0})
    make_run(root / "g1_bleu", task="flores_en_de", decoder="greedy", theta=None, max_words=None,
             model_index=1, main=None, metrics={"bleu_13a": 10.0})
    make_run(root / "a_bleu", task="flores_en_de", main=None, metrics={"bleu_13a": 15.0})
    for name in ("g0_bleu", "g1_bleu", "a_bleu"):  # the helper names triviaqa's metric
        results = (root / name / "results.json")
        results.write_text(results.read_text().replace('"score"', '"bleu_13a"'))
    md, report, terminal, wandb = views(root, tmp_path, capsys)
    # (25 + 20) / 2, (50 + 10) / 2, (75 + 15) / 2: the fraction in percent beside BLEU
    assert md == {"smollm2-135m-instruct": ("22.5", "-25.0%"), "gemma3-270m": ("30.0", "—"),
                  "AdaFuse": ("45.0", "+50.0%")}
    assert report == md and terminal == md and wandb == md


def test_runs_on_different_items_are_warned_about(tmp_path, capsys):
    make_run(tmp_path / "g", decoder="greedy", theta=None, max_words=None, model_index=0, n_items=8)
    make_run(tmp_path / "a", n_items=4)
    make_run(tmp_path / "b", theta=0.2, n_items=4,
             samples=[make_sample(i, " Paris", ["Paris"], 1.0, [1], 0.5) for i in (10, 11, 12, 13)])
    assert compare_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("warning: triviaqa: the runs did not all run on the same items (4, 8 items); "
            "differences are not paired") in out
    # the same count on other items is warned about too
    grid = build_grid(load_runs([tmp_path / "a", tmp_path / "b"])[0])
    assert grid.notes == ["triviaqa: the runs did not all run on the same items (4 each, not the same "
                          "ones); differences are not paired"]


def test_a_run_of_0_items_is_never_best(tmp_path, capsys):
    make_run(tmp_path / "empty", n_items=0, main=0.0, samples=[])
    runs, notes = load_runs([tmp_path])
    assert notes == [f"{tmp_path / 'empty'}: 0 items scored; never marked best, not in the grid"]
    assert best(runs) == [] and build_grid(runs).systems == []
    assert not any(line.startswith("*") for line in terminal_report(runs).splitlines())
    # beside a real run, the real one is best even with a lower score
    make_run(tmp_path / "real", theta=0.2, main=0.0)
    make_run(tmp_path / "empty", n_items=0, main=0.5, samples=[])
    runs, _ = load_runs([tmp_path])
    assert [r.path.name for r in best(by_task(runs)["triviaqa"])] == ["real"]
    out = tmp_path / "r.html"
    assert compare_main([str(tmp_path), "--html", str(out)]) == 0
    assert "has 0 items; left out" in out.read_text()


@pytest.mark.parametrize(("metric", "factor"), [("gsm8k_accuracy", 100.0), ("bleu_13a", 1.0), ("spbleu", 1.0),
                                              ("chrf++", 1.0), ("em_lenient_nq", 100.0)])
def test_the_scale_is_percent_for_fractions_only(metric, factor, tmp_path):
    """The grid's scale is the one each metric declared at registration (tasks/metrics/registry.py)."""
    from adafuse.compare.grid import percent_scale, scaled

    assert percent_scale(metric) == factor
    run = load_runs([make_run(tmp_path / "a", metrics={metric: 0.5}, main=0.5)])[0][0]
    assert scaled(run, metric) == 0.5 * factor
