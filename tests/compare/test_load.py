import json
from pathlib import Path

from compare_helpers import make_run, make_sample

from adafuse.compare.load import find_run_dirs, load_run, load_runs


def test_a_complete_run_reads_its_config_metrics_and_costs(tmp_path):
    make_run(tmp_path / "r", theta=0.3, max_words=2, main=0.25, forwards=120, words=40, seconds_per_item=1.5)
    run, note = load_run(tmp_path / "r")
    assert note is None
    assert (run.task, run.decoder, run.theta_delta, run.max_words, run.num_candidates) == ("triviaqa", "adafuse", 0.3, 2, 3)
    assert run.main_metric == "em_lenient_triviaqa" and run.main == 0.25
    assert run.forwards_per_word == 3.0 and run.seconds_per_item == 1.5
    assert run.complete and run.n_done == 4 and not run.is_single
    assert run.system == "adafuse θ_Δ=0.3 max_words=2 B=3 · smollm2-135m-instruct + gemma3-270m"


def test_a_greedy_run_is_a_single_model_system(tmp_path):
    make_run(tmp_path / "g", decoder="greedy", theta=None, max_words=None, model_index=1)
    run, _ = load_run(tmp_path / "g")
    assert run.is_single and run.models == ["gemma3-270m"]
    assert run.system == "greedy · gemma3-270m"
    assert run.model_set == "smollm2-135m-instruct + gemma3-270m"
    assert run.theta_delta is None


def test_an_unknown_decoder_is_labelled_by_its_settings(tmp_path):
    make_run(tmp_path / "f", decoder="fixed_span", theta=None, max_words=4)
    run, _ = load_run(tmp_path / "f")
    assert run.system == "fixed_span k=4 · smollm2-135m-instruct + gemma3-270m"
    assert not run.is_single and run.theta_delta is None


def test_run_folders_are_found_below_sweep_and_runs_folders(sweep):
    assert len(find_run_dirs(sweep / "triviaqa" / "sweep")) == 6
    assert len(find_run_dirs(sweep)) == 16
    runs, notes = load_runs([sweep, sweep / "gsm8k"])  # a folder given twice counts once
    assert len(runs) == 16 and notes == []
    grid_run = next(r for r in runs if r.path.parent.name == "sweep")
    assert grid_run.sweep in ("triviaqa/sweep", "gsm8k/sweep")


def test_empty_and_missing_folders_are_notes(tmp_path):
    (tmp_path / "empty").mkdir()
    runs, notes = load_runs([tmp_path / "empty", tmp_path / "nowhere"])
    assert runs == []
    assert notes == [f"{tmp_path / 'empty'}: no run folders in it; skipped",
                     f"{tmp_path / 'nowhere'}: no such folder; skipped"]


def test_a_run_stopped_early_is_partial_and_scored_over_its_finished_items(tmp_path):
    samples = [make_sample(0, " Paris", ["Paris"], 1.0, [1], 1.0),
               make_sample(1, " Rome", ["Madrid"], 0.0, [1], 0.5)]
    make_run(tmp_path / "p", status=None, samples=samples, n_items=8)
    with open(tmp_path / "p" / "samples.jsonl", "a") as fh:
        fh.write('{"index": 2, "id": 2, "resp')  # the torn line a kill -9 leaves
    run, note = load_run(tmp_path / "p")
    assert not run.complete and run.n_done == 2 and run.n_items == 8
    assert run.main == 0.5  # the task's own scorer, over the 2 finished items
    assert run.seconds_per_item == 1.0 and run.forwards_per_word == 10.0
    assert note == "not finished: partial, 2 of 8 items, scored over those"


