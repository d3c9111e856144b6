"""The RESULTS.md writer (adafuse.compare.results) on synthetic run folders: the grid, averages,
relative gains, bootstrap intervals (item means and corpus metrics), the Markdown and its files."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from adafuse.compare import load_runs
from adafuse.compare.bootstrap import average_replicates
from adafuse.compare.results import (
    build_results,
    find_chromium,
    main,
    make_cell,
    percentile_interval,
)

MODELS = [{"name": "smollm2-135m-instruct"}, {"name": "gemma3-270m"}]
METRIC = {"triviaqa": "em_lenient_triviaqa", "nq": "em_lenient_nq", "gsm8k": "gsm8k_accuracy"}
SYSTEMS = {  # folder name -> decoder config
    "greedy_smol": {"name": "greedy", "model_index": 0, "mode": "cached", "batch_size": 1},
    "greedy_gemma": {"name": "greedy", "model_index": 1, "mode": "cached", "batch_size": 1},
    "adafuse": {"name": "adafuse", "theta_delta": 0.7, "max_words": 3, "num_candidates": 3,
                "weights": None, "mode": "cached", "batch_size": 1},
    "adafuse_theta0": {"name": "adafuse", "theta_delta": 0.0, "max_words": 3, "num_candidates": 3,
                       "weights": None, "mode": "cached", "batch_size": 1},
    "fixed_span_3": {"name": "fixed_span", "span_words": 3, "weights": None, "mode": "cached", "batch_size": 1},
}


def write_run(path: Path, task: str, decoder: dict, scores: list[float], *, responses: list[str] | None = None,
              golds: list | None = None, main_metric: str | None = None, main: float | None = None,
              seconds: float = 1.0, forwards: int = 10, words: int = 2) -> Path:
    """A finished run folder as adafuse.run writes it; the main metric is the mean of `scores`
    unless `main` is given (a corpus metric)."""
    path.mkdir(parents=True, exist_ok=True)
    metric = main_metric or METRIC[task]
    responses = responses or [" answer"] * len(scores)
    golds = golds or [["answer"]] * len(scores)
    samples = [{"index": i, "id": i, "response": responses[i], "gold": golds[i], "scores": {metric: s},
                "words": words, "span_words": [], "uncertain_share": None,
                "cost": {"forwards": forwards}, "seconds": {"decode": seconds}}
               for i, s in enumerate(scores)]
    value = float(np.mean(scores)) if main is None else main
    n = len(scores)
    results = {"status": "complete", "config": {"models": MODELS, "task": {"name": task, "limit": n},
                                                "decoder": decoder, "shard": 0, "num_shards": 1},
               "task": {"name": task, "main_metric": metric}, "main_metric": metric, "main": value,
               "metrics": {metric: value}, "n_items": n, "n_missing": 0,
               "cost": {"forwards": forwards * n, "words": words * n, "decode_seconds": seconds * n,
                        "seconds_per_item": seconds},
               "wall_seconds": seconds * n + 1, "started": "2026-11-27T10:00:00",
               "finished": "2026-11-27T10:05:00", "git": {"commit": "0123456789abcdef", "dirty": False},
               "versions": {"torch": "2.13.0+cpu"}}
    (path / "results.json").write_text(json.dumps(results))
    (path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return path


SCORES = {  # per task and system: per-item 0/1 scores over the same 10 items
    "triviaqa": {"greedy_smol": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],     # 10
                 "greedy_gemma": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],    # 30
                 "adafuse": [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],         # 50
                 "adafuse_theta0": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],  # 20
                 "fixed_span_3": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]},   # 20
    "nq": {"greedy_smol": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],           # 40
           "greedy_gemma": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],          # 100: a constant column
           "adafuse": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],               # 100
           "adafuse_theta0": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],        # 60
           "fixed_span_3": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]},         # 60
}


@pytest.fixture
def table1(tmp_path: Path) -> Path:
    """A Table-1 sweep folder laid out as the preset writes it: <task>/<system>/."""
    root = tmp_path / "table1_embedded"
    for task, systems in SCORES.items():
        for name, scores in systems.items():
            write_run(root / task / name, task, SYSTEMS[name], scores,
                      seconds={"greedy_smol": 1.0, "greedy_gemma": 2.0}.get(name, 6.0))
    return root


def results_of(root: Path, **kwargs):
    runs, notes = load_runs([root])
    assert not notes
    return build_results(runs, **kwargs)


def system(res, label: str):
    return next(s for s in res.systems if s.label == label)


def test_grid_values_averages_best_single_and_gains(table1):
    res = results_of(table1, resamples=300)
    assert res.tasks == ["triviaqa", "nq"]  # Table 1's order, not the alphabet's
    assert [s.label for s in res.systems] == ["smollm2-135m-instruct", "gemma3-270m", "AdaFuse",
                                              "AdaFuse θ_Δ=0", "fixed_span k=3"]
    smol, gemma, ada = (system(res, n) for n in ("smollm2-135m-instruct", "gemma3-270m", "AdaFuse"))
    assert ada.value("triviaqa") == pytest.approx(50) and ada.value("nq") == pytest.approx(100)  # percent
    assert smol.average(res.tasks) == pytest.approx(25) and gemma.average(res.tasks) == pytest.approx(65)
    assert ada.average(res.tasks) == pytest.approx(75)
    assert res.best_single is gemma and res.adafuse is ada
    assert res.gain(ada) == pytest.approx((75 - 65) / 65)
    assert res.gain(ada, "triviaqa") == pytest.approx((50 - 30) / 30)
    assert res.gain(ada, "nq") == pytest.approx(0.0)
    assert res.gain(gemma) is None
    assert smol.seconds_per_item() == pytest.approx(1.0) and ada.forwards_per_word() == pytest.approx(5.0)


def test_a_constant_column_has_a_zero_width_interval(table1):
    res = results_of(table1, resamples=300)
    gemma = system(res, "gemma3-270m")
    assert gemma.cells["nq"].interval == (100.0, 100.0)
    assert system(res, "AdaFuse").cells["nq"].how == "items"


def test_a_zero_one_column_interval_holds_its_mean_within_bounds(table1):
    res = results_of(table1, resamples=1000)
    for s in res.systems:
        for task, cell in s.cells.items():
            low, high = cell.interval
            assert 0.0 <= low <= cell.value <= high <= 100.0, (s.label, task, cell.interval)
    low, high = system(res, "AdaFuse").cells["triviaqa"].interval
    assert high - low > 30  # n = 10 at p = 0.5: wide, as it should be
    avg_low, avg_high = percentile_interval(average_replicates(system(res, "AdaFuse"), res.tasks))
    assert avg_low <= 75 <= avg_high and avg_high - avg_low < high - low  # the average is tighter


def test_intervals_are_deterministic_with_the_seed(table1):
    runs, _ = load_runs([table1 / "triviaqa" / "adafuse"])
    a, b = make_cell(runs[0], 500, seed=7), make_cell(runs[0], 500, seed=7)
    c = make_cell(runs[0], 500, seed=8)
    assert np.array_equal(a.replicates, b.replicates) and a.interval == b.interval
    assert not np.array_equal(a.replicates, c.replicates)


def test_systems_on_the_same_items_are_paired(table1):
    res = results_of(table1, resamples=500)
    ada, gemma = system(res, "AdaFuse"), system(res, "gemma3-270m")
    # on nq both score 1 everywhere: every paired resample differs by exactly 0
    assert percentile_interval(res.paired_difference(ada, "nq")) == (0.0, 0.0)
    # on triviaqa AdaFuse is right wherever gemma is, and on 2 more items: never below 0
    low, high = percentile_interval(res.paired_difference(ada, "triviaqa"))
    assert 0.0 <= low <= 20.0 <= high
    assert gemma.cells["triviaqa"].ids == ada.cells["triviaqa"].ids


def test_items_that_differ_are_not_paired(table1, tmp_path):
    write_run(table1 / "triviaqa" / "adafuse", "triviaqa", SYSTEMS["adafuse"], [1, 0, 1, 0, 1, 0, 1, 0])
    res = results_of(table1, resamples=100)
    assert res.paired_difference(system(res, "AdaFuse"), "triviaqa") is None
    assert any("not all run on the same items" in n for n in res.notes)


def test_corpus_metric_is_rescored_as_a_corpus(tmp_path):
    """FLORES' metric is corpus BLEU (spBLEU, or BLEU-13a offline): a resample is scored as a
    corpus from summed statistics, which must give back the task scorer's own number."""
    from adafuse.tasks import get_task

    task = get_task("flores_en_de")
    docs = task.docs(limit=8)
    golds = [task.golds(d) for d in docs]
    responses = [" " + g[0] if i % 2 else " " + " ".join(g[0].split()[: len(g[0].split()) // 2])
                 for i, g in enumerate(golds)]
    scored = task.score(responses, docs)
    run_dir = write_run(tmp_path / "flores_en_de" / "adafuse", "flores_en_de", SYSTEMS["adafuse"],
                        [p.get(scored.main_metric, 0.0) for p in scored.per_item], responses=responses,
                        golds=[d["answer"] for d in docs], main_metric=scored.main_metric, main=scored.main)
    runs, _ = load_runs([run_dir])
    cell = make_cell(runs[0], 400, seed=0)
    assert cell.how == "corpus"
    assert cell.value == pytest.approx(scored.main)  # BLEU is already on a 0-100 scale
    low, high = cell.interval
    assert 0.0 <= low <= cell.value <= high <= 100.0 and high > low
    # the sentence scores' mean is not the corpus number: it is not what was resampled
    assert abs(np.mean([p.get(scored.main_metric, 0.0) for p in scored.per_item]) - scored.main) > 1e-6


def test_results_md_from_the_command(table1, tmp_path, capsys):
    out = tmp_path / "out" / "RESULTS.md"
    code = main([str(table1), "--out", str(out), "--resamples", "200", "--no-png"])
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    for heading in ("## Systems × tasks", "## AdaFuse against the best single model", "## Cost",
                    "## Report and plot", "## Reading the numbers"):
        assert heading in text
    assert "| **AdaFuse** | 50.0 [" in text and "| gemma3-270m (best single) | 30.0 [" in text
    assert "+15.4% [" in text  # AdaFuse's average gain: (75 - 65) / 65
    assert "identical responses on 20 of 20 items" in text  # θ_Δ=0 and fixed_span k=3 (same answers here)
    assert "(results/report.html)" in text and (out.parent / "results" / "report.html").is_file()
    assert "Highest average over all 2 tasks: AdaFuse" in text
    # the command it names holds every option that changes it, and writes the same numbers again
    # (the date line aside)
    named = re.search(r"Written by `([^`]+)`", text).group(1)
    assert named == f"python -m adafuse.compare.results {table1} --out {out} --resamples 200 --no-png"
    first = [line for line in text.splitlines() if not line.startswith("Written by")]
    out.unlink()
    assert main(shlex.split(named)[3:]) == 0
    assert [line for line in out.read_text().splitlines() if not line.startswith("Written by")] == first


def test_no_runs_is_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "R.md")]) == 2
    assert "no task runs" in capsys.readouterr().err and not (tmp_path / "R.md").exists()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_png_of_the_main_plot(table1, tmp_path):
    out = tmp_path / "RESULTS.md"
    assert main([str(table1), "--out", str(out), "--resamples", "50", "--no-html"]) == 0
    png = tmp_path / "results" / "main_plot.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![average score vs seconds per item](results/main_plot.png)" in out.read_text()


