"""A round in words and as a table (adafuse.traceview), and the line prompt mode prints a
round (Output.summary), on hand-made rounds whose every number is known."""

from __future__ import annotations

from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.traceview import render_round, round_line, round_view, short_names

NAMES = ["smollm2-135m-instruct", "gemma3-270m"]


def a_round(**extra) -> Round:
    """smollm2 uncertain (3 branches), gemma3 confident with a 2-word span that wins."""
    proposals = [
        Proposal(" King", None, [0], "explore", nll=[1.5, 1.1], score=1.3),
        Proposal(" Edward", None, [0], "explore", nll=[2.0, 3.0], score=2.5),
        Proposal(" The", None, [0], "explore", nll=[2.2, 2.6], score=2.4),
        Proposal(" George V", None, [1], "greedy", nll=[0.9, 0.5], score=0.7),
    ]
    return Round(index=2, margins=[[0.12], [0.91, 0.8]], explored=[True, False],
                 proposals=proposals, winner=3, **extra)


def test_round_line_names_the_models_and_says_what_happened():
    line = round_line(a_round().to_dict(), NAMES)
    assert line == ("round  2: smollm2 explored 3 (Δ 0.12), gemma3 confident, 2 words (Δ 0.91); "
                    "4 proposals; winner ' George V' from gemma3 (score 0.700)")
    flagged = round_line(a_round(near_tie=True, boundary_merge=[1]).to_dict(), NAMES)
    assert flagged.endswith("; near tie; boundary merge in gemma3")


def test_summary_uses_the_models_names_from_its_stats():
    stats = Stats(models=[ModelCost(n) for n in NAMES])
    out = Output(text=" George V", finish_reason="stop", trace=[a_round()], stats=stats)
    assert out.summary() == round_line(a_round().to_dict(), NAMES)
    assert out.summary(["a", "b"]).startswith("round  2: a explored 3 (Δ 0.12), b confident")
    many = Output(text="", finish_reason="length", trace=[a_round()] * 14, stats=stats)
    assert many.summary().splitlines()[-1] == "... 2 more rounds"


def test_the_table_marks_the_winner_sorts_by_score_and_flags():
    view = round_view(a_round(near_tie=True, boundary_merge=[0]).to_dict(), NAMES)
    assert [p["text"] for p in view["proposals"]] == [" George V", " King", " The", " Edward"]
    assert [p["proposers"] for p in view["proposals"]] == [["gemma3"]] + [["smollm2"]] * 3
    lines = render_round(view)
    assert lines[0] == "round 2 · 4 proposals · winner ' George V' from gemma3"
    assert lines[1].split() == ["smollm2", "Δ", "0.120", "explored", "3"]
    assert lines[2].split() == ["gemma3", "Δ", "0.910", "0.800", "confident,", "2", "words"]
    winner = [ln for ln in lines if ln.startswith("  * ")]
    assert len(winner) == 1 and winner[0].split()[-3:] == ["0.900", "0.500", "0.700"]
    assert any(ln.startswith("  ! near tie") for ln in lines)
    assert any(ln.startswith("  ! boundary merge in smollm2") for ln in lines)
    assert all(len(ln) <= 100 for ln in lines)


def test_fixed_span_rounds_are_spans_not_confidence():
    row = a_round().to_dict()
    row["explored"] = [False, False]
    row["proposals"] = [row["proposals"][3]]
    row["winner"] = 0
    assert round_view(row, NAMES, gated=False)["models"][1]["action"] == "span of 2 words"


def test_short_names():
    assert short_names(NAMES) == ["smollm2", "gemma3"]
    assert short_names(["/tmp/x/tiny-llama", "/tmp/x/tiny-gemma"]) == ["tiny-llama", "tiny-gemma"]
    assert short_names(["meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-v0.3"]) == [
        "Llama", "Mistral"]
    assert short_names(["a/m", "b/m"]) == ["m0", "m1"]
