"""`python -m adafuse.score`: re-scoring a predictions file (matched to a task's items, or with
its own gold, or a run's samples.jsonl) and run folders; bad input is one line, exit 2."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from adafuse.score import main
from adafuse.tasks import get_task

REPO = Path(__file__).resolve().parents[2]
TABLE1_RUNS = REPO / "results" / "table1_embedded_runs.tar.gz"


def _preds(tmp_path, rows, name="preds.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_scores_by_id_and_question(tmp_path, capsys):
    docs = get_task("triviaqa").docs(limit=3)
    path = _preds(tmp_path, [
        {"id": docs[0]["id"], "pred": " Sunset Boulevard"},
        {"question": docs[1]["question"], "pred": "Campbell-Bannerman\nQuestion: x"},
        {"id": docs[2]["id"], "pred": "ABBA"},
        {"id": 10, "pred": "past the limit: skipped"},
    ])
    per_item = tmp_path / "items.jsonl"
    rc, out, err = _run(capsys, "task=triviaqa", f"predictions={path}", "limit=3", f"per_item={per_item}")
    assert rc == 0, err
    report = json.loads(out)
    assert report["metrics"]["em_lenient_triviaqa"] == pytest.approx(2 / 3)
    assert report["n_items"] == 3 and report["n_missing"] == 0
    items = [json.loads(line) for line in per_item.read_text().splitlines()]
    assert items[1]["extracted"] == "Campbell-Bannerman" and items[1]["scores"] == {"em_lenient_triviaqa": 1.0}


def test_missing_items_count_as_wrong(tmp_path, capsys):
    docs = get_task("gsm8k").docs(limit=4)
    answer = docs[0]["answer"].rsplit("answer is", 1)[1].strip()
    path = _preds(tmp_path, [{"id": 0, "pred": f"\\boxed{{{answer}}}"}])
    rc, out, _ = _run(capsys, "task=gsm8k", f"predictions={path}", "limit=4")
    report = json.loads(out)
    assert rc == 0 and report["metrics"]["gsm8k_accuracy"] == 0.25 and report["n_missing"] == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["task=triviaqa", "predictions=x.jsonl", "limt=3"], "unknown key 'limt'; allowed keys:"),
        (["task=triviaqa"], "missing predictions="),
        (["task=trivia", "predictions=PRED"], "unknown task 'trivia'; known tasks:"),
        (["task=triviaqa", "predictions=NOFILE"], "predictions file not found"),
        (["task=triviaqa", "predictions=PRED", "limit=ten"], "limit must be a non-negative integer"),
        (["triviaqa"], "expected key=value"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, message):
    path = _preds(tmp_path, [{"id": 0, "pred": "x"}])
    args = [a.replace("PRED", str(path)).replace("NOFILE", str(tmp_path / "none.jsonl")) for a in args]
    rc, out, err = _run(capsys, *args)
    assert rc == 2 and out == ""
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"id": 0, "pred": "x"}', '{"id": 1, "pred": '], "preds.jsonl:2: malformed JSON"),
        (['{"id": 0}'], "preds.jsonl:1: missing field 'pred'"),
        (['{"pred": "x"}'], "preds.jsonl:1: needs the item's 'id' or 'question'"),
        (['{"question": "Not a question of the task", "pred": "x"}'], "preds.jsonl:1: question text matches no item"),
        (['{"id": 0, "pred": "x"}', '{"id": "0", "pred": "y"}'], "preds.jsonl:2: second prediction for item id 0"),
        (['{"id": 0, "pred": 3}'], "'pred' must be a string or null"),
        ([], "preds.jsonl: no predictions in it (the file is empty)"),
        (["", "   "], "no predictions in it (the file is empty)"),
        (["not json"], "preds.jsonl:1: malformed JSON"),
        (['["a list"]'], "preds.jsonl:1: expected a JSON object, got list"),
        (['{"question": ["who", "what"], "pred": "x"}'], "preds.jsonl:1: 'question' must be a string, got list"),
        (['{"question": "q", "pred": "x", "answer": 42}'],
         "preds.jsonl:1: 'answer' must be a string or a non-empty list of strings, got int"),
        (['{"question": "q", "pred": "x", "answer": ["a", 2]}'], "'answer' must be a string or a non-empty list"),
        (['{"question": "q", "pred": "x", "answer": []}'], "'answer' must be a string or a non-empty list"),
        (['{"id": 0, "response": "x", "gold": {"a": 1}}'], "'gold' must be a string or a non-empty list"),
        (['{"id": [0], "pred": "x"}'], "'id' must be a string or an integer, got list"),
        (['{"id": 0, "pred": "x\\ud800"}'], "preds.jsonl:1: 'pred' holds an unpaired surrogate (\\ud800)"),
        (['{"id": 0, "pred": "x", "answer": ["\\udfffa"]}'], "preds.jsonl:1: 'answer.0' holds an unpaired surrogate"),
        (['{"question": "q", "pred": "x", "answer": "a"}', '{"question": "r", "pred": "y"}'],
         "preds.jsonl:2: no 'answer' while line 1 has one"),
    ],
)
def test_bad_prediction_files(tmp_path, capsys, lines, message):
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    rc, out, err = _run(capsys, "task=nq", f"predictions={path}")
    assert rc == 2 and out == "" and message in err and err.count("\n") == 1


def test_own_gold_needs_no_task_data(tmp_path, capsys):
    # the paper's format; the source named is a file that does not exist, so reading the task's
    # data would fail: the golds come from the lines
    path = _preds(tmp_path, [
        {"question": "how many soldiers?", "pred": "three hundred soldiers", "answer": ["300soldiers"]},
        {"question": "how many soldiers?", "pred": "300 soldiers", "answer": ["three hundred soldiers"]},
        {"question": "who?", "pred": "The Beatles", "answer": "beatle"},
        {"question": "which treaty?", "pred": "I think it is Treaty of Versailles negotiations",
         "answer": ["Treaty of Versailles negotiations"]},
    ])
    per_item = tmp_path / "items.jsonl"
    rc, out, err = _run(capsys, "task=nq", f"predictions={path}", f"source={tmp_path / 'absent.jsonl'}",
                        f"per_item={per_item}")
    assert rc == 0, err
    report = json.loads(out)
    assert report["gold"] == "file" and report["n_items"] == 4 and report["n_predicted"] == 4
    assert report["metrics"]["em_lenient_nq"] == pytest.approx(2 / 4)  # glued runs; slack 1
    items = [json.loads(line) for line in per_item.read_text().splitlines()]
    assert [i["scores"]["em_lenient_nq"] for i in items] == [1.0, 0.0, 1.0, 0.0]
    assert [i["scores"]["em_lenient_nq_spaced"] for i in items] == [0.0, 1.0, 1.0, 0.0]
    assert items[2]["line"] == 3 and items[2]["gold"] == "beatle"
    rc, out, _ = _run(capsys, "task=squad", f"predictions={path}")  # the same file, SQuAD's rules
    assert rc == 0 and json.loads(out)["metrics"]["em_lenient_squad"] == pytest.approx(2 / 4)  # slack 5


def test_partial_file_counts_missing_as_wrong_unless_asked(tmp_path, capsys):
    rows = [{"question": f"q{i}", "pred": "Paris" if i < 2 else None, "answer": "Paris"} for i in range(4)]
    rows[3].pop("pred")  # a line without a prediction at all
    path = _preds(tmp_path, rows)
    rc, out, err = _run(capsys, "task=triviaqa", f"predictions={path}")
    report = json.loads(out)
    assert rc == 0 and report["metrics"]["em_lenient_triviaqa"] == 0.5 and report["missing"] == "counted as wrong"
    assert (report["n_items"], report["n_predicted"], report["n_without_prediction"]) == (4, 2, 2)
    assert err.splitlines()[0] == ("note: 2 of 4 items have a prediction; the other 2 are counted as wrong "
                                   "(only_predicted=true scores the 2 alone)")
    assert err.splitlines()[2].split() == ["em_lenient_triviaqa", "50.0", "(main)"]  # 0-100
    rc, out, err = _run(capsys, "task=triviaqa", f"predictions={path}", "only_predicted=true")
    report = json.loads(out)
    assert rc == 0 and report["metrics"]["em_lenient_triviaqa"] == 1.0 and report["n_items"] == 2
    assert report["n_predicted"] == 2 and report["missing"] == "left out"
    rc, _, err = _run(capsys, "task=triviaqa", f"predictions={path}", "only_predicted=yes")
    assert rc == 2 and "only_predicted must be true or false, got 'yes'" in err


def test_partial_file_against_the_task_items(tmp_path, capsys):
    docs = get_task("triviaqa").docs(limit=4)
    path = _preds(tmp_path, [{"id": docs[0]["id"], "pred": docs[0]["answer"][0]}])
    rc, out, _ = _run(capsys, "task=triviaqa", f"predictions={path}", "limit=4", "only_predicted=true")
    report = json.loads(out)
    assert rc == 0 and report["gold"] == "task" and report["n_items"] == 1
    assert report["metrics"]["em_lenient_triviaqa"] == 1.0 and report["n_without_prediction"] == 3


def test_a_file_with_gold_can_be_matched_to_the_task_items(tmp_path, capsys):
    docs = get_task("triviaqa").docs(limit=2)
    # a run's samples.jsonl line: the raw output in `response`, the gold under `gold`
    path = _preds(tmp_path, [{"id": docs[1]["id"], "response": docs[1]["answer"][0], "gold": "not this"}])
    rc, out, _ = _run(capsys, "task=triviaqa", f"predictions={path}", "limit=2", "gold=task")
    report = json.loads(out)
    assert rc == 0 and report["gold"] == "task" and report["metrics"]["em_lenient_triviaqa"] == 0.5
    rc, out, _ = _run(capsys, "task=triviaqa", f"predictions={path}")  # its own gold: wrong
    assert rc == 0 and json.loads(out)["metrics"]["em_lenient_triviaqa"] == 0.0
    rc, _, err = _run(capsys, "task=triviaqa", f"predictions={path}", "gold=mine")
    assert rc == 2 and "gold must be file or task, got 'mine'" in err


def test_help_prints_usage(capsys):
    rc, out, err = _run(capsys, "--help")
    assert rc == 0 and err == "" and out.startswith("usage: python -m adafuse.score task=NAME")
    assert "\nRe-score predictions" in out and "only_predicted=true" in out


def _table1_runs(tmp_path, tasks):
    """The Table-1 run folders of `tasks`, extracted from the tarball in results/."""
    with tarfile.open(TABLE1_RUNS) as tar:
        members = [m for m in tar.getmembers() if m.name.split("/")[1:2] and m.name.split("/")[1] in tasks]
        tar.extractall(tmp_path, members=members, filter="data")
    return sorted(p.parent for p in (tmp_path / "table1_embedded").glob("*/*/results.json"))


def test_rescoring_a_runs_samples_gives_its_own_metrics(tmp_path, capsys, offline_spm):
    # offline_spm: the FLORES runs were scored where sacrebleu's SPM model could not be had
    # the tasks whose rules have not changed since these runs were scored
    runs = _table1_runs(tmp_path, {"triviaqa", "gsm8k", "flores_en_de"})
    assert len(runs) == 33
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        rc, out, err = _run(capsys, f"task={results['task']['name']}", f"predictions={run / 'samples.jsonl'}")
        assert rc == 0, err
        report = json.loads(out)
        assert report["metrics"] == results["metrics"], run  # exactly, every metric
        assert report["n_items"] == results["n_items"] and report["main_metric"] == results["main_metric"]


def test_rescore_rewrites_run_folders_with_the_current_rules(tmp_path, capsys):
    runs = _table1_runs(tmp_path, {"squad", "triviaqa"})
    before = {r: json.loads((r / "results.json").read_text()) for r in runs}
    prompt_run = tmp_path / "table1_embedded" / "prompt"  # prompt mode: no task, nothing to score
    prompt_run.mkdir()
    (prompt_run / "results.json").write_text(json.dumps(
        {"status": "complete", "task": {"name": "prompt"}, "config": {"task": None}, "metrics": {}}))
    rc, out, err = _run(capsys, f"rescore={tmp_path / 'table1_embedded'}")
    assert rc == 0, err
    report = {Path(row["run"]): row for row in json.loads(out)}
    assert set(report) == {*runs, prompt_run} and report[prompt_run]["skipped"].startswith("prompt mode")
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        assert results["rescored"]["previous"]["metrics"] == before[run]["metrics"]
        main = results["main_metric"]
        assert results["main"] == pytest.approx(sum(s["main_score"] for s in samples) / len(samples))
        assert all(s["scores"][main] == s["main_score"] for s in samples)
        # re-scoring the rewritten samples gives the rewritten metrics
        rc, out, _ = _run(capsys, f"task={results['task']['name']}", f"predictions={run / 'samples.jsonl'}")
        assert json.loads(out)["metrics"] == results["metrics"]
        if run.parts[-2] == "triviaqa":
            assert results["metrics"] == before[run]["metrics"]
        else:
            assert "em_lenient_squad_spaced" in results["metrics"] and results["task"]["version"] == 2
    # the trace and the costs are left alone
    assert {r: json.loads((r / "results.json").read_text())["cost"] for r in runs} == {r: before[r]["cost"] for r in runs}
    rc, _, err = _run(capsys, f"rescore={tmp_path / 'none'}")
    assert rc == 2 and "rescore: no such folder" in err


def test_module_entry_point(tmp_path):
    path = _preds(tmp_path, [{"id": 0, "pred": "2002"}])
    proc = subprocess.run(
        [sys.executable, "-m", "adafuse.score", "task=nq", f"predictions={path}", "limit=1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"] == {"em_lenient_nq": 1.0, "em_lenient_nq_spaced": 1.0}
    bad = subprocess.run([sys.executable, "-m", "adafuse.score", "task=nq"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: missing predictions=")
    helped = subprocess.run([sys.executable, "-m", "adafuse.score", "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m adafuse.score")
    assert "\nRe-score predictions" in helped.stdout and helped.stderr == ""


def test_rescore_never_drops_rewrites_or_cuts_items(tmp_path, capsys):
    """issue 31.3: a finished run whose samples.jsonl lost a line, or ends in a partial one,
    or holds a damaged line, is skipped with a note naming the file; its files stay byte for
    byte, and the other runs are rescored."""
    import tarfile

    with tarfile.open(REPO / "results" / "table1_embedded_runs.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("table1_embedded/triviaqa/")]
        tar.extractall(tmp_path, members=members, filter="data")
    root = tmp_path / "table1_embedded" / "triviaqa"
    lines = {name: (root / name / "samples.jsonl").read_bytes() for name in ("adafuse", "rerank", "union_topk")}
    (root / "adafuse" / "samples.jsonl").write_bytes(b"".join(lines["adafuse"].splitlines(True)[1:]))
    (root / "rerank" / "samples.jsonl").write_bytes(lines["rerank"] + b'{"id": 99, "resp')
    (root / "union_topk" / "samples.jsonl").write_bytes(
        lines["union_topk"].replace(b"\n", b"\nnot json\n", 1))
    damaged = {name: {f: (root / name / f).read_bytes() for f in ("samples.jsonl", "results.json")}
               for name in lines}
    rc, out, err = _run(capsys, f"rescore={root}")
    assert rc == 0, err
    skipped = {Path(e["run"]).name: e["skipped"] for e in json.loads(out) if "skipped" in e}
    assert set(skipped) == set(lines)
    assert "holds 29 items, results.json counts 30" in skipped["adafuse"]
    assert "last line is cut short" in skipped["rerank"]
    assert "samples.jsonl:2" in skipped["union_topk"]
    for name, files in damaged.items():
        for file, data in files.items():
            assert (root / name / file).read_bytes() == data, (name, file)
        assert f"note: {root / name}:" in err
    assert any("after" in e for e in json.loads(out))  # the undamaged runs were rescored


def test_the_printed_report_is_on_0_100_and_the_json_as_stored(tmp_path, capsys):
    """stderr: each metric on compare's 0-100 scale, the main one first; stdout: the JSON with
    the numbers as results.json keeps them (fractions)."""
    path = _preds(tmp_path, [{"question": "q1", "pred": "Paris", "answer": "Paris"},
                             {"question": "q2", "pred": "Rome", "answer": "Madrid"},
                             {"question": "q3", "pred": "Bonn", "answer": "Bonn"}])
    rc, out, err = _run(capsys, "task=squad", f"predictions={path}")
    assert rc == 0 and json.loads(out)["metrics"]["em_lenient_squad"] == pytest.approx(2 / 3)
    lines = err.splitlines()
    assert lines[0] == "squad: 3 items scored"
    assert lines[1].split() == ["em_lenient_squad", "66.7", "(main)"]
    assert {line.split()[0]: line.split()[1] for line in lines[2:-1]} == {
        "em": "66.7", "em_lenient_squad_spaced": "66.7", "f1": "66.7"}
    assert lines[-1].startswith("on 0-100")


def test_rescore_prints_each_runs_main_metric_on_0_100(tmp_path, capsys):
    """A BLEU run (already 0-100) and an accuracy run (a fraction) side by side, on one scale."""
    with tarfile.open(TABLE1_RUNS) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "table1_embedded"
    keep = {root / "flores_en_de" / "rerank", root / "triviaqa" / "rerank"}
    for run in root.glob("*/*"):
        if run.is_dir() and run not in keep:
            import shutil

            shutil.rmtree(run)
    rc, out, err = _run(capsys, f"rescore={root}")
    assert rc == 0
    after = {Path(e["run"]).parent.name: e["after"] for e in json.loads(out)}
    printed = dict(line.split(": ", 1) for line in err.splitlines() if line.startswith(str(root)))
    assert printed[str(root / "flores_en_de" / "rerank")].endswith(f"-> {after['flores_en_de']:.1f}")
    assert printed[str(root / "triviaqa" / "rerank")].endswith(f"-> {after['triviaqa'] * 100:.1f}")
    assert err.splitlines()[-1] == "2 of 2 runs rescored; main metric before -> after, on 0-100"


def test_rescore_notes_wrong_types_and_text_that_is_not_text_and_goes_on(tmp_path, capsys):
    """issue 31.8: a results.json whose fields have other types than a run writes (its config a
    list, its task a name), or a line holding an unpaired surrogate (the JSON escape \\ud800,
    which cannot be written back as UTF-8), is a note naming the file (and field): that run
    is left byte for byte, and the next runs are rescored."""
    with tarfile.open(TABLE1_RUNS) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("table1_embedded/triviaqa/")]
        tar.extractall(tmp_path, members=members, filter="data")
    root = tmp_path / "table1_embedded" / "triviaqa"

    def results(name, *keys, value):
        file = root / name / "results.json"
        data = json.loads(file.read_text())
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
        file.write_text(json.dumps(data))  # the surrogate as its JSON escape, "\ud800"

    results("adafuse", "config", value=[1])
    results("rerank", "task", value="triviaqa")
    results("fixed_span_1", "config", "models", 0, "name", value="m\ud800")
    lines = (root / "union_topk" / "samples.jsonl").read_text().splitlines(True)
    sample = json.loads(lines[1])
    lines[1] = json.dumps({**sample, "response": " a\ud800"}) + "\n"
    (root / "union_topk" / "samples.jsonl").write_text("".join(lines))
    damaged = {name: {f: (root / name / f).read_bytes() for f in ("samples.jsonl", "results.json")}
               for name in ("adafuse", "rerank", "fixed_span_1", "union_topk")}
    rc, out, err = _run(capsys, f"rescore={root}")
    assert rc == 0, err
    assert "Traceback" not in err
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    expected = {"adafuse": "results.json: its config is not a mapping",
                "rerank": "results.json: task is 'triviaqa', not an object",
                "fixed_span_1": "results.json: 'config.models.0.name' holds an unpaired surrogate",
                "union_topk": "samples.jsonl:2: 'response' holds an unpaired surrogate"}
    for name, says in expected.items():
        assert sum(f"{root / name}/{says}" in line for line in notes) == 1, (name, notes)
        for file, data in damaged[name].items():
            assert (root / name / file).read_bytes() == data, (name, file)
    assert len(notes) == len(expected)
    rescored = {Path(e["run"]).name for e in json.loads(out) if "after" in e}
    assert rescored and not rescored & set(expected)  # the others were rescored