def test_the_reading_in_words_is_kept_and_marked_stale_when_the_numbers_change(table1, tmp_path):
    out = tmp_path / "RESULTS.md"
    args = [str(table1), "--out", str(out), "--resamples", "50", "--no-png", "--no-html"]
    assert main(args) == 0
    text = out.read_text()
    assert "No reading in words yet" in text
    digest = re.search(r"Grid digest: `([0-9a-f]{12})`", text).group(1)
    (tmp_path / "results").mkdir(exist_ok=True)
    (tmp_path / "results" / "reading.md").write_text(f"<!-- grid {digest} -->\nAdaFuse leads on both tasks.\n")
    assert main(args) == 0
    text = out.read_text()
    assert "### In words" in text and "AdaFuse leads on both tasks." in text
    assert "Stale" not in text and "<!-- grid" not in text
    # other numbers (fewer resamples move the intervals): the same words are marked stale
    assert main([*args[:-4], "--resamples", "20", "--no-png", "--no-html"]) == 0
    text = out.read_text()
    assert "**Stale:**" in text and f"grid {digest}" in text and "AdaFuse leads on both tasks." in text


def test_a_missing_reading_file_is_one_error_line(table1, tmp_path, capsys):
    code = main([str(table1), "--out", str(tmp_path / "R.md"), "--reading", str(tmp_path / "nope.md")])
    assert code == 2 and "--reading" in capsys.readouterr().err and not (tmp_path / "R.md").exists()


def test_the_cost_section_says_where_the_shared_prefix_is_counted(table1, tmp_path):
    out = tmp_path / "RESULTS.md"
    args = [str(table1), "--out", str(out), "--resamples", "20", "--no-png", "--no-html"]
    assert main(args) == 0
    assert "each job's first item carries its few-shot prefill" in out.read_text()  # older runs
    adafuse_run = table1 / "triviaqa" / "adafuse" / "results.json"
    data = json.loads(adafuse_run.read_text())
    data["cost"]["shared_prefix"] = {"smollm2-135m-instruct": {"forwards": 1, "tokens_fed": 30, "seconds": 0.1}}
    adafuse_run.write_text(json.dumps(data))
    assert main(args) == 0
    assert ("counted once per run, in forwards, as cost.shared_prefix, in 1 runs; in the other 9 each "
            "job's first item carries it") in out.read_text()


def test_an_out_folder_or_unwritable_out_is_one_error_line(table1, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for out, start in ((tmp_path, f"error: --out {tmp_path}: is a folder"),
                       (blocker / "RESULTS.md", "error: cannot write ")):
        assert main([str(table1), "--out", str(out), "--resamples", "5", "--no-png", "--no-html"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(start), err
