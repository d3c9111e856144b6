"""The task registry: discovery, unknown names, card checks, docs, the prefix/prompt split."""

import shutil
from pathlib import Path

import pytest

from adafuse.tasks import Task, TaskError, find_tasks_dir, get_task, list_tasks

TASKS = ["flores_de_en", "flores_en_de", "flores_en_ro", "gsm8k", "nq", "squad", "triviaqa"]
REPO = Path(__file__).resolve().parents[2]


def test_list_tasks():
    assert list_tasks() == TASKS


def test_unknown_task_names_it_and_lists_the_known_ones():
    with pytest.raises(TaskError) as err:
        get_task("trivia_qa")
    msg = str(err.value)
    assert "'trivia_qa'" in msg and "\n" not in msg
    assert all(name in msg for name in TASKS)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("name", TASKS)
def test_prompt_is_shared_prefix_plus_item(name):
    task = get_task(name)
    assert isinstance(task, Task)
    prompt_txt = (REPO / "tasks" / name / "prompt.txt").read_text(encoding="utf-8")
    assert task.shared_prefix.startswith(prompt_txt)
    assert task.shared_prefix.endswith("\n\n")  # the split falls right after a blank line
    for doc in task.docs():
        item = task.item_text(doc)
        assert task.prompt(doc) == task.shared_prefix + item
        assert doc["question"] in item and not item[0].isspace()
    assert task.stop and task.max_new_tokens > 0 and task.main_metric in task.metric_names


def test_prompt_shapes():
    trivia = get_task("triviaqa")
    doc = trivia.docs(limit=1)[0]
    assert trivia.item_text(doc) == f"Question: {doc['question']}\nAnswer:"
    assert trivia.shared_prefix.endswith("Answer: Newcastle United.\n\n")
    gsm = get_task("gsm8k")
    doc = gsm.docs(limit=1)[0]
    assert gsm.item_text(doc) == f"Question: {doc['question']}\nLet's think step by step\n"
    assert gsm.shared_prefix.endswith("\\boxed{146}\n\n\n")
    ro = get_task("flores_en_ro")
    assert ro.item_text(ro.docs(limit=1)[0]).endswith("\nRomanian:")


def test_docs_limit_and_shuffle():
    task = get_task("nq")
    everything = task.docs()
    assert len(everything) == 1600 and everything[0]["id"] == 0
    assert task.docs(limit=5) == everything[:5]
    a, b = task.docs(limit=5, shuffle_seed=1), task.docs(limit=5, shuffle_seed=1)
    assert a == b and a != everything[:5]
    assert task.docs(limit=0) == []
    with pytest.raises(TaskError, match="limit"):
        task.docs(limit=-1)


def test_docs_are_copies():
    task = get_task("squad")
    task.docs(limit=1)[0]["question"] = "changed"
    assert task.docs(limit=1)[0]["question"] != "changed"


def _copy_card(tmp_path, name="triviaqa"):
    root = tmp_path / "cards"
    shutil.copytree(REPO / "tasks" / name, root / name)
    return root


def test_tasks_dir_argument_and_env_var(tmp_path, monkeypatch):
    root = _copy_card(tmp_path)
    assert list_tasks(root) == ["triviaqa"]
    monkeypatch.setenv("ADAFUSE_TASKS_DIR", str(root))
    assert list_tasks() == ["triviaqa"] and find_tasks_dir() == root
    assert list_tasks(REPO / "tasks") == TASKS  # the argument wins over the variable
    monkeypatch.setenv("ADAFUSE_TASKS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(TaskError, match="ADAFUSE_TASKS_DIR"):
        list_tasks()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s + "\nstops: [x]\n", "unknown key 'stops'; allowed keys:"),
        (lambda s: s.replace("metrics: [em_lenient_triviaqa]", "metrics: [em_lenient]"), "unknown metric 'em_lenient'"),
        (lambda s: s.replace("filters: [strip]", "filters: [lstrip]"), "unknown filter 'lstrip'"),
        (lambda s: s.replace("max_new_tokens: 32", "max_new_tokens: 0"), "max_new_tokens"),
        (lambda s: s.replace("kind: hf\n", "kind: http\n"), "unknown kind 'http'"),
        (lambda s: s.replace("name: triviaqa", "name: trivia"), "differs from its folder"),
        # typed fields (#31.8): each a one-line TaskError, never a traceback
        (lambda s: s.replace("version: 1", "version: abc"), "'version' must be a non-negative integer, got 'abc'"),
        (lambda s: s.replace("metrics: [em_lenient_triviaqa]", "metrics: em_lenient_triviaqa"),
         "'metrics' must be a list of strings"),
        (lambda s: s.replace("main_metric: em_lenient_triviaqa", "main_metric: [em_lenient_triviaqa]"),
         "'main_metric' must be a string"),
        (lambda s: s.replace('description: "TriviaQA', 'description: ["TriviaQA').replace(
            'short answers"', 'short answers"]'), "'description' must be a string"),
        (lambda s: s.replace('template: "Question: {question}\\nAnswer:"', "template: 5"),
         "'template' must be a non-empty string"),
    ],
)
def test_bad_cards_name_the_bad_key(tmp_path, edit, message):
    root = _copy_card(tmp_path)
    card = root / "triviaqa" / "task.yaml"
    card.write_text(edit(card.read_text()))
    with pytest.raises(TaskError, match=message):
        get_task("triviaqa", tasks_dir=root)
