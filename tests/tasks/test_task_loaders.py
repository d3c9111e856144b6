"""Data loaders: local JSONL errors name line and field; Hugging Face ids, mapped or offline."""

import json
import sys
import types
from pathlib import Path

import pytest

from adafuse.tasks import TaskError, get_task


def _write(path: Path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_local_jsonl_source(tmp_path):
    path = _write(tmp_path / "mine.jsonl", [
        json.dumps({"id": "a", "question": "Capital of France?", "answer": ["Paris"]}),
        "",  # blank lines are skipped
        json.dumps({"question": "Two plus two?", "answer": "four"}),
    ])
    task = get_task("triviaqa", source=str(path))
    docs = task.docs()
    assert [d["id"] for d in docs] == ["a", 1]
    assert task.score(["Paris", "4"], docs).metrics == {"em_lenient_triviaqa": 1.0}


def test_malformed_line_names_file_and_line(tmp_path):
    path = _write(tmp_path / "bad.jsonl", [
        json.dumps({"question": "q", "answer": "a"}),
        json.dumps({"question": "q2", "answer": "a"}),
        '{"question": "q3", "answer": ',
    ])
    with pytest.raises(TaskError, match=r"bad\.jsonl:3: malformed JSON"):
        get_task("nq", source=str(path)).docs()


def test_not_an_object(tmp_path):
    path = _write(tmp_path / "list.jsonl", ['["q", "a"]'])
    with pytest.raises(TaskError, match=r"list\.jsonl:1: expected a JSON object, got list"):
        get_task("nq", source=str(path)).docs()


def test_missing_field_names_field_and_file(tmp_path):
    path = _write(tmp_path / "noanswer.jsonl", [json.dumps({"question": "q", "gold": "a"})])
    with pytest.raises(TaskError) as err:
        get_task("nq", source=str(path)).docs()
    assert "missing field 'answer'" in str(err.value) and "noanswer.jsonl:1" in str(err.value)


def test_missing_template_field(tmp_path):
    path = _write(tmp_path / "noq.jsonl", [json.dumps({"text": "q", "answer": "a"})])
    with pytest.raises(TaskError, match="missing field 'question'"):
        get_task("gsm8k", source=str(path)).docs()


def test_duplicate_ids(tmp_path):
    row = json.dumps({"id": 7, "question": "q", "answer": "a"})
    with pytest.raises(TaskError, match="duplicate id 7"):
        get_task("nq", source=str(_write(tmp_path / "dup.jsonl", [row, row]))).docs()


def test_an_id_and_its_string_are_one_id(tmp_path):
    rows = [json.dumps({"id": 1, "question": "q", "answer": "a"}), json.dumps({"id": "1", "question": "r", "answer": "b"})]
    with pytest.raises(TaskError, match="duplicate id '1'"):
        get_task("nq", source=str(_write(tmp_path / "dup.jsonl", rows))).docs()


def test_missing_file_and_unknown_source(tmp_path):
    with pytest.raises(TaskError, match="data file not found"):
        get_task("nq", source=str(tmp_path / "absent.jsonl")).docs()
    with pytest.raises(TaskError, match="unknown source 'hub' for task 'nq'; known sources: bundled, hf"):
        get_task("nq", source="hub")


def _fake_datasets(monkeypatch, tables=None, error=None):
    calls = []

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        if error:
            raise error
        return tables[(name, config, split)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


def test_hf_source_maps_fields(monkeypatch):
    row = {"id": "5733be", "context": "Normandy is in France.", "question": "Where is Normandy?",
           "answers": {"text": ["France", "France"], "answer_start": [15, 15]}}
    calls = _fake_datasets(monkeypatch, {("rajpurkar/squad", "plain_text", "validation"): [row]})
    task = get_task("squad", source="hf")
    (doc,) = task.docs()
    assert calls == [("rajpurkar/squad", "plain_text", "validation")]
    assert doc["id"] == "5733be" and doc["answer"] == ["France", "France"]
    assert doc["question"] == "Normandy is in France. Where is Normandy?"
    assert task.score(["France"], [doc]).metrics["em"] == 1.0


def test_hf_gsm8k_gold_is_rewritten(monkeypatch):
    row = {"question": "2+2?", "answer": "2+2=4\n#### 4"}
    _fake_datasets(monkeypatch, {("openai/gsm8k", "main", "test"): [row]})
    task = get_task("gsm8k", source="hf")
    (doc,) = task.docs()
    assert doc["answer"] == "2+2=4\nThe answer is 4" and doc["id"] == 0
    assert task.score(["\\boxed{4}"], [doc]).metrics["gsm8k_accuracy_strict"] == 1.0


def test_hf_parallel_flores(monkeypatch):
    en = [{"id": 1, "text": "Hello."}, {"id": 2, "text": "Thanks."}]
    de = [{"id": 2, "text": "Danke."}, {"id": 1, "text": "Hallo."}]
    key = "openlanguagedata/flores_plus"
    _fake_datasets(monkeypatch, {(key, "eng_Latn", "devtest"): en, (key, "deu_Latn", "devtest"): de})
    docs = get_task("flores_en_de", source="hf").docs()
    assert docs == [{"id": 1, "question": "Hello.", "answer": "Hallo."},
                    {"id": 2, "question": "Thanks.", "answer": "Danke."}]


def test_hf_offline_is_one_clear_line(monkeypatch):
    _fake_datasets(monkeypatch, error=ConnectionError("Couldn't reach 'mandarjoshi/trivia_qa' on the Hub\nmore"))
    with pytest.raises(TaskError) as err:
        get_task("triviaqa", source="hf").docs()
    msg = str(err.value)
    assert "\n" not in msg and "mandarjoshi/trivia_qa" in msg and "ConnectionError" in msg
    assert "source=bundled" in msg


def test_hf_missing_field(monkeypatch):
    _fake_datasets(monkeypatch, {("google-research-datasets/nq_open", "nq_open", "validation"): [{"question": "q"}]})
    with pytest.raises(TaskError, match="missing field 'answer' in Hugging Face dataset google-research-datasets/nq_open"):
        get_task("nq", source="hf").docs()


@pytest.mark.parametrize("row, says", [
    ('{"question": "q", "answer": 42}', "answer 42 must be a string or a non-empty list of strings"),
    ('{"question": "q", "answer": ["a", 1]}', "must be a string or a non-empty list of strings"),
    ('{"question": "q", "answer": []}', "must be a string or a non-empty list of strings"),
    ('{"question": "q", "answer": null}', "must be a string or a non-empty list of strings"),
    ('{"id": [1], "question": "q", "answer": "a"}', "id [1] must be a string or an integer"),
    ('{"id": true, "question": "q", "answer": "a"}', "id True must be a string or an integer"),
    ('{"question": "bad \\ud800 text", "answer": "a"}', "field 'question' holds text that is not valid Unicode"),
])
def test_items_are_typed_when_read(tmp_path, row, says):
    path = _write(tmp_path / "typed.jsonl", [json.dumps({"question": "fine", "answer": "a"}), row])
    with pytest.raises(TaskError) as err:
        get_task("triviaqa", source=str(path)).docs()
    assert says in str(err.value) and "typed.jsonl, item 1" in str(err.value)
    assert "\n" not in str(err.value)
