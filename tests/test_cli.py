"""One command-line surface (adafuse/cli.py): every entry point answers bad input with one
`error:` line on stderr and exit status 2, argparse's usage errors included (its own parsers',
Hydra's and lm-eval's), and its --help is one page shape (cli.render's: usage, summary,
arguments, examples, notes), the Hydra entry points' (run, serve) included."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adafuse import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module,args", [
    ("adafuse.run", ["--bogus"]),
    ("adafuse.serve", ["--bogus"]),
    ("adafuse.lm_eval", ["--bogus"]),
    ("adafuse.compare", ["runs", "--bogus"]),
    ("adafuse.compare", []),  # a missing argument: argparse's other error
    ("adafuse.compare.results", ["runs", "--bogus"]),
    ("adafuse.show", ["--bogus"]),
    ("adafuse.score", ["--bogus"]),
    ("adafuse.merge", ["--bogus"]),
    ("adafuse.merge", ["a", "b"]),  # two folders: no longer a bare usage line
], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_bad_option_is_one_error_line_and_exit_2(module, args, tmp_path):
    if module == "adafuse.lm_eval":
        pytest.importorskip("lm_eval")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "usage: " not in lines[0].split(";")[0], lines


def test_the_error_line_is_one_line_whatever_the_message():
    assert cli.error_line("bad\nvalue \x1b[31m\t") == "error: bad\\nvalue \\x1b[31m"


def test_the_parser_reports_a_usage_error_on_one_line(capsys):
    parser = cli.ArgumentParser(prog="python -m adafuse.x")
    parser.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--n", "two"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("error: argument --n: invalid int value: 'two'; "
                                       "see python -m adafuse.x --help\n")


def test_other_parsers_are_one_line_inside_usage_errors_only(capsys):
    theirs = argparse.ArgumentParser(prog="theirs")
    with cli.usage_errors("python -m adafuse.y"), pytest.raises(SystemExit):
        theirs.parse_args(["--bogus"])
    assert capsys.readouterr().err == "error: unrecognized arguments: --bogus; see python -m adafuse.y --help\n"
    with pytest.raises(SystemExit):  # argparse's own again, after the block
        theirs.parse_args(["--bogus"])
    assert capsys.readouterr().err.startswith("usage: theirs")


def help_sections(page: str) -> list[int]:
    """Where each of cli.SECTIONS starts in a --help page (-1: missing): `usage:` at the start,
    the others each on a line of its own."""
    return [0 if page.startswith(head) else -1 if head == "usage:" else page.find(f"\n{head}\n")
            for head in cli.SECTIONS]


@pytest.mark.parametrize("module", ["adafuse.run", "adafuse.serve", "adafuse.show", "adafuse.score",
                                    "adafuse.merge", "adafuse.compare", "adafuse.compare.results",
                                    "adafuse.lm_eval"])
def test_every_entry_points_help_has_the_one_shape(module, tmp_path):
    """`--help` of every entry point is one spec rendered by cli.render: usage first, then the
    sections in order (lm_eval's page comes before lm-eval's own help); it writes nothing."""
    if module == "adafuse.lm_eval":
        pytest.importorskip("lm_eval")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    page = done.stdout.split("lm-eval's own help follows.")[0]
    assert page.splitlines()[0].startswith(f"usage: python -m {module} "), page[:300]
    where = help_sections(page)
    assert -1 not in where and where == sorted(where), (dict(zip(cli.SECTIONS, where)), page)
    assert "powered by Hydra" not in done.stdout
    assert not any(tmp_path.iterdir())  # --help writes no run folder, no log file


def help_arguments(page: str) -> dict[str, str]:
    """The arguments section of a --help page (adafuse.cli.render's shape): each argument's key
    (`models` for `models=SET`, `+sweep` for `+sweep=NAME`) -> its name, meaning and default."""
    lines = page.split("\narguments:\n", 1)[1].split("\n\nexamples:\n", 1)[0].splitlines()
    found: dict[str, str] = {}
    key = ""
    for line in lines:
        if line[2] != " ":  # an argument's first line; its meaning goes on indented below
            key = line.split()[0].split("=")[0].rstrip(",")  # `-m, --multirun`: -m
        found[key] = found.get(key, "") + " " + line.strip()
    return found


def test_the_servers_help_lists_its_groups_and_keys(tmp_path):
    """The server's page lists its own groups (no task, sweep or experiment) and keys, with this
    invocation's values, and what it serves."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, "-m", "adafuse.serve", "--help", "serve.port=9001"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("usage: python -m adafuse.serve ") and "powered by Hydra" not in text
    args = help_arguments(text)
    assert "(default: smol_gemma)" in args["models"] and "(default: adafuse)" in args["decoder"]
    assert not {"+sweep", "+experiment", "task", "logger", "hydra/launcher", "limit", "resume"} & set(args)
    assert "(default: 9001)" in args["serve.port"] and "(default: 8)" in args["batch_size"]
    assert "(default: 256)" in args["max_new_tokens"] and "(default: 127.0.0.1)" in args["serve.host"]
    for key in ("threads", "dtype", "device", "serve.model_id", "serve.grace_seconds"):
        assert key in args
    assert "/v1/chat/completions" in text and "exits with status 2" in text
    assert not any(tmp_path.iterdir())
