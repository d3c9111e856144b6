"""`adafuse.merge` never destroys: a folder holding a run is replaced only when asked, shards
with missing, duplicate or foreign items are named, and the merged cost is one job's (issue 16)."""

from __future__ import annotations

import json
import shutil

import pytest

from adafuse.merge import main as merge_main
from run_helpers import read_jsonl, without_timings
from test_resume_cost import without_seconds

TASK = ["task=triviaqa", "limit=4", "logger=none"]


@pytest.fixture
def sweep(adafuse_run, tmp_path):
    """A whole run and the same run in two shards (not merged yet)."""
    assert adafuse_run(*TASK, f"hydra.run.dir={tmp_path / 'whole'}").code == 0
    for shard in (0, 1):
        res = adafuse_run(*TASK, f"shard={shard}", "num_shards=2",
                          f"hydra.run.dir={tmp_path / 'sweep' / str(shard)}")
        assert res.code == 0, res.err
    return tmp_path / "sweep"


def merge(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = merge_main(list(args))
    captured = capsys.readouterr()
    return code, captured.err.strip() or captured.out.strip()


def test_merged_run_equals_the_whole_run_cost_included(sweep, capsys):
    whole = sweep.parent / "whole"
    assert merge(capsys, str(sweep))[0] == 0
    merged = json.loads((sweep / "merged" / "results.json").read_text())
    expected = json.loads((whole / "results.json").read_text())
    assert without_timings(read_jsonl(sweep / "merged" / "samples.jsonl")) == \
        without_timings(read_jsonl(whole / "samples.jsonl"))
    assert merged["metrics"] == expected["metrics"]
    # two shards prefilled the shared prefix each; one job would once
    assert without_seconds(merged["cost"]) == without_seconds(expected["cost"])


def test_merge_refuses_to_overwrite_a_run_unless_told_to(sweep, capsys):
    """A folder holding a run is replaced only with replace=true, and only when it holds an
    earlier merge of the same sweep (#31: never a run of adafuse.run, nor another sweep's or
    another task's merge)."""
    whole = sweep.parent / "whole"
    before = {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()}
    code, err = merge(capsys, str(sweep), f"out={whole}")
    assert code == 2 and err.count("\n") == 0
    assert err == (f"error: {whole} already holds a run (results.json, samples.jsonl, trace.jsonl, "
                   ".hydra); choose another out=, or pass replace=true to replace it")
    assert {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()} == before
    code, err = merge(capsys, str(sweep), f"out={whole}", "replace=true")  # a run outside the sweep
    assert code == 2 and err == (f"error: {whole} holds a run of adafuse.run (its results.json has no "
                                 "merged_from), not a merge of this sweep; replace=true replaces only "
                                 "that: choose another out=")
    assert {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()} == before
    assert (whole / ".hydra").is_dir()

    assert merge(capsys, str(sweep))[0] == 0
    merged = sweep / "merged"
    first = (merged / "samples.jsonl").read_bytes()
    code, err = merge(capsys, str(sweep))  # merging twice
    assert code == 2 and "already holds a run" in err
    assert (merged / "samples.jsonl").read_bytes() == first

    # the same sweep's merge is replaced, whole: nothing of the old one is kept
    (merged / "samples.jsonl").write_bytes(first.splitlines(True)[0])
    code, out = merge(capsys, str(sweep), "replace=true")
    assert code == 0, out
    assert (merged / "samples.jsonl").read_bytes() == first
    results = json.loads((merged / "results.json").read_text())
    assert results["merged_from"] == [str(sweep / "0"), str(sweep / "1")]

    # another task's or another sweep's merge is not
    for key, value, says in [("task", {**results["task"], "name": "gsm8k"}, "a merge of another task (gsm8k)"),
                             ("merged_from", [str(whole)], f"a merge of another sweep ({whole.parent})")]:
        other = sweep.parent / "other"
        shutil.rmtree(other, ignore_errors=True)
        shutil.copytree(merged, other)
        (other / "results.json").write_text(json.dumps({**results, key: value}))
        kept = {p.name: p.read_bytes() for p in other.iterdir() if p.is_file()}
        code, err = merge(capsys, str(sweep), f"out={other}", "replace=true")
        assert code == 2 and err == (f"error: {other} holds {says}, not a merge of this sweep; "
                                     "replace=true replaces only that: choose another out="), err
        assert {p.name: p.read_bytes() for p in other.iterdir() if p.is_file()} == kept


def test_a_shard_with_a_duplicate_or_missing_item_is_named(sweep, capsys):
    samples = sweep / "1" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines + lines[:1]))
    code, err = merge(capsys, str(sweep))
    first_id = json.loads(lines[0])["id"]
    assert code == 2 and err == (f"error: shard 1 ({sweep / '1'}): item {first_id!r} appears twice "
                                 "in samples.jsonl")
    samples.write_text("".join(lines[1:]))
    code, err = merge(capsys, str(sweep))
    assert code == 2 and err.startswith(f"error: shard 1 ({sweep / '1'}): 1 of its 2 items have no "
                                        f"sample (first: {first_id!r})")
    foreign = json.loads((sweep / "0" / "samples.jsonl").read_text().splitlines()[0])
    samples.write_text("".join(lines) + json.dumps(foreign) + "\n")
    code, err = merge(capsys, str(sweep))
    assert code == 2 and err == (f"error: shard 1 ({sweep / '1'}): item {foreign['id']!r} is not one "
                                 "of its items; was it run with another config?")
    assert not (sweep / "merged").exists()


