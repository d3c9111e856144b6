"""Number-word runs of NQ and SQuAD on literal inputs: the published, glued replacement (the
quirk GLUED NUMBER RUNS of metrics.md) and the corrected, spaced one."""

import pytest

from adafuse.tasks.metrics.lenient_em import numbers_to_digits, numbers_to_digits_spaced


@pytest.mark.parametrize(
    "raw, glued",
    [
        # metrics.md's examples
        ("three hundred soldiers", "300soldiers"),
        ("twenty-one guns", "21guns"),  # hyphenated
        ("one hundred and five men", "105men"),  # "and" inside the run
        ("seven and more", "7more"),  # "seven and " is one run: the "and" belongs to it
        ("twenty.", "20."),  # before punctuation nothing is swallowed
        # before punctuation, then glued to a word; and at the end of the text
        ("twenty, thirty men", "20, 30men"),
        ("three hundred soldiers and twenty", "300soldiers and 20"),
        ("twenty ", "20 "),  # trailing whitespace at the end of the text stays
        ("Twenty-One Pilots", "21Pilots"),  # case-insensitive
        ("ten andrew", "10andrew"),  # "and" only as a whole word: the run ends before "andrew"
        ("zero zero seven agent", "7agent"),
        ("million five", "million five"),  # word2number refuses it: the run stays as it was
        ("someone", "someone"),  # number words only from a word boundary
    ],
)
def test_published_runs_are_glued_to_the_next_word(raw, glued):
    assert numbers_to_digits(raw) == glued


@pytest.mark.parametrize(
    "raw, spaced",
    [
        ("three hundred soldiers", "300 soldiers"),
        ("twenty-one guns", "21 guns"),
        ("one hundred and five men", "105 men"),
        ("seven and more", "7 and more"),  # "and" joins number words only
        ("twenty.", "20."),
    ],
)
def test_corrected_runs_keep_the_space(raw, spaced):
    assert numbers_to_digits_spaced(raw) == spaced
