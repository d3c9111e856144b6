"""The committed RESULTS.md against the run folders committed beside it
(results/table1_sized_runs.tar.gz, unpacked under runs/): RESULTS.md is what the command it
names writes from them; every QA task's paired interval for AdaFuse − the better member is
±3.5 points or tighter (issue 30's sizing); and its oracle row, member and AdaFuse values and
n per cell are what the items say, recomputed here from samples.jsonl alone."""

from __future__ import annotations

import json
import re
import shlex
import tarfile
from pathlib import Path

import pytest

from adafuse.compare.results import main

REPO = Path(__file__).resolve().parents[2]
RESULTS_MD = REPO / "RESULTS.md"
TARBALL = REPO / "results" / "table1_sized_runs.tar.gz"
QA = ("triviaqa", "nq", "squad")
MEMBERS = {"greedy_smol": "smollm2-135m-instruct", "greedy_gemma": "gemma3-270m"}
PRECISION = 3.5  # issue 30: every QA task's paired half-width at ±3.5 points or tighter


@pytest.fixture(scope="module")
def text() -> str:
    return RESULTS_MD.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """The tarball unpacked as the README says: `tar xzf ... -C runs`."""
    root = tmp_path_factory.mktemp("runs")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(root, filter="data")
    return root


def table(text: str, heading: str) -> dict[str, list[str]]:
    """The first Markdown table under `heading`: {first cell: the other cells}; key "" holds the
    header's cells."""
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    first = next(i for i, line in enumerate(section) if line.startswith("| "))
    rows: dict[str, list[str]] = {}
    for line in section[first:]:
        if not line.startswith("| "):
            break
        if not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows["" if not rows else cells[0]] = cells[1:]
    return rows


def samples(root: Path, task: str, system: str) -> dict[str, float]:
    path = root / "table1_sized" / task / system / "samples.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {str(r["id"]): float(r["main_score"]) for r in rows}


def test_results_md_is_what_its_command_writes_from_the_committed_runs(text, runs_root, tmp_path):
    command = re.search(r"Written by `([^`]+)`", text).group(1)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "adafuse.compare.results"]
    assert argv[3:] == ["runs/table1_sized", "--out", "RESULTS.md"]  # the tarball's folder, under runs/
    out = tmp_path / "RESULTS.md"
    code = main([str(runs_root / "table1_sized"), "--out", str(out), "--no-html", "--no-png",
                 "--reading", str(REPO / "results" / "reading.md")])
    assert code == 0
    fresh = out.read_text(encoding="utf-8")

    def body(t: str) -> tuple[str, str]:
        head, rest = t.split("\n## Systems × tasks\n", 1)
        numbers, _, reading = rest.partition("\n## Report and plot\n")
        return numbers, reading.split("\n## Reading the numbers\n", 1)[1]

    assert body(fresh) == body(text)


@pytest.mark.parametrize("task", QA)
def test_every_qa_task_reaches_the_sized_precision(text, task):
    rows = table(text, "## AdaFuse against its members, and the oracle")
    assert task in rows[""], f"{task} is not in RESULTS.md's member table"
    col = rows[""].index(task)
    assert int(rows["n (items)"][col]) >= 500
    low, high = map(float, re.search(r"\[(-?[\d.]+), (-?[\d.]+)\]",
                                     rows["AdaFuse − better member [paired 95% CI]"][col]).groups())
    half = float(rows["± (half-width) against the better member"][col].lstrip("±"))
    assert half == pytest.approx((high - low) / 2, abs=0.051)
    assert half <= PRECISION, f"{task}: ±{half} is wider than ±{PRECISION}"


def test_the_oracle_row_and_the_values_are_what_the_items_say(text, runs_root):
    rows = table(text, "## AdaFuse against its members, and the oracle")
    tasks = rows[""]
    for task in QA:
        col = tasks.index(task)
        smol, gemma, ada = (samples(runs_root, task, s) for s in ("greedy_smol", "greedy_gemma", "adafuse"))
        assert set(smol) == set(gemma) == set(ada) and len(ada) == int(rows["n (items)"][col])
        oracle = 100 * sum(max(smol[i], gemma[i]) for i in ada) / len(ada)
        assert float(rows["**oracle**: either member right [95% CI]"][col].split(" [")[0]) == pytest.approx(oracle, abs=0.051)
        assert float(rows["**AdaFuse**"][col]) == pytest.approx(100 * sum(ada.values()) / len(ada), abs=0.051)
        for folder, label in MEMBERS.items():
            values = samples(runs_root, task, folder)
            assert float(rows[label][col]) == pytest.approx(100 * sum(values.values()) / len(values), abs=0.051)


def test_n_per_cell_is_each_run_folders_item_count(text, runs_root):
    grid = table(text, "## Systems × tasks")
    tasks = [cell.split("<br>")[0] for cell in grid[""]]
    sweep = runs_root / "table1_sized"
    for task in {p.parent.parent.name for p in sweep.glob("*/*/samples.jsonl")}:
        col = tasks.index(task)
        counts = [sum(1 for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
                  for p in sorted((sweep / task).glob("*/samples.jsonl"))]
        assert grid["items"][col] == ", ".join(sorted({str(n) for n in counts}))
        marked = sorted(int(m) for row, cells in grid.items() if row not in ("", "items")
                        for m in re.findall(r"\(n=(\d+)\)", cells[col]))
        assert marked == sorted(n for n in counts if n < max(counts))
