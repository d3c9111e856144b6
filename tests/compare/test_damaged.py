"""compare survives damaged run folders (issue 31, item 8): each kind of damage below, done to
one run of a sweep, leaves that run out with one note naming the file, and the others are
compared and reported (terminal and HTML) without a traceback. Nothing a folder holds reaches
the terminal as a control sequence, and a YAML alias bomb is refused within seconds and little
memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from compare_helpers import make_run, make_sample

from adafuse.compare.__main__ import main


def rewrite_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_in(keys, value):
    def change(data):
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


def garbage_mid_samples(run: Path) -> str:
    lines = (run / "samples.jsonl").read_text().splitlines()
    lines.insert(1, "{this is not json")
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return "samples.jsonl:2"


def sample_field(field, value):
    def damage(run: Path) -> str:
        lines = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
        lines[2][field] = value
        (run / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return "samples.jsonl:3"
    return damage


def results_change(change):
    def damage(run: Path) -> str:
        rewrite_json(run / "results.json", change)
        return "results.json"
    return damage


def results_text(text):
    def damage(run: Path) -> str:
        (run / "results.json").write_text(text)
        return "results.json"
    return damage


def hydra_yaml(text):
    def damage(run: Path) -> str:
        (run / "results.json").unlink()  # killed before results.json held its config
        (run / ".hydra").mkdir()
        (run / ".hydra" / "config.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
        return "config.yaml"
    return damage


ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))

DAMAGE = {
    "garbage line mid samples.jsonl": garbage_mid_samples,
    "a sample's scores hold NaN": sample_field("scores", {"em_lenient_triviaqa": float("nan")}),
    "a sample's response is a number": sample_field("response", 3),
    "a sample's span_words is text": sample_field("span_words", "1,2"),
    "a sample's id is an object": sample_field("id", {"a": 1}),
    "a sample is a list": lambda run: (run.joinpath("samples.jsonl").write_text('[1, 2]\n{"id": 0}\n'),
                                       "samples.jsonl:1")[1],
    "θ is a string": results_change(set_in(["config", "decoder", "theta_delta"], "abc")),
    "max_words is a list of lists": results_change(set_in(["config", "decoder", "max_words"], [[1]])),
    "model_index is text": results_change(set_in(["config", "decoder", "model_index"], "one")),
    "a model spec is a number": results_change(set_in(["config", "models"], [1.5, {"name": 3}])),
    "task name is a list": results_change(set_in(["config", "task", "name"], ["triviaqa"])),
    "main metric is NaN": results_change(set_in(["metrics", "em_lenient_triviaqa"], float("nan"))),
    "main metric is infinite": results_change(set_in(["metrics", "em_lenient_triviaqa"], float("inf"))),
    "main_metric is a list": results_change(set_in(["main_metric"], ["x"])),
    "shard is text": results_change(set_in(["config", "shard"], "one")),
    # text that is not text: an unpaired surrogate (the JSON escape \ud800) cannot be printed
    # or written as UTF-8
    "a model name holds a lone surrogate": results_change(set_in(["config", "models", 0, "name"], "m\ud800")),
    "a metric's name holds a lone surrogate": results_change(set_in(["metrics", "x\udfff"], 0.5)),
    "a sample's response holds a lone surrogate": sample_field("response", " Paris\ud800"),
    "a sample's gold holds a lone surrogate": sample_field("gold", ["\udc00Paris"]),
    "config.yaml holds a lone surrogate": hydra_yaml('models: ["m\\ud800"]\ntask: {name: triviaqa}\n'),
    "results.json is truncated": results_text('{"status": "complete", "config": {'),
    "results.json is nested too deep": results_text("[" * 100000 + "]" * 100000),
    "config.yaml is a YAML alias bomb": hydra_yaml(ALIAS_BOMB),
    "config.yaml refers to itself": hydra_yaml("models: &m [*m]\ntask: {name: triviaqa}\n"),
    "config.yaml is a list": hydra_yaml("- 1\n- 2\n"),
    "config.yaml is not UTF-8": hydra_yaml(b"models: [\xff]\ntask: {name: triviaqa}\n"),
    "config.yaml multiplies ${} references": hydra_yaml(
        "a: " + "x" * 1000 + "\n" + "".join(f"{c}: '{('${' + p + '}') * 10}'\n"
                                          for p, c in zip("abcdefgh", "bcdefghi"))
        + "models: [${i}]\ntask: {name: triviaqa}\ndecoder: {name: adafuse}\n"),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_a_damaged_run_is_left_out_with_a_note_naming_its_file(damage, tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root / "good", main=0.5)
    make_run(root / "single", decoder="greedy", theta=None, max_words=None, model_index=0, main=0.25)
    bad = make_run(root / "bad", theta=0.3, main=0.75)
    file = DAMAGE[damage](bad)
    report = tmp_path / "report.html"
    assert main([str(root), "--html", str(report)]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith(f"note: {bad}:")]
    assert len(notes) == 1 and file in notes[0] and notes[0].endswith("skipped"), err
    assert "Traceback" not in out + err
    assert "θ_Δ=0.3" not in out and "bad" not in out.split("Table 1")[0]  # left out of the tables
    assert "good" in out and report.read_text().count("<svg") >= 1


def test_the_alias_bomb_is_refused_within_seconds_and_little_memory(tmp_path):
    """`compare` on a folder holding a 1 KB alias bomb (10^9 strings once expanded), in a
    process of its own so its peak memory is its own."""
    bad = make_run(tmp_path / "runs" / "bomb")
    hydra_yaml(ALIAS_BOMB)(bad)
    assert len(ALIAS_BOMB) < 1024
    probe = textwrap.dedent(f"""
        import re
        from adafuse.compare.__main__ import main
        status = main([{str(tmp_path / 'runs')!r}])
        # this process's own peak (ru_maxrss would keep the forking pytest's across exec)
        with open("/proc/self/status") as fh:
            peak_mb = int(re.search(r"VmHWM:\\s+(\\d+) kB", fh.read()).group(1)) / 1024
        print(status, peak_mb)
    """)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    status, peak_mb = proc.stdout.split()
    assert status == "2" and "config.yaml" in proc.stderr and "aliases" in proc.stderr
    assert float(peak_mb) < 500, (peak_mb, proc.stderr)


def test_escape_sequences_from_a_folder_are_printed_escaped(tmp_path, capsys):
    root = tmp_path / "runs"
    evil = "\x1b]0;pwned\x07\x1b[2J\u202e"
    make_run(root / f"run{evil[:4]}", main=0.5, models=[{"name": f"smol{evil}"}, {"name": "gemma3-270m"}],
             samples=[make_sample(i, f" Paris{evil}", ["Paris"], 1.0, [1], 0.5) for i in range(4)])
    make_run(root / "single", decoder="greedy", theta=None, max_words=None, model_index=1, main=0.25)
    assert main([str(root), "--html", str(tmp_path / "r.html")]) == 0
    out, err = capsys.readouterr()
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "smol\\x1b]0;pwned\\x07" in out