def test_a_sample_line_without_id_is_one_line(sweep, capsys):
    samples = sweep / "0" / "samples.jsonl"
    lines = samples.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["id"]
    samples.write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    code, err = merge(capsys, str(sweep))
    assert code == 2 and err == (f"error: {samples}:2: sample without 'id'; not written by "
                                 "adafuse.run")
    assert not (sweep / "merged").exists()


def test_merge_bad_arguments_and_help(sweep, capsys, tmp_path):
    code, out = merge(capsys, "--help")
    assert code == 0 and out.startswith("usage: python -m adafuse.merge <sweep folder>")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert merge(capsys, str(sweep), f"out={afile}") == (2, f"error: out={afile} is a file; give a folder")
    assert merge(capsys, str(sweep), "replace=maybe") == (2, "error: replace='maybe'; allowed: true, false")
    shutil.rmtree(sweep / "1")
    code, err = merge(capsys, str(sweep))
    assert code == 2 and "shards [1] of 2 are missing" in err


def set_in(data: dict, keys: list, value) -> dict:
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return data


# (what, file of shard 1, its change, what the one line says after the file's name)
SHARD_DAMAGE = [
    ("config a list", "results.json", lambda d: set_in(d, ["config"], [1]), ": its config is not a mapping"),
    ("shard text", "results.json", lambda d: set_in(d, ["config", "shard"], "one"),
     ": config.shard is 'one', not a count"),
    ("θ text", "results.json", lambda d: set_in(d, ["config", "decoder", "theta_delta"], "0.5"),
     ": decoder.theta_delta is '0.5', not a number"),
    ("task a name", "results.json", lambda d: set_in(d, ["task"], "triviaqa"), ": task is 'triviaqa', not an object"),
    ("models numbers", "results.json", lambda d: set_in(d, ["models"], [1, 2]), ": models is [1, 2], not a list"),
    ("per-model cost a list", "results.json", lambda d: set_in(d, ["cost", "shared_prefix"], [1]),
     ": cost.shared_prefix is [1], not an object"),
    ("model name a lone surrogate", "results.json", lambda d: set_in(d, ["config", "models", 0, "name"], "m\ud800"),
     ": 'config.models.0.name' holds an unpaired surrogate (\\ud800)"),
    ("response a lone surrogate", "samples.jsonl", lambda d: set_in(d, ["response"], " a\ud800"),
     ":1: 'response' holds an unpaired surrogate (\\ud800)"),
    ("response a list", "samples.jsonl", lambda d: set_in(d, ["response"], ["a"]), ":1: 'response' is ['a'], not a string"),
    ("cost text", "samples.jsonl", lambda d: set_in(d, ["cost"], "cheap"), ":1: 'cost' is 'cheap', not an object"),
    ("a round text", "trace.jsonl", lambda d: set_in(d, ["round"], "first"), ":1: 'round' is 'first', not an integer"),
]


def test_a_damaged_shard_is_one_line_naming_its_file_and_field(sweep, capsys):
    """#31.8: merge reads each shard's results.json, samples and trace through the run folder's
    records: a wrong type, or text that is not text (an unpaired surrogate, the JSON escape
    \\ud800), is one line naming the file and the field, exit 2, and nothing is written."""
    for what, name, change, says in SHARD_DAMAGE:
        file = sweep / "1" / name
        kept = file.read_bytes()
        lines = kept.decode().splitlines()
        if name == "results.json":
            file.write_text(json.dumps(change(json.loads(kept))))
        else:
            file.write_text("\n".join([json.dumps(change(json.loads(lines[0]))), *lines[1:]]) + "\n")
        code, err = merge(capsys, str(sweep))
        assert code == 2 and err.count("\n") == 0 and err.startswith(f"error: {file}{says}"), (what, err)
        file.write_bytes(kept)
        assert not (sweep / "merged").exists(), what
    assert merge(capsys, str(sweep))[0] == 0  # each damage undone: the shards merge
