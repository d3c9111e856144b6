import json
import re
import sys
import types

import pytest
from compare_helpers import make_run, make_sample

from adafuse.compare.__main__ import main

SECTIONS = ("Systems × tasks (Table 1)", "Metric vs θ_Δ", "Metric vs cost", "Span statistics",
            "All runs", "Disagreements: A vs B")


def test_the_table_is_printed_and_bad_folders_are_one_line_notes(sweep, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    make_run(tmp_path / "stopped", status=None, n_items=8, samples=[])
    assert main([str(sweep), str(tmp_path / "empty"), str(tmp_path / "stopped")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("gsm8k: sorted by gsm8k_accuracy")
    assert err.splitlines() == [f"note: {tmp_path / 'empty'}: no run folders in it; skipped",
                                f"note: {tmp_path / 'stopped'}: not finished, no finished items yet; skipped"]


def test_nothing_to_compare_exits_2(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: no runs to compare"


def test_the_html_report_holds_every_section_and_needs_no_network(sweep, tmp_path, capsys):
    out = tmp_path / "report" / "r.html"
    assert main([str(sweep), "--html", str(out)]) == 0
    page = out.read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in page
    assert page.count("<svg") == 2 + 4 + 4  # θ charts; cost scatters; uncertain shares and spans
    assert page.count('class="front"') >= 4  # each scatter rings its Pareto front
    # nothing fetched: no scripts, stylesheets, images or fonts from elsewhere
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page)
    assert set(re.findall(r"https?://[^\s\"')]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "gemma3-270m (best single)" in page
    assert "+37.5%" in page and "+33.3%" in page  # θ_Δ=1 max_words=3 over it: on triviaqa, on average


def test_pair_picks_the_runs_of_the_disagreement_section(sweep, tmp_path, capsys):
    out = tmp_path / "r.html"
    a = sweep / "triviaqa" / "sweep" / "0_theta_delta=0.0,max_words=1"
    assert main([str(sweep), "--html", str(out), "--pair", str(a), "triviaqa/greedy1"]) == 0
    page = out.read_text()
    assert "0_theta_delta=0.0,max_words=1" in page.split("Disagreements")[1]
    assert main([str(sweep), "--pair", str(a), "greedy1"]) == 2  # two runs end with greedy1
    assert "error: --pair: no run (or several) at greedy1" in capsys.readouterr().err


def test_partial_runs_and_different_tasks_render(tmp_path, capsys):
    make_run(tmp_path / "t", main=0.5)
    make_run(tmp_path / "g", task="gsm8k", metrics={})  # no main metric
    make_run(tmp_path / "p", status=None, n_items=9)  # header only, and two finished items:
    with open(tmp_path / "p" / "samples.jsonl", "w") as fh:
        fh.writelines(json.dumps(make_sample(i, " Paris", ["Paris"], 1.0, [2], 0.5)) + "\n" for i in range(2))
    out = tmp_path / "r.html"
    assert main([str(tmp_path), "--html", str(out)]) == 0
    stdout, err = capsys.readouterr()
    assert "2/9" in stdout and "(partial)" in stdout
    assert "no gsm8k_accuracy in its metrics" in err
    assert "partial, 2 of 9 items" in out.read_text()


def test_wandb_logs_offline_without_a_key(sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert main([str(sweep), "--wandb", "--wandb-dir", str(tmp_path / "wb")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("wandb: 8 systems, 16 runs logged, offline (WANDB_MODE); sync later with: wandb sync ")
    assert list((tmp_path / "wb" / "wandb").glob("offline-run-*"))


def test_a_failing_wandb_is_one_line_and_no_crash(sweep, tmp_path, monkeypatch, capsys):
    def broken_init(**kwargs):
        raise RuntimeError("no network\nmore detail")

    fake = types.SimpleNamespace(init=broken_init, Settings=lambda **kw: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "online")
    assert main([str(sweep), "--wandb", "--wandb-dir", str(tmp_path / "wb")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "wandb: failed (no network); nothing logged"


def test_wandb_tables_flatten_the_config(sweep):
    from adafuse.compare.load import load_runs
    from adafuse.compare.grid import build_grid
    from adafuse.compare.wandb_table import grid_table, runs_table

    runs, _ = load_runs([sweep])
    columns, rows = grid_table(build_grid(runs))
    assert columns[:8] == ["system", "decoder", "theta_delta", "max_words", "num_candidates", "model_set",
                           "models", "sweep"]
    assert columns[-4:] == ["gsm8k", "triviaqa", "avg", "gain_vs_best_single"]
    top = next(row for row in rows if row[0] == "AdaFuse θ_Δ=1")
    assert top[1:5] == ["adafuse", 1.0, 3, 3] and top[7] == "gsm8k/sweep, triviaqa/sweep"
    assert top[-2] == pytest.approx(60.0)  # the grid's 0-100 scale, as RESULTS.md
    columns, rows = runs_table(runs)
    assert len(rows) == 16 and "sweep" in columns
