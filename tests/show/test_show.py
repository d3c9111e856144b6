"""`python -m adafuse.show` on run folders of AdaFuse, the baselines, a single model, a run
stopped early and folders an older version wrote (the tiny models; conftest.py builds them)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from run_helpers import REPO, read_jsonl

from adafuse import show
from adafuse.compare.load import load_runs
from adafuse.tasks import get_task
from adafuse.traceview import short_names


def run_show(capsys, *argv: str) -> tuple[int, str, str]:
    code = show.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *argv) -> dict:
    code, out, err = run_show(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def fits(text: str) -> None:
    """Every line fits 100 columns but the run folder's path, which is never cut."""
    too_wide = [line for line in text.splitlines() if len(line) > 100 and not line.startswith("run ")]
    assert not too_wide, too_wide


def test_adafuse_run_lists_items_then_shows_every_round(runs, capsys):
    run = runs["adafuse"]
    results = json.loads((run / "results.json").read_text())
    names = [m["name"] for m in results["models"]]
    labels = short_names(names)
    samples = read_jsonl(run / "samples.jsonl")
    code, out, err = run_show(capsys, run)
    assert code == 0, err
    fits(out)
    assert "status    complete: 2 of 2 items" in out
    assert "decoder   adafuse: theta_delta=" in out and all(label in out for label in labels)
    content = as_json(capsys, run)
    assert [i["item"] for i in content["items"]] == [0, 1]
    assert [i["response"] for i in content["items"]] == [s["response"] for s in samples]
    docs = get_task("triviaqa").docs(limit=2)
    for index, (sample, doc) in enumerate(zip(samples, docs)):
        code, out, _ = run_show(capsys, run, f"item={index}")
        assert code == 0
        fits(out)
        assert f"question  {doc['question']}" in out and repr(sample["response"]) in out
        detail = as_json(capsys, run, f"item={index}")["item"]
        rows = [r for r in read_jsonl(run / "trace.jsonl") if r["item"] == index]
        assert len(detail["rounds_detail"]) == len(rows) == sample["rounds"] > 0
        assert out.count("\nround ") == len(rows)
        for view, row in zip(detail["rounds_detail"], rows):
            assert [m["margins"] for m in view["models"]] == row["margins"]
            assert [m["explored"] for m in view["models"]] == row["explored"]
            by_number = {p["number"]: p for p in view["proposals"]}
            assert len(by_number) == len(row["proposals"])
            for k, p in enumerate(row["proposals"]):
                shown = by_number[k]
                assert shown["proposers"] == [labels[names.index(n)] for n in p["proposer_names"]]
                assert shown["nll"] == dict(zip(labels, p["nll"])) and shown["score"] == p["score"]
                assert shown["winner"] == (k == row["winner"])
            scores = [p["score"] for p in view["proposals"]]
            assert scores == sorted(scores)  # best first
    # one round alone
    detail = as_json(capsys, run, "item=0", "round=0")["item"]
    assert [v["round"] for v in detail["rounds_detail"]] == [0]


def test_each_baseline_shows_its_rounds_in_its_own_words(runs, capsys):
    words = {"fixed_span": "span of", "union_topk": "top ", "rerank": "its whole answer"}
    for job, phrase in words.items():
        code, out, err = run_show(capsys, runs[job], "item=0")
        assert code == 0, err
        fits(out)
        assert f"decoder   {job}" in out and phrase in out
        assert out.count("\n  * ") == json.loads((runs[job] / "samples.jsonl").read_text()
                                                 .splitlines()[0])["rounds"]


def test_single_model_run_says_it_has_no_rounds(runs, capsys):
    for job, index in (("greedy_0", 0), ("greedy_1", 1)):
        results = json.loads((runs[job] / "results.json").read_text())
        name = results["config"]["models"][index]["name"]
        code, out, _ = run_show(capsys, runs[job], "item=1")
        assert code == 0
        assert f"no rounds: greedy decodes with {name} alone and keeps no trace" in out
        assert as_json(capsys, runs[job], "item=1")["item"]["rounds_detail"] == []


def test_partial_run(runs, capsys):
    code, out, _ = run_show(capsys, runs["partial"])
    assert code == 0
    assert "status    partial (running): 1 of 2 items finished" in out
    first = (runs["partial"] / "samples.jsonl").read_text().splitlines()[0]  # then a torn line
    score = json.loads(first)["main_score"]
    assert (f"metric    em_lenient_triviaqa = {score * 100:.1f} on 0-100 (the task's metrics over the 1 "
            "finished items)") in out  # --json: as stored, 0-1
    assert as_json(capsys, runs["partial"])["run"]["metric"]["value"] == score
    assert [i["item"] for i in as_json(capsys, runs["partial"])["items"]] == [0]
    code, out, err = run_show(capsys, runs["partial"], "item=1")
    assert code == 2 and out == ""
    assert err.strip() == "error: item=1 is not among this run's finished items; items: 0..0"


