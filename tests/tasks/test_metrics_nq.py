"""em_lenient_nq on literal cases: number runs, stop words, possessives, plural folding."""

import pytest

from adafuse.tasks.metrics.lenient_em import em_lenient_nq, normalize_nq, number_word2number


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Twenty-One Pilots", "21 pilot"),  # hyphenated run, case-insensitive; plural folded
        ("one hundred and five", "105"),  # " and " joins a run
        ("Seventeen", "17"),  # not "seven" + "teen"
        ("rock and roll", "rock roll"),  # "and" outside a number run is a stop word
        ("one and only", "1 only"),  # " and " only joins number words
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


def test_numbers_are_whatever_word2number_accepts():
    assert number_word2number("1965") == 1965
    assert number_word2number("point") == 0  # word2number accepts it
    assert number_word2number("paris") is None
