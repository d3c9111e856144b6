"""Faults and hostile or damaged run folders (#31), as a table: one case a row. Each row
prepares a folder (or an environment) in the test's `tmp`, runs `python -m adafuse.run` with
its arguments and expects exit status 2 with one line on stderr that says `must`; nothing
outside the run folder (a `victim` file a link points at) is changed, and what the folder held
is kept. Rows marked `before_load` must be refused before the first model loads.

A new case is one row in CASES.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adafuse.runfolder import remove_temporaries
from run_helpers import read_jsonl

BASE = ["task=triviaqa", "limit=2", "logger=none"]


def _finished(adafuse_run, tmp):
    """A complete 2-item run in tmp/run, made once per test and copied (the models stay loaded)."""
    run = tmp / "run"
    res = adafuse_run(*BASE, f"hydra.run.dir={run}")
    assert res.code == 0, res.err
    return run


def _unfinished(adafuse_run, tmp):
    """A 3-item run stopped after its first item: results.json `interrupted`, one sample."""
    run = tmp / "run"
    res = adafuse_run("task=triviaqa", "limit=3", "logger=none", f"hydra.run.dir={run}")
    assert res.code == 0, res.err
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "status": "interrupted"}))
    first = (run / "samples.jsonl").read_text().splitlines(keepends=True)[0]
    (run / "samples.jsonl").write_text(first)
    keep = [r for r in read_jsonl(run / "trace.jsonl") if str(r["id"]) == str(json.loads(first)["id"])]
    (run / "trace.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    return run


def link_to_victim(name):
    """prepare(): the run folder's `name` becomes a link to tmp/victim (a file outside)."""
    def prepare(adafuse_run, tmp):
        run = _unfinished(adafuse_run, tmp)
        (tmp / "victim").write_text("precious\n")
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(tmp / "victim")
        return [f"resume={run}", "task=triviaqa", "limit=3", "logger=none"]
    return prepare


def _stop_after_first(run):
    """Make a finished run look stopped after its first item."""
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "status": "interrupted"}))
    (run / "samples.jsonl").write_text((run / "samples.jsonl").read_text().splitlines(True)[0])


def changed_data(field):
    """prepare(): a run on a copied data file, then the file's `field` of an item changed."""
    def prepare(adafuse_run, tmp):
        data = tmp / "data.jsonl"
        shutil.copy("tasks/triviaqa/data/dev.jsonl", data)
        args = ["task=triviaqa", "limit=3", "logger=none", f"task.source={data}"]
        run = tmp / "run"
        assert adafuse_run(*args, f"hydra.run.dir={run}").code == 0
        _stop_after_first(run)
        lines = data.read_text().splitlines(True)
        item = json.loads(lines[1])
        item[field] = ["changed"] if field == "answer" else "Changed question?"
        lines[1] = json.dumps(item) + "\n"
        data.write_text("".join(lines))
        return [*args, f"resume={run}"]
    return prepare


def grown_but(change):
    """prepare(): a complete 2-item run on a copied data file, continued to 3 items after
    `change` ("lower": limit 1 instead; "edit": the first item's question changed)."""
    def prepare(adafuse_run, tmp):
        data = tmp / "data.jsonl"
        shutil.copy("tasks/triviaqa/data/dev.jsonl", data)
        args = ["task=triviaqa", "logger=none", f"task.source={data}"]
        run = tmp / "run"
        assert adafuse_run(*args, "limit=2", f"hydra.run.dir={run}").code == 0
        if change == "lower":
            return [*args, "limit=1", f"resume={run}"]
        lines = data.read_text().splitlines(True)
        lines[0] = json.dumps({**json.loads(lines[0]), "question": "Changed question?"}) + "\n"
        data.write_text("".join(lines))
        return [*args, "limit=3", f"resume={run}"]
    return prepare


def changed_prompt(adafuse_run, tmp):
    """prepare(): a run on a copied task card (ADAFUSE_TASKS_DIR), then its prompt file changed."""
    shutil.copytree("tasks/triviaqa", tmp / "tasks" / "triviaqa")
    args = ["task=triviaqa", "limit=3", "logger=none"]
    run = tmp / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADAFUSE_TASKS_DIR", str(tmp / "tasks"))
        assert adafuse_run(*args, f"hydra.run.dir={run}").code == 0
    _stop_after_first(run)
    prompt = tmp / "tasks" / "triviaqa" / "prompt.txt"
    prompt.write_text(prompt.read_text().replace("Do NOT Analyze.", "Be brief."))
    return [*args, f"resume={run}"]