def test_results_json_missing_reads_the_config_hydra_saved(tmp_path):
    path = make_run(tmp_path / "h", status=None, samples=[make_sample(0, " Paris", ["Paris"], 1.0, [2], 0.0)])
    (path / "results.json").unlink()
    (path / ".hydra").mkdir()
    (path / ".hydra" / "config.yaml").write_text(
        "theta_delta: 0.4\nmodels: [{name: a}, {name: b}]\ntask: {name: triviaqa, limit: 3}\n"
        "decoder: {name: adafuse, theta_delta: '${theta_delta}', max_words: 2}\n")
    run, note = load_run(path)
    assert run.theta_delta == 0.4 and run.main == 1.0 and run.n_items == 3
    assert note.startswith("no results.json: partial, 1 of 3 items")


def test_unreadable_runs_are_skipped_with_a_note(tmp_path):
    damaged = make_run(tmp_path / "damaged")
    (damaged / "results.json").write_text('{"config": ')
    no_items = make_run(tmp_path / "started", status=None)  # header written, no item finished
    only_samples = tmp_path / "bare"
    only_samples.mkdir()
    (only_samples / "samples.jsonl").write_text("")
    runs, notes = load_runs([tmp_path])
    assert runs == []
    assert len(notes) == 3
    assert any(n.startswith(f"{only_samples}: no results.json and no .hydra/config.yaml") for n in notes)
    assert any(n.startswith(f"{damaged}: results.json unreadable") for n in notes)
    assert f"{no_items}: not finished, no finished items yet; skipped" in notes


def test_a_missing_main_metric_is_a_note_and_no_value(tmp_path):
    make_run(tmp_path / "m", metrics={"other": 0.2})
    run, note = load_run(tmp_path / "m")
    assert run.main is None and run.metrics == {"other": 0.2}
    assert note == "no em_lenient_triviaqa in its metrics"


def test_prompt_mode_runs_have_no_task_metrics(tmp_path):
    path = tmp_path / "prompt"
    path.mkdir()
    (path / "results.json").write_text(json.dumps({
        "status": "complete", "main_metric": None, "main": None, "metrics": {}, "n_items": 1,
        "cost": {"forwards": 8, "words": 2}, "config": {"task": None, "decoder": {"name": "adafuse"}}}))
    run, note = load_run(Path(path))
    assert run.task == "prompt" and run.main is None
    # an older folder's cost without the seconds: said, and unknown rather than 0
    assert note == "results.json cost has no decode_seconds, seconds_per_item; shown as unknown"
    assert run.seconds_per_item is None and run.cost["decode_seconds"] is None and run.forwards_per_word == 4


def test_results_of_another_shape_are_skipped_with_a_note(tmp_path):
    for name, data in (("list", []), ("decoder", {"status": "complete", "config": {"decoder": "adafuse"}}),
                       ("metrics", {"status": "complete", "config": {"decoder": {"name": "x"}}, "metrics": [1], "n_items": None})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(data))
    runs, notes = load_runs([tmp_path])
    assert [r.path.name for r in runs] == ["metrics"]  # read, with nothing to show but its folder
    assert sorted(n.split(": ", 1)[1] for n in notes if n.endswith("skipped")) == [
        f"{tmp_path / 'decoder' / 'results.json'}: its config is not one adafuse.run writes "
        "(models, task, decoder); skipped",
        "results.json is not an object and no .hydra/config.yaml; skipped"]


def test_a_samples_seconds_may_carry_the_runners_warmup_flag(tmp_path):
    """The first item of a sitting is flagged `seconds.warmup: true` (runner/experiment.py):
    read, not refused; a warmup that is not a bool still is."""
    first = make_sample(0, " Paris", ["Paris"], 1.0, [1], 0.5)
    first["seconds"] = {"decode": 9.5, "models": {"a": 4.0}, "warmup": True}
    make_run(tmp_path / "ok", samples=[first, make_sample(1, " Paris", ["Paris"], 1.0, [1], 0.5)], n_items=2)
    runs, notes = load_runs([tmp_path / "ok"])
    assert len(runs) == 1 and runs[0].n_done == 2 and notes == []
    first["seconds"]["warmup"] = "yes"
    make_run(tmp_path / "bad", samples=[first], n_items=1)
    runs, notes = load_runs([tmp_path / "bad"])
    assert runs == [] and "'seconds'" in notes[0]
