from compare_helpers import make_run, make_sample

from adafuse.compare.disagree import (
    default_pair,
    disagreements,
    divergence_round,
    question_text,
)
from adafuse.compare.load import load_run, load_runs
from adafuse.tasks import get_task


def rounds(item: int, spans: list[str]) -> list[dict]:
    return [{"id": item, "item": item, "round": k, "margins": [[0.2], [0.9]], "explored": [True, False],
             "proposals": [{"text": text, "proposers": [0], "nll": [1.0, 2.0], "score": 1.5},
                           {"text": " other", "proposers": [1], "nll": [2.0, 1.0], "score": 1.6}],
             "winner": 0, "winner_text": text} for k, text in enumerate(spans)]


def test_the_divergence_round_is_the_one_that_committed_the_first_differing_character():
    rows = rounds(0, [" The", " Phantom", " of the Opera"])
    d = divergence_round(rows, len(" The "))  # " The Phantom..." vs " The Lion...": the space is shared
    assert (d.round, d.prefix, d.committed) == (1, " The", " Phantom")
    assert d.margins == [0.2, 0.9] and d.explored == [True, False]
    assert [p["text"] for p in d.proposals] == [" Phantom", " other"]  # best score first
    end = divergence_round(rows, len(" The Phantom of the Opera"))  # the other response goes on
    assert (end.round, end.prefix) == (2, " The Phantom")
    assert divergence_round([], 3).round is None  # greedy keeps no trace


def make_pair(tmp_path):
    a_samples = [make_sample(0, " The Phantom", ["Phantom"], 1.0, [1, 1], 1.0),
                 make_sample(1, " Paris", ["Paris"], 1.0, [1], 0.0),
                 make_sample(2, " Rome", ["Madrid"], 0.0, [1], 0.0),
                 make_sample(3, " Paris", ["Paris"], 1.0, [1], 0.0)]
    b_samples = [make_sample(0, " The Lion", ["Phantom"], 0.0, [1], 1.0),
                 make_sample(1, " Paris", ["Paris"], 1.0, [1], 0.0),
                 make_sample(2, " Milan", ["Madrid"], 0.0, [1], 0.0),
                 make_sample(3, " Paris, France", ["Paris"], 0.0, [1], 0.0)]
    trace = rounds(0, [" The", " Phantom"]) + rounds(1, [" Paris"]) + rounds(2, [" Rome"]) + rounds(3, [" Paris"])
    make_run(tmp_path / "a", samples=a_samples, trace=trace)
    make_run(tmp_path / "b", decoder="greedy", theta=None, max_words=None, samples=b_samples)
    return load_run(tmp_path / "a")[0], load_run(tmp_path / "b")[0]


def test_disagreements_list_differing_answers_one_right_first(tmp_path):
    a, b = make_pair(tmp_path)
    found = disagreements(a, b)
    assert [d.id for d in found] == ["0", "3", "2"]  # item 1 agrees; 2: both wrong
    first = found[0]
    assert first.answers == ("The Phantom", "The Lion") and first.scores == (1.0, 0.0)
    assert first.gold == ["Phantom"]
    assert first.question == "Question: question 0?\nAnswer:"
    assert (first.divergence[0].round, first.divergence[0].committed) == (1, " Phantom")
    assert first.divergence[1].round is None
    assert found[1].divergence[0].round == 0  # " Paris" ends where " Paris, France" goes on


def test_question_text_drops_the_tasks_instruction_and_few_shot_text():
    prefix = get_task("triviaqa").shared_prefix
    assert question_text("triviaqa", prefix + "Question: Who wrote Emma?\nAnswer:") == "Question: Who wrote Emma?\nAnswer:"
    assert question_text("no_such_task", "Few shot.\n\nQuestion: Q?\nAnswer:") == "Question: Q?\nAnswer:"


def test_the_default_pair_is_the_best_ensemble_run_against_the_best_single_model(sweep):
    runs, _ = load_runs([sweep])
    a, b = default_pair(runs)
    assert a.task == b.task
    assert (a.theta_delta, a.max_words, a.is_single) == (1.0, 3, False)
    assert b.is_single and b.models == ["gemma3-270m"]
    assert default_pair(runs[:1]) is None


def test_the_disagreement_cards_name_the_models_and_print_no_python_values(tmp_path):
    from adafuse.compare.html import section_disagreements

    page = section_disagreements(make_pair(tmp_path))
    assert "False" not in page and "True" not in page and "'" not in page.split("</p>", 1)[1]
    assert "smollm2-135m-instruct Δ1 0.20 explored; gemma3-270m Δ1 0.90 confident" in page
    assert "<td class=l>smollm2-135m-instruct</td>" in page  # the proposers, by name
    assert "<th>NLL gemma3-270m</th>" in page and "“ Phantom”" in page


def test_the_default_pair_is_adafuse_at_the_papers_setting_even_when_an_ablation_scores_more(tmp_path):
    make_run(tmp_path / "paper", theta=0.7, max_words=3, main=0.3)
    make_run(tmp_path / "theta1", theta=1.0, max_words=3, main=0.6)
    make_run(tmp_path / "smol", decoder="greedy", theta=None, max_words=None, model_index=0, main=0.2)
    make_run(tmp_path / "gemma", decoder="greedy", theta=None, max_words=None, model_index=1, main=0.4)
    a, b = default_pair(load_runs([tmp_path])[0])
    assert (a.path.name, b.path.name) == ("paper", "gemma")
