"""`python -m adafuse.score`: re-scoring a predictions file; bad input is one line, exit 2."""

import json
import subprocess
import sys

import pytest

from adafuse.score import main
from adafuse.tasks import get_task


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
    ],
)
def test_bad_prediction_files(tmp_path, capsys, lines, message):
    path = tmp_path / "preds.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rc, _, err = _run(capsys, "task=nq", f"predictions={path}")
    assert rc == 2 and message in err and err.count("\n") == 1


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