changed_prompt.env = ("ADAFUSE_TASKS_DIR", "{tmp}/tasks")


def plain(*args):
    return lambda adafuse_run, tmp: [a.replace("{tmp}", str(tmp)) for a in args]


def env(key, value, *args):
    """prepare(): the arguments, with `key=value` in the environment."""
    prepare = plain(*args)
    prepare.env = (key, value)
    return prepare


# (name, prepare(adafuse_run, tmp) -> arguments, what the one line says, refused before any load)
CASES = [
    # 1. links in a run folder: refused, the target neither truncated nor written
    (".lock a link", link_to_victim(".lock"), "/run/.lock is a symbolic link", True),
    ("samples.jsonl a link", link_to_victim("samples.jsonl"), "/run/samples.jsonl is a symbolic link", True),
    ("trace.jsonl a link", link_to_victim("trace.jsonl"), "/run/trace.jsonl is a symbolic link", True),
    ("results.json a link", link_to_victim("results.json"), "/run/results.json is a symbolic link", True),
    ("run.log a link", link_to_victim("run.log"), "/run/run.log is a symbolic link", True),
    # 4. resume compares inputs
    ("gold changed", changed_data("answer"), "the gold answers changed since this run started", True),
    ("question changed", changed_data("question"), "the data (the selected items' fields) changed", True),
    ("prompt file changed", changed_prompt, "the prompt (the task's prompt file, separator or template, or "
     "prompt=) changed since this run started (digest in results.json)", True),
    # a complete run goes on to more items only when its items are the first of them
    ("limit lowered on a complete run", grown_but("lower"), "was run with a different config "
     "(task.limit: 2 -> 1)", True),
    ("limit raised, an old item edited", grown_but("edit"), "a complete run goes on to more items "
     "when its items are the first of those selected now", True),
    # 5. names
    ("two models alike", plain("models.1.name=${models.0.name}"), "are both named", True),
    ("two aliases alike", plain("models.0.alias=m", "models.1.alias=m"), "are both named 'm'", True),
    ("an alias that is the other's name", plain("models.1.alias=${models.0.name}"), "are both named", True),
    # 6. bounds
    ("threads far too many", plain("threads=100000"), "threads=100000 is not allowed; threads must be auto or an integer in [1, ", True),
    ("batch_size far too big", plain("batch_size=100000"), "batch_size=100000 is not allowed; batch_size must be an integer in [1, 256]", True),
    ("a prompt past the context window", plain("prompt='" + "word " * 5000 + "'"), "whose context window holds 4096", False),
    ("a 20,000-word prompt (the probe's)", plain("prompt='" + "word " * 20000 + "'"), "whose context window holds 4096", False),
    ("limit in prompt mode", plain("limit=5"), "limit=5 applies to a task", True),
    # 7. empty or root locations
    ("runs_dir empty", plain("runs_dir="), "runs_dir='' is empty", True),
    ("runs_dir the root", plain("runs_dir=/"), "runs_dir='/' is the root folder", True),
    ("runs_dir the root, dotted", plain("runs_dir=/tmp/.."), "runs_dir='/tmp/..' is the root folder", True),
    ("hydra.run.dir empty", plain("hydra.run.dir="), "hydra.run.dir='' is empty", True),
    ("hydra.sweep.dir empty", plain("-m", "hydra.sweep.dir=", "theta_delta=0.3,0.5"), "hydra.sweep.dir='' is empty", True),
    ("ADAFUSE_CACHE empty", env("ADAFUSE_CACHE", "", "task=triviaqa"), "ADAFUSE_CACHE='' is empty", True),
    ("ADAFUSE_CACHE the root", env("ADAFUSE_CACHE", "/", "task=triviaqa"), "ADAFUSE_CACHE='/' is the root folder", True),
    # 10. W&B settings
    ("logger.mode unknown", plain("logger=wandb", "logger.mode=sometimes"), "logger.mode='sometimes' is not allowed", True),
    ("WANDB_MODE unknown", env("WANDB_MODE", "sometimes", "logger=wandb"), "WANDB_MODE='sometimes' is not allowed", True),
    ("init_timeout zero", plain("logger=wandb", "logger.init_timeout=0"), "logger.init_timeout=0.0 is not allowed", True),
    ("init_timeout negative", plain("logger=wandb", "logger.init_timeout=-5"), "logger.init_timeout=-5.0 is not allowed", True),
    ("init_timeout past the cap", plain("logger=wandb", "logger.init_timeout=100000"),
     "logger.init_timeout=100000.0 is not allowed; it must be a number of seconds in (0, 600]", True),
    ("project with a slash", plain("logger=wandb", "logger.project=a/b"), "logger.project='a/b' is not allowed", True),
    # 29.8: a sweep typed without -m keeps Hydra's hint
    ("a sweep without -m", plain("theta_delta=0.3,0.7"), "to sweep over it, add -m (--multirun)", True),
]


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != "run.log"}


