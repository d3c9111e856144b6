"""Data-parallel shards, through the submitit launcher on this CPU, merged back into one run."""

from __future__ import annotations

import json

import pytest

from adafuse.merge import main as merge_main
from run_helpers import cli, read_jsonl

TASK = ["task=triviaqa", "limit=5", "logger=none"]
SAME = ("id", "index", "prompt", "response", "extracted", "gold", "scores", "rounds", "span_words")


def same_items(a: list[dict], b: list[dict]) -> bool:
    """Equal in what was decoded; timings and costs are not compared (a sitting's seconds differ)."""
    return [[s[k] for k in SAME] for s in a] == [[s[k] for k in SAME] for s in b]


@pytest.fixture
def whole_run(adafuse_run, tmp_path):
    res = adafuse_run(*TASK, f"hydra.run.dir={tmp_path / 'whole'}")
    assert res.code == 0, res.err
    return tmp_path / "whole"


@pytest.mark.filterwarnings(r"ignore:(?s).*is validated against ConfigStore schema")
def test_submitit_local_sweep_of_shards_then_merge(tiny_conf, tmp_path, whole_run, capsys):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra")
    sweep = tmp_path / "sweep"
    res = cli(tiny_conf, "-m", "hydra/launcher=submitit_local", *TASK, "shard=0,1", "num_shards=2",
              f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    assert (sweep / ".submitit").is_dir()  # the jobs ran through submitit
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "results.json").is_file())
    assert jobs == ["0_shard=0", "1_shard=1"]
    assert [len(read_jsonl(sweep / j / "samples.jsonl")) for j in jobs] == [2, 3]

    assert merge_main([str(sweep)]) == 0
    assert "2 shards, 5 items" in capsys.readouterr().out
    merged = json.loads((sweep / "merged" / "results.json").read_text())
    whole = json.loads((whole_run / "results.json").read_text())
    assert merged["metrics"] == whole["metrics"] and merged["n_items"] == 5
    assert merged["config"] == whole["config"]  # a merged run reads like one done in one job
    assert same_items(read_jsonl(sweep / "merged" / "samples.jsonl"), read_jsonl(whole_run / "samples.jsonl"))
    assert read_jsonl(sweep / "merged" / "trace.jsonl") == read_jsonl(whole_run / "trace.jsonl")


def test_merge_refuses_a_missing_or_unfinished_shard(adafuse_run, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    res = adafuse_run(*TASK, "shard=0", "num_shards=3", f"hydra.run.dir={sweep / '0'}")
    assert res.code == 0, res.err
    capsys.readouterr()
    assert merge_main([str(sweep)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: shards [1, 2] of 3 are missing (found [0]); run them, then merge again")
    for shard in (1, 2):
        assert adafuse_run(*TASK, f"shard={shard}", "num_shards=3", f"hydra.run.dir={sweep / str(shard)}").code == 0
    results = json.loads((sweep / "2" / "results.json").read_text())
    (sweep / "2" / "results.json").write_text(json.dumps({**results, "status": "running"}))
    capsys.readouterr()
    assert merge_main([str(sweep)]) == 2
    assert "shards not finished" in capsys.readouterr().err
    assert not (sweep / "merged").exists()


def test_shards_cover_the_items_once():
    from adafuse.tasks.selection import shard_slice

    for n in (0, 1, 5, 17):
        for k in (1, 2, 3, 8):
            parts = [list(shard_slice(n, i, k)) for i in range(k)]
            assert sum(parts, []) == list(range(n))


def test_more_shards_than_items_runs_and_merges(adafuse_run, tmp_path, whole_run, capsys):
    """5 items in 7 shards: two shards hold no item; in a sweep they have nothing to do (no
    folder, exit 0), and merge does without them."""
    from adafuse.tasks.selection import shard_slice

    sweep = tmp_path / "sweep"
    res = adafuse_run("-m", *TASK, f"shard={','.join(map(str, range(7)))}", "num_shards=7",
                      f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    held = sorted(int(p.name.split("_")[0]) for p in sweep.iterdir() if (p / "results.json").is_file())
    assert held == [i for i in range(7) if shard_slice(5, i, 7)]
    assert not any(p.is_dir() and p.name.startswith(tuple(f"{i}_" for i in range(7)))
                   and not (p / "results.json").exists() for p in sweep.iterdir())
    capsys.readouterr()
    assert merge_main([str(sweep)]) == 0, capsys.readouterr().err
    merged = json.loads((sweep / "merged" / "results.json").read_text())
    whole = json.loads((whole_run / "results.json").read_text())
    assert merged["n_items"] == 5 and merged["metrics"] == whole["metrics"]
    assert merged["inputs"] == whole["inputs"]  # the merged run's input digests are one job's
    assert same_items(read_jsonl(sweep / "merged" / "samples.jsonl"), read_jsonl(whole_run / "samples.jsonl"))


def test_a_lone_shard_of_no_items_is_refused(adafuse_run, tmp_path):
    from adafuse.tasks.selection import shard_slice

    empty = next(i for i in range(7) if not shard_slice(5, i, 7))
    res = adafuse_run(*TASK, f"shard={empty}", "num_shards=7", f"hydra.run.dir={tmp_path / 'r'}")
    assert res.code == 2 and res.err_lines == [
        f"error: shard={empty} of num_shards=7 holds no items (the task has 5); use num_shards <= 5"], res.err
    assert not (tmp_path / "r").exists()
