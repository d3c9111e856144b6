"""em_lenient_squad, and SQuAD v1.1's standard em / f1, on literal cases."""

import pytest

from adafuse.tasks.metrics.lenient_em import em_lenient_squad, normalize_squad
from adafuse.tasks.metrics.squad_v11 import em, f1, normalize_answer


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Richard I's", "richard i"),  # "'s" goes before punctuation does
        ("Normans", "normans"),  # no plural folding
        ("ten", "10"),
        ("in the 10th and 11th centuries", "10th 11th centuries"),
    ],
)
def test_normalize(raw, normalized):
    assert normalize_squad(raw) == normalized


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("France", ["France"], 1.0),
        ("Richard I's", ["Richard I"], 1.0),
        ("Normans", ["Norman"], 0.0),  # NQ would fold the plural; SQuAD does not
        ("the answer is France", ["France"], 1.0),  # stop words, then token subset
        ("ten", ["10"], 1.0),
        ("King Charles III", ["Charles III", "King Charles III"], 1.0),
        ("", ["France"], 0.0),
    ],
)
def test_lenient(pred, golds, expected):
    assert em_lenient_squad(pred, golds) == expected


def test_official_normalisation():
    assert normalize_answer("The  Norman-French, dialect!") == "normanfrench dialect"


def test_official_em_and_f1():
    assert em("the France", ["France"]) == 1.0
    assert em("southern Italy region", ["southern Italy"]) == 0.0
    assert f1("southern Italy region", ["southern Italy"]) == pytest.approx(0.8)
    assert f1("Normans", ["Norman"]) == 0.0
    assert f1("in southern Italy", ["Italy", "southern Italy"]) == pytest.approx(0.8)  # best gold
    assert f1("", ["the"]) == 0.0  # v1.1: empty vs empty is 0
    assert em("", ["the"]) == 1.0  # ... while exact match sees two equal empty strings