@pytest.mark.parametrize("name, prepare, message, before_load", CASES, ids=[c[0] for c in CASES])
def test_fault(adafuse_run, monkeypatch, tmp_path, name, prepare, message, before_load):
    from adafuse.runner import experiment

    args = prepare(adafuse_run, tmp_path)
    if hasattr(prepare, "env"):
        key, value = prepare.env
        monkeypatch.setenv(key, value.replace("{tmp}", str(tmp_path)))
    before = snapshot(tmp_path)
    if before_load:
        def refuse(specs):
            raise AssertionError("a model was loaded before the input was checked")
        monkeypatch.setattr(experiment, "load_models", refuse)
    if not any(a.startswith(("runs_dir=", "hydra.run.dir=", "resume=", "hydra.sweep.dir=")) for a in args):
        args = [*args, f"runs_dir={tmp_path}/runs"]
    res = adafuse_run(*args)
    assert res.code == 2, (res.out, res.err)
    assert len(res.err_lines) == 1, res.err
    assert res.err_lines[0].startswith("error: ") and message in res.err_lines[0], res.err_lines[0]
    assert snapshot(tmp_path) == before  # nothing changed or added; the victim is intact
    if (tmp_path / "victim").exists():
        assert (tmp_path / "victim").read_text() == "precious\n"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("results.json"))


def test_temporaries_of_killed_writes_are_removed_on_the_next_run(adafuse_run, tmp_path):
    run = _unfinished(adafuse_run, tmp_path)
    for name in ("results.json.k1ll3dxx", "samples.jsonl.ab_cd123", "trace.jsonl.zz99zz99"):
        (run / name).write_text("half")
    (run / "results.json.notours").write_text("a user's file")  # not a temporary's name: kept
    res = adafuse_run("task=triviaqa", "limit=3", "logger=none", f"resume={run}")
    assert res.code == 0, res.err
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(("results", "samples", "trace"))) == [
        "results.json", "results.json.notours", "samples.jsonl", "trace.jsonl"]
    assert remove_temporaries(run) == []


def test_a_sweep_goes_on_past_a_locked_and_a_damaged_job_and_names_them(adafuse_run, tmp_path):
    from adafuse import runfolder

    sweep = tmp_path / "sweep"
    args = ["-m", "task=triviaqa", "limit=1", "logger=none", "theta_delta=0.2,0.5,0.9",
            f"hydra.sweep.dir={sweep}"]
    (sweep / "1_theta_delta=0.5").mkdir(parents=True)
    (sweep / "2_theta_delta=0.9").mkdir()
    (sweep / "2_theta_delta=0.9" / "results.json").write_text("{not json")
    with runfolder.hold(sweep / "1_theta_delta=0.5"):  # another run holds job 1's folder
        res = adafuse_run(*args)
    assert res.code == 2, res.err
    assert json.loads((sweep / "0_theta_delta=0.2" / "results.json").read_text())["status"] == "complete"
    assert (sweep / "2_theta_delta=0.9" / "results.json").read_text() == "{not json"
    assert not (sweep / "1_theta_delta=0.5" / ".hydra").exists()  # the held folder was not written
    summary = res.err_lines[-1]
    assert summary.startswith("error: 2 job(s) of the sweep failed, the others ran: "), res.err
    assert "1_theta_delta=0.5: " in summary and "in use by another run" in summary
    assert "2_theta_delta=0.9: " in summary and "not valid JSON" in summary


