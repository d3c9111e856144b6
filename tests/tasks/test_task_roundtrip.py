"""Per task: bundled data -> prompts -> hand-made outputs -> scores."""

import pytest

from adafuse.tasks import get_task


def _roundtrip(name, outputs):
    task = get_task(name)
    docs = task.docs(limit=len(outputs))
    prompts = [task.prompt(d) for d in docs]
    assert all(p.startswith(task.shared_prefix) for p in prompts)
    result = task.score(outputs, docs)
    assert len(result.per_item) == len(docs) and result.n_items == len(docs)
    return docs, result


@pytest.mark.parametrize("name", ["triviaqa", "nq", "squad"])
def test_short_answer_qa(name):
    task = get_task(name)
    docs = task.docs(limit=4)
    golds = [task.golds(d)[0] for d in docs]
    # right, right after the stop string, wrong, missing
    outputs = [f" {golds[0]}", f" {golds[1]}.\nQuestion: something else", " zzzz qqqq", None]
    _, result = _roundtrip(name, outputs)
    assert result.metrics[task.main_metric] == pytest.approx(0.5)
    assert [item[task.main_metric] for item in result.per_item] == [1.0, 1.0, 0.0, 0.0]
    assert result.extracted[1] == f"{golds[1]}." and result.extracted[3] is None
    assert result.n_missing == 1 and result.main == result.metrics[task.main_metric]


def test_squad_reports_standard_em_and_f1():
    docs, result = _roundtrip("squad", [" France", " the Normans", " southern Italy"])
    assert set(result.metrics) == {"em_lenient_squad", "em_lenient_squad_spaced", "em", "f1"}
    assert result.per_item[0] == {"em_lenient_squad": 1.0, "em_lenient_squad_spaced": 1.0, "em": 1.0, "f1": 1.0}


def test_gsm8k():
    task = get_task("gsm8k")
    docs = task.docs(limit=3)
    answer = docs[0]["answer"].rsplit("answer is", 1)[1].strip()
    outputs = [
        f"Some steps.\nThe answer is \\boxed{{{answer}}}\n\n\nQuestion: more",
        "The answer is \\boxed{123456789}",
        None,
    ]
    _, result = _roundtrip("gsm8k", outputs)
    assert result.per_item[0] == {"gsm8k_accuracy": 1.0, "gsm8k_accuracy_strict": 1.0}
    assert result.metrics["gsm8k_accuracy"] == pytest.approx(1 / 3)
    assert result.extracted[0] == answer


@pytest.mark.parametrize("name", ["flores_en_de", "flores_de_en", "flores_en_ro"])
def test_flores_offline(name, offline_spm):
    task = get_task(name)
    docs = task.docs(limit=4)
    outputs = [f" {d['answer']}\nmore" for d in docs[:3]] + [""]
    _, result = _roundtrip(name, outputs)
    assert "spbleu" not in result.metrics
    assert result.main_metric == "bleu_13a"
    assert result.metrics["bleu_13a_published"] == pytest.approx(100.0)
    assert 0.0 < result.metrics["bleu_13a"] < 100.0


def test_flores_with_spm(tiny_spm):
    task = get_task("flores_en_de")
    docs = task.docs(limit=3)
    result = task.score([d["answer"] for d in docs], docs)
    assert result.main_metric == "spbleu" and result.main == pytest.approx(100.0)
    assert set(result.metrics) == {"spbleu", "spbleu_published"}
