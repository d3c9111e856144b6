"""Answer filters, and Task.extract: cut at the stop strings, then the card's filters."""

import pytest

from adafuse.tasks import get_task
from adafuse.tasks.filters import FILTERS, cut_at_stop


def test_boxed():
    text = "so \\boxed{3}, no wait \\boxed{5}"
    assert FILTERS["first_boxed"](text) == "3"
    assert FILTERS["last_boxed"](text) == "5"
    assert FILTERS["first_boxed"]("no box") == "no box"
    assert FILTERS["first_boxed"]("\\boxed{\\frac{1}{2}}") == "\\boxed{\\frac{1}{2}}"


def test_simple_filters():
    assert FILTERS["strip"]("  Paris \n") == "Paris"
    assert FILTERS["first_line"]("\n Paris\nQuestion: x") == "Paris"
    assert FILTERS["gsm8k_hash_answer"]("a\nb\n#### 1,000") == "a\nb\nThe answer is 1,000"
    assert FILTERS["gsm8k_hash_answer"]("no hashes") == "no hashes"


def test_cut_at_stop():
    assert cut_at_stop("a\nb\n\nQuestion: c", ["Question:", "\n\n\n"]) == "a\nb\n\n"
    assert cut_at_stop("abc", ["x"]) == "abc"


@pytest.mark.parametrize("text,stops,expected", [
    ("abc", ["abc", "b"], "a"),  # the decoder's rule: "b" completes first (not "abc", which starts first)
    ("abc", ["bc", "abc"], ""),  # completing together: the longer
    (" Paris\nQuestion:", ["Question:", "\nQ"], " Paris"),
    (" 42 Question: x\n", ["\n", " Question:"], " 42"),
])
def test_a_task_cuts_overlapping_stops_as_the_decoder_does(text, stops, expected):
    """Task.extract (what scoring reads) cuts with adafuse.stops, the decoders' rule; the
    decoders' side of the same cases is tests/decoding/test_stop_rule.py."""
    task = get_task("triviaqa")
    task.stop = stops
    assert cut_at_stop(text, stops) == expected
    assert task.extract(text) == expected.strip()


def test_task_extract():
    gsm = get_task("gsm8k")
    out = "2+2=4\nThe answer is \\boxed{4}\n\n\nQuestion: next one\nThe answer is \\boxed{9}"
    assert gsm.extract(out) == "4"
    assert get_task("triviaqa").extract(" George V.\nQuestion: who?") == "George V."
    assert get_task("flores_de_en").extract(" Hello there. \nGerman: mehr") == "Hello there."
