"""compare reads run folders as data (issue 16, item 7): no interpolation resolver runs, no YAML
tag builds an object, the folder's data source is not opened; a cost field an older folder
lacks is said, not guessed; and the command line's own errors (issue 18)."""

import json
import subprocess
import sys

from compare_helpers import make_run, make_sample

from adafuse.compare.__main__ import main
from adafuse.compare.costs import cost_totals
from adafuse.compare.hydra_config import resolve_references
from adafuse.compare.load import load_run


def hydra_only_run(path, config_yaml: str):
    """A run killed after its first item, before results.json had its config: the config is
    read from .hydra/config.yaml."""
    make_run(path, status=None, samples=[make_sample(0, " Paris", ["Paris"], 1.0, [1], 0.5)])
    (path / "results.json").unlink()
    (path / ".hydra").mkdir()
    (path / ".hydra" / "config.yaml").write_text(config_yaml)
    return path


def test_a_planted_env_interpolation_is_never_resolved(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAFUSE_TEST_SECRET", "hunter2-do-not-print")
    run_dir = hydra_only_run(tmp_path / "runs" / "h", (
        "theta_delta: 0.4\n"
        "models: [{name: '${oc.env:ADAFUSE_TEST_SECRET}'}, {name: gemma3-270m}]\n"
        "task: {name: triviaqa, limit: 3}\n"
        "decoder: {name: adafuse, theta_delta: '${theta_delta}', max_words: 2,"
        " weights: '${oc.env:ADAFUSE_TEST_SECRET}'}\n"))
    report = tmp_path / "report.html"
    assert main([str(tmp_path / "runs"), "--html", str(report)]) == 0
    out, err = capsys.readouterr()
    page = report.read_text()
    for text in (out, err, page):
        assert "hunter2" not in text
    assert "${oc.env:ADAFUSE_TEST_SECRET}" in out  # shown as the text it is
    run, _ = load_run(run_dir)
    assert run.theta_delta == 0.4  # a plain reference to another key is data: followed
    assert run.setting("weights") == "${oc.env:ADAFUSE_TEST_SECRET}"


def test_yaml_tags_that_build_objects_are_not_followed(tmp_path, capsys):
    marker = tmp_path / "executed"
    hydra_only_run(tmp_path / "runs" / "evil", (
        f"models: !!python/object/apply:os.system ['touch {marker}']\n"
        "task: {name: triviaqa}\ndecoder: {name: adafuse}\n"))
    assert main([str(tmp_path / "runs")]) == 2  # no usable config: left out, nothing to compare
    assert not marker.exists()
    assert (f"note: {tmp_path / 'runs' / 'evil'}: no results.json and "
            f"{tmp_path / 'runs' / 'evil' / '.hydra' / 'config.yaml'}: not plain YAML data; skipped"
            ) in capsys.readouterr().err


def test_references_resolve_within_the_config_and_nothing_else():
    config = {"a": 1, "b": "${a}", "c": "x-${a}-${b}", "d": "${oc.env:HOME}", "e": "${missing}",
              "f": {"g": "${h.i}"}, "h": {"i": [1, 2]}, "loop": "${loop}"}
    resolved = resolve_references(config)
    assert resolved["b"] == 1 and resolved["c"] == "x-1-1" and resolved["f"]["g"] == [1, 2]
    assert resolved["d"] == "${oc.env:HOME}" and resolved["e"] == "${missing}"
    assert resolved["loop"] == "${loop}"


def test_the_folder_data_source_is_not_opened_to_score_a_partial_run(tmp_path, monkeypatch):
    import adafuse.tasks

    path = make_run(tmp_path / "p", status=None, n_items=4,
                    samples=[make_sample(0, " Paris", ["Paris"], 1.0, [1], 0.5)])
    header = json.loads((path / "results.json").read_text())
    header["task"]["source"] = str(tmp_path / "someone-elses-data.jsonl")
    (path / "results.json").write_text(json.dumps(header))
    calls = []
    real = adafuse.tasks.get_task
    monkeypatch.setattr(adafuse.tasks, "get_task", lambda *a, **kw: calls.append((a, kw)) or real(*a, **kw))
    run, note = load_run(path)
    assert run.main == 1.0 and note.endswith("scored over those")
    assert calls == [(("triviaqa",), {})]  # the task's metric only, from its card


def test_missing_cost_fields_are_said_not_guessed(tmp_path):
    samples = [make_sample(0, " Paris", ["Paris"], 1.0, [1], 0.5), make_sample(1, " Rome", ["Rome"], 1.0, [1], 0.5)]
    del samples[1]["seconds"]
    totals, lacking = cost_totals(samples)
    assert totals["decode_seconds"] is None and totals["seconds_per_item"] is None
    assert totals["forwards"] == 20 and totals["forwards_per_item"] == 10
    assert lacking == ["1 of 2 samples record no seconds.decode, so no decode_seconds"]
    make_run(tmp_path / "p", status=None, n_items=4, samples=samples)
    run, note = load_run(tmp_path / "p")
    assert run.seconds_per_item is None and "record no seconds.decode" in note


def test_help_prints_usage_and_exits_0():
    done = subprocess.run([sys.executable, "-m", "adafuse.compare", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m adafuse.compare")
    assert "--html" in done.stdout and done.stderr == ""


def test_html_into_a_folder_or_an_unwritable_path_is_one_line_and_exit_2(sweep, tmp_path, capsys):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for target, why in ((folder, "is a folder"), (blocker / "report.html", "cannot write it")):
        assert main([str(sweep), "--html", str(target)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: --html {target}: {why}"), err
        assert "Traceback" not in err[0]


def test_a_partial_run_counts_its_recorded_shared_prefix_once(tmp_path):
    samples = [make_sample(i, " Paris", ["Paris"], 1.0, [1], 0.5, forwards=10) for i in range(2)]
    path = make_run(tmp_path / "p", status=None, n_items=4, samples=samples)
    assert load_run(path)[0].cost["forwards"] == 20
    header = json.loads((path / "results.json").read_text())
    header["cost"] = {"shared_prefix": {"a": {"forwards": 1, "tokens_fed": 40, "seconds": 0.5},
                                        "b": {"forwards": 1, "tokens_fed": 41, "seconds": 0.7}}}
    (path / "results.json").write_text(json.dumps(header))
    run, _ = load_run(path)
    assert run.cost["forwards"] == 22 and run.cost["forwards_per_item"] == 11
