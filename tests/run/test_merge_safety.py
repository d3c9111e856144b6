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
    whole = sweep.parent / "whole"
    before = {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()}
    code, err = merge(capsys, str(sweep), f"out={whole}")
    assert code == 2 and err.count("\n") == 0
    assert err == (f"error: {whole} already holds a run (results.json, samples.jsonl, trace.jsonl, "
                   ".hydra); choose another out=, or pass replace=true to replace it")
    assert {p.name: p.read_bytes() for p in whole.iterdir() if p.is_file()} == before

    assert merge(capsys, str(sweep))[0] == 0
    merged = sweep / "merged"
    first = (merged / "samples.jsonl").read_bytes()
    code, err = merge(capsys, str(sweep))  # merging twice
    assert code == 2 and "already holds a run" in err
    assert (merged / "samples.jsonl").read_bytes() == first

    code, out = merge(capsys, str(sweep), f"out={whole}", "replace=true")
    assert code == 0, out
    assert not (whole / ".hydra").exists()  # nothing of the old run contradicts the merged one
    assert (whole / "samples.jsonl").read_bytes() == first
    assert json.loads((whole / "results.json").read_text())["merged_from"] == [
        str(sweep / "0"), str(sweep / "1")]


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
