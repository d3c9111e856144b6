"""em_lenient_nq on literal cases: number runs (glued, as published), stop words, possessives,
plural folding; and the corrected variant em_lenient_nq_spaced."""

import pytest

from adafuse.tasks.metrics.lenient_em import (
    em_lenient_nq,
    em_lenient_nq_spaced,
    normalize_nq,
    number_word2number,
)


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Twenty-One Pilots", "21pilot"),  # hyphenated run glued to the next word; plural folded
        ("three hundred soldiers", "300soldier"),  # glued, then plural-folded as one token
        ("one hundred and five", "105"),  # " and " joins a run
        ("Seventeen", "17"),  # not "seven" + "teen"
        ("rock and roll", "rock roll"),  # "and" outside a number run is a stop word
        ("one and only", "1only"),  # "one and " is a run, glued to "only"
        ("twenty.", "20"),  # before punctuation nothing is swallowed
        ("million five", "million five"),  # conversion fails: the run stays as it was
        ("The Lord of the Rings", "lord ring"),
        ("what was the year", "year"),
        ("John's", "john"),  # "'s" strip runs after punctuation; "johns" is plural-folded
        ("Chris's", "chriss"),  # "chriss" ends in "ss": kept
        ("glass", "glass"),
        ("bus", "bus"),  # under 4 characters: kept
        ("Beatles", "beatle"),
        ("someone", "someone"),  # number words only on word boundaries
    ],
)
def test_normalize(raw, normalized):
    assert normalize_nq(raw) == normalized


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("2002", ["2002"], 1.0),
        ("in 2002", ["2002"], 1.0),  # stop word gone: equal
        ("twenty-one", ["21"], 1.0),  # number run replaced by its value
        # glued number runs (metrics.md): neither matches "three hundred soldiers" ...
        ("soldiers", ["three hundred soldiers"], 0.0),
        ("300 soldiers", ["three hundred soldiers"], 0.0),
        ("seven and more words", ["seven"], 0.0),
        ("twenty-one guns", ["21 guns"], 0.0),
        ("three hundred soldiers", ["300soldiers"], 1.0),
        ("in twenty.", ["20"], 1.0),  # ... while a run before punctuation stays a number
        ("The Beatles", ["beatle"], 1.0),  # plural folding
        ("John's", ["John"], 1.0),  # possessive, through plural folding
        ("Chris's", ["Chris"], 0.0),  # "chriss" vs "chri": the folding quirk
        ("Kim Zolciak", ["Kim Zolciak-Biermann"], 0.0),  # "zolciakbiermann" is one token
        ("Kim", ["Kim Zolciak"], 1.0),  # token subset
        ("the boiling point", ["melting point"], 1.0),  # quirk: word2number reads both as 0
        ("", ["2002"], 0.0),
        ("Planet of the Apes", ["planet apes"], 1.0),
    ],
)
def test_match(pred, golds, expected):
    assert em_lenient_nq(pred, golds) == expected


@pytest.mark.parametrize(
    "pred, golds, expected",
    [
        ("soldiers", ["three hundred soldiers"], 1.0),
        ("300 soldiers", ["three hundred soldiers"], 1.0),
        ("seven and more words", ["seven"], 1.0),  # "7 more word" vs "7": token subset
        ("twenty-one guns", ["21 guns"], 1.0),
    ],
)
def test_spaced_variant(pred, golds, expected):
    assert em_lenient_nq_spaced(pred, golds) == expected


def test_length_rule_allows_one_extra_token():
    gold = ["Treaty of Versailles negotiations"]
    assert em_lenient_nq("Treaty of Versailles negotiations signed", gold) == 1.0  # 4 vs 3
    assert em_lenient_nq("I think it is Treaty of Versailles negotiations", gold) == 0.0  # 6 vs 3


def test_numbers_are_whatever_word2number_accepts():
    assert number_word2number("1965") == 1965
    assert number_word2number("point") == 0  # word2number accepts it
    assert number_word2number("paris") is None
