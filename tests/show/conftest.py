"""Run folders for the show tests, built once a session on the tiny models: every decoder
(the `decoders` sweep preset: each model alone, AdaFuse, fixed_span, union_topk, rerank) on two
TriviaQA items, a copy of the AdaFuse run cut back to what a killed run leaves, a copy with the
fields older versions did not write taken out, and two folders of the Table-1 tarball."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

RUN_TESTS = Path(__file__).resolve().parents[1] / "run"
sys.path.insert(0, str(RUN_TESTS))  # run_helpers, and the runner tests' fixtures below

from run_helpers import REPO, cli, job_dirs, read_jsonl  # noqa: E402

_spec = importlib.util.spec_from_file_location("run_conftest", RUN_TESTS / "conftest.py")
_run_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_run_conftest)
tiny_conf = _run_conftest.tiny_conf  # the tiny models (session-wide)
quiet_env = _run_conftest.quiet_env
adafuse_run = _run_conftest.adafuse_run

JOBS = ["greedy_0", "greedy_1", "adafuse", "fixed_span", "union_topk", "rerank"]
TARBALL = REPO / "results" / "table1_embedded_runs.tar.gz"
OLD = ["table1_embedded/triviaqa/adafuse", "table1_embedded/triviaqa/greedy_smol"]
NEW_FIELDS = ("question", "models")  # of a sample; a trace row: models, proposer_names


@pytest.fixture(scope="session")
def runs(tiny_conf, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("show")
    sweep = root / "sweep"
    res = cli(tiny_conf, "-m", "+sweep=decoders", "task=triviaqa", "limit=2", "logger=none",
              "max_new_tokens=6", f"hydra.sweep.dir={sweep}")
    assert res.code == 0, res.err
    found = dict(zip(JOBS, job_dirs(sweep)))
    found["partial"] = _partial(found["adafuse"], root / "partial")
    found["stripped"] = _stripped(found["adafuse"], root / "stripped")
    return found


def _partial(run: Path, to: Path) -> Path:
    """What a run killed during its second item leaves: the header in results.json (status
    running), the first item's sample and trace lines, half of the next sample line."""
    shutil.copytree(run, to)
    results = json.loads((run / "results.json").read_text())
    kept = ("config", "task", "versions", "git", "run_dir", "sweep_dir", "started")
    header = {"status": "running", **{k: results[k] for k in kept}}
    (to / "results.json").write_text(json.dumps(header))
    first, second = (run / "samples.jsonl").read_text().splitlines()[:2]
    (to / "samples.jsonl").write_text(first + "\n" + second[: len(second) // 2])
    rows = [r for r in read_jsonl(run / "trace.jsonl") if r["item"] == 0]
    (to / "trace.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return to


def _stripped(run: Path, to: Path) -> Path:
    """The run as an older version wrote it: no model names, no question in its records."""
    shutil.copytree(run, to)
    samples = [{k: v for k, v in s.items() if k not in NEW_FIELDS}
               for s in read_jsonl(run / "samples.jsonl")]
    rows = read_jsonl(run / "trace.jsonl")
    for row in rows:
        row.pop("models")
        for p in row["proposals"]:
            p.pop("proposer_names")
    (to / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (to / "trace.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return to


@pytest.fixture(scope="session")
def old_runs(tmp_path_factory) -> dict[str, Path]:
    """Two folders of the Table-1 tarball (written before the records named their models)."""
    root = tmp_path_factory.mktemp("table1")
    with tarfile.open(TARBALL) as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and any(m.name.startswith(p + "/") for p in OLD)]
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(root, members=members, **safe)
    return {Path(p).name: root / p for p in OLD}
