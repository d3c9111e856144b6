"""One command-line surface (adafuse/cli.py): every entry point answers bad input with one
`error:` line on stderr and exit status 2, argparse's usage errors included (its own parsers',
Hydra's and lm-eval's)."""

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