def test_a_card_template_that_pads_to_a_huge_prompt_is_one_line(tmp_path):
    from adafuse.tasks.card import read_card
    from adafuse.tasks.errors import TaskError

    card = (tmp_path / "pad" / "task.yaml")
    card.parent.mkdir()
    text = open("tasks/triviaqa/task.yaml", encoding="utf-8").read().replace("name: triviaqa", "name: pad")
    for template, says in [("{question:>1000000000}", "pads or cuts to 1000000000 characters"),
                           ("{question:{answer}}", "may not hold another field")]:
        lines = [ln if not ln.strip().startswith("template:") else f"  template: {json.dumps(template)}"
                 for ln in text.splitlines()]
        card.write_text("\n".join(lines) + "\n")
        (tmp_path / "pad" / "prompt.txt").write_text("Answer.\n")
        with pytest.raises(TaskError) as err:
            read_card(card)
        assert says in str(err.value) and "\n" not in str(err.value)


def test_merge_out_under_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    import adafuse.merge as merge_module
    from adafuse.merge import main as merge_main

    (tmp_path / "afile").write_text("x")
    (tmp_path / "sweep").mkdir()

    def write_there(sweep_dir, out, replace):  # the merge itself, reduced to its write
        merge_module.write_merged(out, {}, [], [], replace)

    monkeypatch.setattr(merge_module, "merge", write_there)
    assert merge_main([str(tmp_path / "sweep"), f"out={tmp_path}/afile/x"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: cannot write {tmp_path}/afile") and "Traceback" not in line
    assert (tmp_path / "afile").read_text() == "x"


# --- the readers that write: `score rescore=` and `merge` (#31.1, #31.9) -----------------------


def _victim(tmp):
    (tmp / "victim").write_text("precious\n")
    return tmp / "victim"


def test_rescore_skips_a_run_whose_lock_is_a_link_and_rescores_the_others(adafuse_run, tmp_path, capsys):
    from adafuse.score import main as score_main

    run = _finished(adafuse_run, tmp_path)
    shutil.copytree(run, tmp_path / "runs" / "other")
    shutil.move(run, tmp_path / "runs" / "linked")
    run = tmp_path / "runs" / "linked"
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(_victim(tmp_path))
    before = snapshot(run)
    capsys.readouterr()
    assert score_main([f"rescore={tmp_path / 'runs'}"]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {run}: {run}/.lock is a symbolic link; a run folder's files must be plain "
                     "files (remove the link, or start a new run); not rescored, nothing changed"], err
    assert (tmp_path / "victim").read_text() == "precious\n" and snapshot(run) == before
    assert [Path(e["run"]).name for e in json.loads(out) if "after" in e] == ["other"]


@pytest.fixture
def shards(adafuse_run, tmp_path):
    """A sweep of two shards (not merged yet)."""
    for shard in (0, 1):
        res = adafuse_run(*BASE, f"shard={shard}", "num_shards=2", f"hydra.run.dir={tmp_path / 'sweep' / str(shard)}")
        assert res.code == 0, res.err
    return tmp_path / "sweep"


def test_merge_into_a_folder_whose_lock_is_a_link_is_one_line(shards, tmp_path, capsys):
    from adafuse.merge import main as merge_main

    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").symlink_to(_victim(tmp_path))
    capsys.readouterr()
    assert merge_main([str(shards), f"out={out}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"error: {out}/.lock is a symbolic link; a run folder's files must be plain files "
                    "(remove the link, or start a new run)")
    assert (tmp_path / "victim").read_text() == "precious\n" and [p.name for p in out.iterdir()] == [".lock"]


def test_replace_after_a_killed_merge_removes_its_temporaries(shards, capsys):
    """A merge killed while writing results.json left its samples, its trace and a temporary,
    and no results.json (written last): replace=true merges again and removes the temporary."""
    from adafuse.merge import main as merge_main

    assert merge_main([str(shards)]) == 0
    merged = shards / "merged"
    results = (merged / "results.json").read_bytes()
    (merged / "results.json").rename(merged / "results.json.k1ll3dxx")
    capsys.readouterr()
    assert merge_main([str(shards)]) == 2
    assert "already holds a run (samples.jsonl, trace.jsonl)" in capsys.readouterr().err
    assert merge_main([str(shards), "replace=true"]) == 0
    assert sorted(p.name for p in merged.iterdir()) == [".lock", "results.json", "samples.jsonl", "trace.jsonl"]
    assert json.loads((merged / "results.json").read_bytes())["metrics"] == json.loads(results)["metrics"]
