"""The run-folder records: their JSON form is what runs have written all along (the Table-1
runs of results/ are read back byte for byte), and a missing field is named, not guessed."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from adafuse import runfolder
from adafuse.errors import AdaFuseError

TARBALL = Path(__file__).resolve().parents[2] / "results" / "table1_embedded_runs.tar.gz"


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory) -> list[Path]:
    """The committed Table-1 run folders, written by an earlier version."""
    root = tmp_path_factory.mktemp("table1")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(root, filter="data")
    runs = sorted(p.parent for p in root.rglob(runfolder.RESULTS))
    assert len(runs) > 50
    return runs


def test_old_run_folders_load_and_their_cost_totals_are_recomputed_exactly(old_runs):
    for run in old_runs:
        results = runfolder.Results(runfolder.read_json(run / runfolder.RESULTS), str(run))
        assert results.complete
        stored = results.cost
        assert stored is not None and stored.shared_prefix is None  # written before it had an entry
        samples = [runfolder.Sample(r) for r in runfolder.read_jsonl(run / runfolder.SAMPLES)]
        names = [m["name"] for m in results.get("models")]
        again = runfolder.totals(samples, names)
        assert again.to_json() == results.get("cost"), run
        assert stored.to_json() == results.get("cost")  # from_json and to_json are inverses


def test_the_json_form_of_each_line_is_the_line_as_written(old_runs):
    for run in old_runs[:20]:
        for name in (runfolder.SAMPLES, runfolder.TRACE):
            path = run / name
            if not path.is_file():
                continue
            records = runfolder.read_jsonl(path)
            kind = runfolder.Sample if name == runfolder.SAMPLES else runfolder.TraceRow
            text = "".join(runfolder.json_line(kind(r).to_json()) for r in records)
            assert text.encode("utf-8") == path.read_bytes(), path


def test_extra_fields_are_kept_and_missing_ones_are_named():
    sample = runfolder.Sample({"id": 3, "index": 0, "response": "x", "model_names": ["a", "b"]}, "s:1")
    assert sample.key == "3" and sample.to_json()["model_names"] == ["a", "b"]
    with pytest.raises(AdaFuseError, match=r"^s:1: sample has no 'rounds' \(written by another version"):
        sample.need("rounds")
    with pytest.raises(AdaFuseError, match=r"^s:2: sample without 'id'; not written by adafuse.run$"):
        runfolder.Sample({"index": 0}, "s:2")
    with pytest.raises(AdaFuseError, match=r"^r: a results.json must be a JSON object, not list$"):
        runfolder.Results([1, 2], "r")
    with pytest.raises(AdaFuseError, match=r"^t:1: trace row without 'round'"):
        runfolder.TraceRow({"id": 0, "item": 0}, "t:1")
    with pytest.raises(AdaFuseError, match=r"cost has no 'rounds'"):
        runfolder.CostTotals.from_json({"forwards": 1, "tokens_fed": 2})
    running = {"status": "running", "config": {}, "cost": {"shared_prefix": {}}}
    assert runfolder.Results(running).cost is None  # a run in progress has no totals yet
    with pytest.raises(AdaFuseError, match=r"^r: cost has no 'rounds'"):
        _ = runfolder.Results({**running, "status": "complete",
                               "cost": {"forwards": 1, "tokens_fed": 2}}, "r").cost


def _sample(i: int, forwards: int, tokens: int) -> dict:
    return {"id": i, "rounds": 2, "words": 3, "new_tokens": 4, "boundary_merges": 0, "near_ties": 1,
            "span_words": [1, 2], "uncertain_share": 0.5,
            "cost": {"forwards": forwards, "tokens_fed": tokens,
                     "models": {"a": {"forwards": forwards, "tokens_fed": tokens}}},
            "seconds": {"decode": 1.0, "models": {"a": 0.5}}}


def test_totals_count_the_shared_prefix_once_as_its_own_entry():
    samples = [_sample(0, 5, 50), _sample(1, 7, 30)]
    prefix = {"a": runfolder.ModelTotals(forwards=1, tokens_fed=100, seconds=0.25)}
    plain, with_prefix = runfolder.totals(samples, ["a", "b"]), runfolder.totals(samples, ["a", "b"], prefix)
    assert (plain.forwards, plain.tokens_fed) == (12, 80)
    assert (with_prefix.forwards, with_prefix.tokens_fed) == (13, 180)
    assert with_prefix.per_model["a"].to_json() == {"forwards": 13, "tokens_fed": 180, "seconds": 1.25}
    assert with_prefix.per_model["b"].to_json() == {"forwards": 0, "tokens_fed": 0, "seconds": 0.0}
    out = with_prefix.to_json()
    assert out["shared_prefix"] == {"a": {"forwards": 1, "tokens_fed": 100, "seconds": 0.25}}
    assert "shared_prefix" not in plain.to_json()
    assert runfolder.CostTotals.from_json(out) == with_prefix
    assert (out["mean_span_words"], out["mean_uncertain_share"], out["forwards_per_item"]) == (1.5, 0.5, 6.5)


def test_atomic_writes_leave_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "samples.jsonl"
    runfolder.write_jsonl_atomic(path, [{"id": 0}])

    def records():
        yield {"id": 1}
        raise OSError("disk full")

    with pytest.raises(OSError):
        runfolder.write_jsonl_atomic(path, records())
    assert path.read_text() == '{"id": 0}\n' and [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]
    runfolder.write_json_atomic(tmp_path / "results.json", {"status": "running"})
    assert json.loads((tmp_path / "results.json").read_text()) == {"status": "running"}
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644


def test_a_torn_last_line_is_repaired_and_a_damaged_one_named(tmp_path):
    path = tmp_path / "trace.jsonl"
    runfolder.append_jsonl(path, [{"id": 0, "item": 0, "round": 0}])
    with open(path, "a") as fh:
        fh.write('{"id": 0, "item": 0, "rou')
    assert runfolder.read_jsonl(path, repair=True) == [{"id": 0, "item": 0, "round": 0}]
    assert path.read_text() == '{"id": 0, "item": 0, "round": 0}\n'
    path.write_text('{"id": 0}\n[1]\n{"id": 2}\n')
    with pytest.raises(AdaFuseError, match=r"trace.jsonl:2: not a JSON object; the file is damaged"):
        runfolder.read_jsonl(path)
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(AdaFuseError, match=r"results.json: not valid JSON; the file is damaged"):
        runfolder.read_json(tmp_path / "results.json")


def test_the_package_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, adafuse.runfolder; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_seconds_per_item_is_steady_state_with_the_warm_up_apart():
    from adafuse.runfolder import CostTotals, totals

    def sample(i, seconds, warmup=False):
        timing = {"decode": seconds, "models": {"a": seconds}}
        if warmup:
            timing["warmup"] = True
        return {"id": i, "cost": {"forwards": 2, "tokens_fed": 5, "models": {"a": {"forwards": 2, "tokens_fed": 5}}},
                "rounds": 1, "words": 1, "new_tokens": 1, "boundary_merges": 0, "near_ties": 0,
                "seconds": timing}

    fresh = totals([sample(0, 9.0, warmup=True), sample(1, 1.0), sample(2, 3.0)], ["a"])
    assert fresh.seconds_per_item == 2.0 and fresh.decode_seconds == 13.0
    assert fresh.warmup_items == 1 and fresh.warmup_seconds == 9.0
    back = CostTotals.from_json(fresh.to_json())
    assert (back.warmup_items, back.warmup_seconds, back.seconds_per_item) == (1, 9.0, 2.0)
    # a folder from before the flag: the mean over all items, no warm-up entry
    old = totals([sample(0, 9.0), sample(1, 1.0), sample(2, 3.0)], ["a"])
    assert old.seconds_per_item == round(13.0 / 3, 3) and "warmup_items" not in old.to_json()
    # one item alone, its sitting's first: still counted (nothing else to take the mean of)
    assert totals([sample(0, 9.0, warmup=True)], ["a"]).seconds_per_item == 9.0
