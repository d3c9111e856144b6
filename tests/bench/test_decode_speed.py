"""bench/decode_speed.py: both dtypes side by side, the ratios against the issue's targets,
the host share of AdaFuse's decodes; run through its main() on the tiny pair."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import tiny_hf

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import decode_speed  # noqa: E402
import speed_report  # noqa: E402


def row(dtype, task, system, seconds, forward_seconds=0.0, tok_per_word=1.0, s_per_word=1.0):
    return {"dtype": dtype, "task": task, "system": system, "seconds": seconds,
            "tok_per_word": tok_per_word, "s_per_word": s_per_word,
            "kind_seconds": {"a": {"step": (3, forward_seconds / 2)}, "b": {"score": (2, forward_seconds / 2)}}}


def test_host_share_is_the_time_outside_the_forwards():
    assert speed_report.host_share(row("bfloat16", "triviaqa", "adafuse cached b8", 10.0, 8.5)) == pytest.approx(0.15)
    assert speed_report.host_share(row("bfloat16", "triviaqa", "adafuse cached", 2.0, 0.5)) == pytest.approx(0.75)
    assert speed_report.host_share(row("bfloat16", "triviaqa", "adafuse cached", 0.0)) == 0.0
    # timer jitter can put the counters a hair above the wall time: never a negative share
    assert speed_report.host_share(row("bfloat16", "triviaqa", "adafuse cached", 1.0, 1.01)) == 0.0


def test_ratios_per_dtype_against_the_targets():
    rows = []
    for dtype, scale in (("float32", 2.0), ("bfloat16", 1.0)):
        rows += [row(dtype, "triviaqa", "greedy smollm2", 1.0 * scale),
                 row(dtype, "triviaqa", "greedy gemma3", 1.0 * scale),
                 row(dtype, "triviaqa", "adafuse cached", 2.6 * scale),  # 1.3x: met
                 row(dtype, "triviaqa", "adafuse cached b8", 2.6 * scale / 2.4),  # 2.4x < 2.5x
                 row(dtype, "gsm8k", "greedy smollm2", 1.0 * scale),
                 row(dtype, "gsm8k", "greedy gemma3", 1.0 * scale),
                 row(dtype, "gsm8k", "adafuse cached", 2.8 * scale),  # 1.4x: not met
                 row(dtype, "gsm8k", "adafuse cached b8", 2.8 * scale / 2.0)]  # 2x: met
    lines = {label: (value, met) for label, value, _, met in speed_report.ratio_lines(rows, 8, 48)}
    for dtype in ("float32", "bfloat16"):
        assert lines[f"{dtype} triviaqa: AdaFuse cached / (greedy A + greedy B) time"] == (pytest.approx(1.3), True)
        assert lines[f"{dtype} gsm8k: AdaFuse cached / (greedy A + greedy B) time"] == (pytest.approx(1.4), False)
        assert lines[f"{dtype} triviaqa: throughput batch 8 / batch 1"] == (pytest.approx(2.4), False)
        assert lines[f"{dtype} gsm8k: throughput batch 8 / batch 1"] == (pytest.approx(2.0), True)
    assert lines["triviaqa: greedy gemma3: float32 / bfloat16 time"] == (pytest.approx(2.0), None)
    assert not any("recompute" in label for label in lines)  # not measured


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_pair")
    return ",".join(str(tiny_hf.build(kind, root / kind, seed=i)) for i, kind in enumerate(("llama", "gemma")))


def test_main_prints_both_dtypes_side_by_side(tiny_pair, capsys):
    decode_speed.main(["--models", tiny_pair, "--trivia", "2", "--gsm8k", "1", "--gsm8k-tokens", "4",
                       "--recompute", "0", "--batch", "2", "--profile",
                       "--profile-tokens", "2", "--counts", "2", "--counts-tokens", "4"])
    out = capsys.readouterr().out
    table = out.split("-" * 20, 1)[1].split("\n\n", 1)[0].strip().splitlines()
    for dtype in ("float32", "bfloat16"):
        for task in ("triviaqa", "gsm8k"):
            for system in ("greedy smollm2", "greedy gemma3", "adafuse cached", "adafuse cached b2"):
                assert sum(line.startswith(f"{dtype:<9} {task:<9} {system:<26}") for line in table) == 1
    for dtype in ("float32", "bfloat16"):
        assert f"{dtype} triviaqa: AdaFuse cached / (greedy A + greedy B) time = " in out
        assert f"{dtype} gsm8k: throughput batch 2 / batch 1 = " in out
        assert f"{dtype} triviaqa: host share of the batch-2 decode = " in out
    assert "triviaqa: adafuse cached: float32 / bfloat16 time = " in out
    assert "profile: one AdaFuse decode of 2 TriviaQA questions at batch 2, bfloat16" in out
    assert "Self CPU" in out
    counts = out.split("counts per generated word", 1)[1]
    for batch in (1, 2):
        for system in ("greedy smollm2", "greedy gemma3", "adafuse folded", "adafuse phases"):
            assert f"{batch:>5} {system:<26}" in counts
        assert f"batch {batch}: adafuse phases: host reads / forward = " in counts


def test_count_ratios_against_the_targets():
    def counted(system, batch, ops, reads, forwards):
        return {"system": system, "batch": batch, "ops_per_word": ops, "reads_per_word": reads,
                "fwd_per_word": forwards, "reads_per_forward": reads / forwards}

    counts = [counted("greedy smollm2", 1, 1000, 2.0, 2.0), counted("greedy gemma3", 1, 1000, 2.0, 2.0),
              counted("adafuse folded", 1, 2500, 6.0, 6.0), counted("adafuse phases", 1, 2600, 8.0, 7.0)]
    lines = {label: (value, met) for label, value, _, met in speed_report.count_ratio_lines(counts)}
    assert lines["batch 1: adafuse folded: host reads / word vs both greedy"] == (pytest.approx(1.5), True)
    assert lines["batch 1: adafuse phases: host reads / word vs both greedy"] == (pytest.approx(2.0), False)
    assert lines["batch 1: adafuse folded: host reads / forward"] == (pytest.approx(1.0), True)
    assert lines["batch 1: adafuse phases: host reads / forward"][1] is False
    assert lines["batch 1: adafuse folded: torch ops / word vs both greedy"] == (pytest.approx(1.25), True)
    assert lines["batch 1: adafuse phases: torch ops / word vs both greedy"] == (pytest.approx(1.3), True)


def test_counts_see_every_read_and_op():
    sys.path.insert(0, str(BENCH))
    import torch
    from counts import Counts

    with Counts() as counts:
        t = torch.ones(3) + 1
        t.tolist(), float(t[0]), bool(t[1] > 0), t.sum().item()
    assert counts.reads == 4
    assert counts.ops >= 5


def test_recompute_runs_in_float32_only(tiny_pair, capsys):
    decode_speed.main(["--models", tiny_pair, "--dtypes", "bfloat16", "--trivia", "0", "--gsm8k", "0",
                       "--recompute", "1"])
    out = capsys.readouterr().out
    assert "recompute comparison skipped: it runs in float32 only" in out
    assert "adafuse recompute" not in out


def test_recompute_ratios_from_the_float32_rows():
    rows = [row("float32", "gsm8k", "adafuse cached @48", 1.0, tok_per_word=10.0, s_per_word=0.1),
            row("float32", "gsm8k", "adafuse recompute @48", 30.0, tok_per_word=600.0, s_per_word=0.5)]
    lines = {label: (value, met) for label, value, _, met in speed_report.ratio_lines(rows, 8, 48)}
    assert lines["float32 gsm8k @48: recompute / cached tokens fed per word"] == (pytest.approx(60.0), True)
    assert lines["float32 gsm8k @48: recompute / cached seconds per word"] == (pytest.approx(5.0), False)


@pytest.mark.parametrize("argv, needle", [(["--dtypes", "float16"], "--dtypes 'float16'"),
                                          (["--models", "only-one"], "--models 'only-one'")])
def test_bad_options_name_the_value_and_what_is_allowed(argv, needle, capsys):
    with pytest.raises(SystemExit) as exc:
        decode_speed.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "allowed" in err
