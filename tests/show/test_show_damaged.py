"""show on damaged run folders (issue 31, item 8) and in a pipe (issue 29, item 10): one
`error:` line naming the file and exit 2, never a traceback; text from the folder printed with
its control characters escaped; `show RUN | head` ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from adafuse.show import main

REPO = Path(__file__).resolve().parents[2]
MEMBER = "table1_embedded/triviaqa/adafuse"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A copy of a Table-1 run folder (30 items, a trace), for one test to damage."""
    with tarfile.open(REPO / "results" / "table1_embedded_runs.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(MEMBER + "/") and m.isfile()]
        tar.extractall(tmp_path, members=members, filter="data")
    return tmp_path / MEMBER


def edit_line(file: Path, number: int, change) -> None:
    lines = file.read_text().splitlines()
    lines[number - 1] = change(lines[number - 1])
    file.write_text("\n".join(lines) + "\n")


def set_field(key, value):
    def change(line):
        record = json.loads(line)
        record[key] = value
        return json.dumps(record)
    return change


def set_results(keys, value):
    def damage(run: Path) -> str:
        data = json.loads((run / "results.json").read_text())
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
        (run / "results.json").write_text(json.dumps(data))
        return "results.json"
    return damage


DAMAGE = {
    "garbage line mid samples.jsonl": lambda run: (edit_line(run / "samples.jsonl", 5, lambda _: "{oops"),
                                                   "samples.jsonl:5")[1],
    "garbage line mid trace.jsonl": lambda run: (edit_line(run / "trace.jsonl", 3, lambda _: "[1, 2"),
                                                 "trace.jsonl:3")[1],
    "a trace row's margins are text": lambda run: (edit_line(run / "trace.jsonl", 2, set_field("margins", "big")),
                                                   "trace.jsonl:2")[1],
    "a proposal's score is text": lambda run: (edit_line(run / "trace.jsonl", 1, set_field(
        "proposals", [{"text": " a", "proposers": [0], "nll": [1.0, 2.0], "score": "low"}])), "trace.jsonl:1")[1],
    "a sample's gold is a number": lambda run: (edit_line(run / "samples.jsonl", 9, set_field("gold", 7)),
                                                "samples.jsonl:9")[1],
    "θ is a string": set_results(["config", "decoder", "theta_delta"], "abc"),
    "the main metric is NaN": set_results(["main"], float("nan")),
    "n_items is text": set_results(["n_items"], "thirty"),
    "the task is a list": set_results(["task"], ["triviaqa"]),
    "a cost total is infinite": set_results(["cost", "seconds_per_item"], float("inf")),
    "results.json is a list": lambda run: ((run / "results.json").write_text("[]"), "results.json")[1],
    "config is a list": set_results(["config"], [1]),
    "the shared prefix's cost is a list": set_results(["cost", "shared_prefix"], [1]),
    # text that is not text: an unpaired surrogate (the JSON escape \ud800) cannot be printed
    "a model name holds a lone surrogate": set_results(["config", "models", 0, "name"], "m\ud800"),
    "a sample's question holds a lone surrogate": lambda run: (
        edit_line(run / "samples.jsonl", 9, set_field("question", "Q\ud800?")), "samples.jsonl:9")[1],
    "a trace row's winner text holds a lone surrogate": lambda run: (
        edit_line(run / "trace.jsonl", 2, set_field("winner_text", "\udfff")), "trace.jsonl:2")[1],
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
@pytest.mark.parametrize("extra", [[], ["item=8"], ["--json"]], ids=["list", "item", "json"])
def test_a_damaged_folder_is_one_error_line_naming_its_file(damage, extra, run_dir, capsys):
    file = DAMAGE[damage](run_dir)
    status = main([str(run_dir), *extra])
    out, err = capsys.readouterr()
    assert status == 2 and out == "", out
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and file in err, err


def test_escape_sequences_in_a_folder_are_shown_escaped(run_dir, capsys):
    evil = "\x1b]0;pwned\x07\x1b[31m\u202e\x9b"
    edit_line(run_dir / "samples.jsonl", 9, set_field("response", f" Niger{evil}"))
    edit_line(run_dir / "samples.jsonl", 9, set_field("question", f"Q{evil}?"))
    for extra in ([], ["item=8"], ["--json"]):
        assert main([str(run_dir), *extra]) == 0
        out = capsys.readouterr().out
        for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
            assert raw not in out, (extra, out)
    assert main([str(run_dir), "item=8", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["item"]["response"] == f" Niger{evil}"  # the same data, only escaped in print


CLOSED_PIPE = """
import os, sys
read_end, write_end = os.pipe()
os.close(read_end)  # what reads the output has gone, as `| head` does after its lines
os.dup2(write_end, 1)
from {module} import main
status = main({argv!r})
sys.stderr.write(f"status {{status}}\\n")
"""


@pytest.mark.parametrize("module", ["adafuse.show", "adafuse.compare.__main__"])
def test_a_closed_pipe_ends_quietly(module, run_dir):
    argv = [str(run_dir)]
    proc = subprocess.run([sys.executable, "-c", CLOSED_PIPE.format(module=module, argv=argv)],
                          capture_output=True, text=True, timeout=300)
    assert proc.stderr.strip().splitlines()[-1] == "status 141", proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 0


def test_a_folder_name_that_is_not_utf8_is_printed_escaped(run_dir, tmp_path):
    """A folder's name of bytes that are not UTF-8 reaches Python as unpaired surrogates, which
    no encoding prints: show and compare (terminal and HTML) write them as escapes."""
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/runs/run\xff"))
    odd.parent.mkdir()
    run_dir.rename(odd)
    report = tmp_path / "report.html"
    for argv in (["adafuse.show", str(odd)], ["adafuse.show", str(odd), "item=8"],
                 ["adafuse.compare", str(odd.parent), "--html", str(report)]):
        proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, timeout=300,
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
        assert b"run\\udcff" in proc.stdout + proc.stderr, argv
    assert "run\\udcff" in report.read_text(encoding="utf-8")
