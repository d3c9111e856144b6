"""gsm8k_accuracy (published: containment counts) and gsm8k_accuracy_strict."""

import pytest

from adafuse.tasks.metrics.gsm8k import gold_answer, gsm8k_accuracy, gsm8k_accuracy_strict, reduce_number

GOLD_18 = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\nTherefore, the answer is 18"


@pytest.mark.parametrize(
    "pred, loose, strict",
    [
        ("9 * 2 = 18\nThe answer is \\boxed{18}", 1.0, 1.0),
        ("\\boxed{18.0}", 1.0, 1.0),  # two decimals on both sides
        ("\\boxed{$18}", 1.0, 1.0),
        ("\\boxed{3} and then \\boxed{18}", 0.0, 0.0),  # the first \boxed{} counts
        ("\\boxed{8}", 1.0, 0.0),  # containment, as published: "8.00" in "18.00"
        ("\\boxed{118}", 1.0, 0.0),  # ... either way: "18.00" in "118.00"
        ("The answer is 18", 1.0, 1.0),  # no \boxed{}: the whole text
        ("3 eggs, so 18", 1.0, 0.0),  # whole text -> "318.00", which contains "18.00"
        ("2 eggs, so 19", 0.0, 0.0),  # "219.00"
        ("\\boxed{}", 0.0, 0.0),  # empty after reduction: wrong
        ("", 0.0, 0.0),
        ("no idea", 0.0, 0.0),
        (".", 1.0, 0.0),  # quirk: "." does not parse, is kept, and is contained in "18.00"
    ],
)
def test_accuracy(pred, loose, strict):
    assert gsm8k_accuracy(pred, [GOLD_18]) == loose
    assert gsm8k_accuracy_strict(pred, [GOLD_18]) == strict


def test_nested_braces_fall_back_to_the_whole_text():
    # \boxed{\frac{1}{2}} is not read (no nested braces); the whole text reduces to "12"
    assert gsm8k_accuracy("\\boxed{\\frac{1}{2}}", ["The answer is 0.5"]) == 0.0
    assert gsm8k_accuracy("\\boxed{\\frac{1}{2}}", ["The answer is 12"]) == 1.0


def test_gold_answer():
    assert gold_answer(GOLD_18) == " 18"
    assert gold_answer("The answer is 1,000.") == " 1,000."
    assert gold_answer("72") == "72"  # no "the answer is": the whole gold
    assert gsm8k_accuracy("\\boxed{1000}", ["The answer is 1,000."]) == 1.0
    assert gsm8k_accuracy("\\boxed{72}", ["72"]) == 1.0


def test_reduce_number():
    assert reduce_number("18") == "18.00"
    assert reduce_number("$1,234.5") == "1234.50"
    assert reduce_number("-5") == "5.00"  # the sign is not a digit
    assert reduce_number("1.2.3") == "1.2.3"  # does not parse: kept
    assert reduce_number("abc") is None
