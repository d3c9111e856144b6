"""lm-eval's door: `python -m adafuse.lm_eval --help` lists our `--model_args` keys (from the
decoder registry, with meanings and defaults) before lm-eval's own help, and the README's
lm-eval section holds no command that ends in a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from adafuse.lm_eval.args import OWN_KEYS, decoder_keys, help_text

REPO = Path(__file__).resolve().parents[2]


def key_lines(text: str) -> dict[str, str]:
    """{key: its meaning and default} from the help's arguments section (wrapped lines joined)."""
    section = text.split("\narguments:\n", 1)[1].split("\n\n", 1)[0]
    joined = re.sub(r"\n {4,}", " ", section)
    return {m.group(1): m.group(2) for m in re.finditer(r"^  (\w+) +(.+)$", joined, re.M)}


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["-h"]])
def test_help_lists_our_model_args_before_lm_evals_own(argv):
    proc = subprocess.run([sys.executable, "-m", "adafuse.lm_eval", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ours, _, theirs = proc.stdout.partition("lm-eval's own help follows.")
    assert "usage: lm-eval" in theirs and ours.startswith("usage: python -m adafuse.lm_eval run --model adafuse")
    lines = key_lines(ours)
    assert set(lines) >= {*OWN_KEYS, *decoder_keys()}
    assert lines["theta_delta"] == "float in [0, 1] (θ_Δ in reports); for adafuse (default: 0.7)"
    assert lines["model_index"] == "int in [0, the last model]; for greedy (default: 0)"
    assert lines["span_words"].endswith("for fixed_span (default: 3)") and lines["top_k"].endswith("for union_topk (default: 10)")
    assert lines["weights"].startswith("numbers joined by '+'") and lines["weights"].endswith("(default: equal)")
    assert "smol_gemma" in lines["models"] and lines["decoder"].endswith("(default: adafuse)")
    assert "threads=auto" in ours and "OMP_NUM_THREADS" in ours


def test_other_subcommands_keep_lm_evals_help_alone():
    proc = subprocess.run([sys.executable, "-m", "adafuse.lm_eval", "ls", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "theta_delta" not in proc.stdout and "usage: lm-eval list" in proc.stdout


def test_a_registered_decoder_shows_its_own_keys(monkeypatch):
    from adafuse.decoding import DECODERS

    class Lead:
        name = "lead_gate"
        bounds = {"lead": (0, 1)}
        labels = {"lead": "λ"}

        def __init__(self, models, *, lead: float = 0.25, mode: str = "cached", engine=None):
            pass

    monkeypatch.setitem(DECODERS, "lead_gate", Lead)
    lines = key_lines(help_text())
    assert lines["lead"] == "float in [0, 1] (λ in reports); for lead_gate (default: 0.25)"
    assert "lead_gate" in lines["mode"] and "lead_gate" in lines["decoder"]


def lm_eval_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("\n## lm-evaluation-harness\n", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_lm_eval_blocks_hold_only_commands_that_work():
    """lm-eval's own `lm_eval run --model adafuse` ends in a traceback with the lm-eval installed
    here (0.4.13 reads no entry points): the README may name it only outside a runnable block,
    and says so; the wrapper's --help is there."""
    section = lm_eval_section()
    runnable = "\n".join(re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", section, re.S))
    commands = [line for line in runnable.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands and not any(line.lstrip().startswith("lm_eval") for line in commands)
    assert "python -m adafuse.lm_eval --help" in runnable
    assert "`lm_eval run --model adafuse ...`, does **not** work" in section
    assert "threads=auto" in section  # the command's thread control is stated


def test_lm_evals_own_command_fails_as_the_readme_says():
    """What the README states about the installed lm-eval, measured: no model named adafuse."""
    proc = subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "adafuse", "--model_args",
                           "models=smol_gemma", "--tasks", "capitals_generate", "--include_path",
                           "adafuse/lm_eval/example_tasks"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Attempted to load model 'adafuse', but no model for this name found!" in proc.stderr
    assert "Attempted to load model 'adafuse', but no model for this name found!" in lm_eval_section().replace("\n", " ")