def test_older_folders_read_as_the_new_ones(runs, old_runs, capsys):
    new = as_json(capsys, runs["adafuse"], "item=1")["item"]
    old = as_json(capsys, runs["stripped"], "item=1")["item"]
    assert old["rounds_detail"] == new["rounds_detail"] and old["models"] is None
    assert old["question_from"] == "prompt's last block" and new["question"] in old["question"]
    # the Table-1 tarball: written before samples held the question and rows the names
    adafuse = old_runs["adafuse"]
    samples = read_jsonl(adafuse / "samples.jsonl")
    assert "question" not in samples[0] and "models" not in read_jsonl(adafuse / "trace.jsonl")[0]
    code, out, _ = run_show(capsys, adafuse, "item=0")
    assert code == 0
    fits(out)
    assert "models    smollm2 = smollm2-135m-instruct, gemma3 = gemma3-270m" in out
    assert "metric    em_lenient_triviaqa = 16.7 on 0-100 (all items)" in out  # stored: 0.1667
    assert "prompt    …Question: Which Lloyd Webber musical" in out
    assert out.count("\nround ") == samples[0]["rounds"]
    code, out, _ = run_show(capsys, old_runs["greedy_smol"], "item=0")
    assert code == 0 and "no rounds: greedy decodes with smollm2-135m-instruct alone" in out


def test_prompt_mode_folder_and_its_round_lines(adafuse_run, tmp_path, capsys):
    res = adafuse_run("logger=none", 'prompt="Question: Who wrote Emma?\\nAnswer:"',
                      f"hydra.run.dir={tmp_path}")
    assert res.code == 0, res.err
    (sample,) = read_jsonl(tmp_path / "samples.jsonl")
    # what `make run` prints a round: the models by name, what each did, who proposed the winner
    lines = [ln for ln in res.out.splitlines() if ln.startswith("round ")]
    assert len(lines) == min(sample["rounds"], 12) > 0
    assert all(re.match(r"round +\d+: tiny-llama (explored \d+|confident, \d+ words?) \(Δ [\d.]+\), "
                        r"tiny-gemma .*; \d+ proposals?; winner .* from tiny-", ln) for ln in lines), lines
    code, out, _ = run_show(capsys, tmp_path, "item=0")
    assert code == 0
    assert "task      prompt" in out and "question  Question: Who wrote Emma?⏎ Answer:" in out
    assert out.count("\nround ") == sample["rounds"]


def test_compare_still_reads_both_forms(runs, old_runs):
    loaded, notes = load_runs([runs["adafuse"], runs["stripped"], old_runs["adafuse"]])
    assert len(loaded) == 3, notes
    assert all(run.trace for run in loaded)


@pytest.mark.parametrize("argv, message", [
    (["{missing}"], "no such folder"),
    (["{run}", "item=7"], "item=7 is not among this run's finished items; items: 0..1"),
    (["{run}", "item=two"], "item='two' is not an integer"),
    (["{run}", "item=0", "round=99"], "round=99 is not a round of item 0"),
    (["{run}", "round=0"], "round= needs item="),
    (["{run}", "items=0"], "unknown argument 'items=0'"),
    (["{run}", "--wide"], "unknown option '--wide'"),
    ([], "give one run folder (got 0)"),
    (["{sweep}"], "no results.json, so not a run folder; run folders below it: 0_sweep_decoder="),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, argv, message):
    where = {"missing": tmp_path / "nope", "run": runs["adafuse"], "sweep": runs["adafuse"].parent}
    code, out, err = run_show(capsys, *(a.format(**where) for a in argv))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err


def test_the_command_line(runs):
    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "adafuse.show", *map(str, argv)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    helped = cli("--help")
    assert helped.returncode == 0 and "\nRead one run folder" in helped.stdout
    assert helped.stdout.startswith("usage: python -m adafuse.show RUN_DIR [item=N] [round=K] [--json]")
    bad = cli(runs["adafuse"], "item=-1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    shown = cli(runs["adafuse"], "item=0")
    assert shown.returncode == 0 and "round 0 · " in shown.stdout
