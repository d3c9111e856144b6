"""Lenient exact match of the AdaFuse paper for TriviaQA, Natural Questions and SQuAD.

The rules are /work/shared/docs/metrics.md, implemented literally, quirks included (each quirk
is named where it happens). A prediction is right when it matches any gold:

1. the normalised strings are equal;
2. both are numbers of equal value;
3. token subset: every token of the shorter side occurs in the longer one, unless the shorter
   side has >= 3 tokens and the counts differ by more than 1.

The three tasks differ in the normalisation and in what counts as a number (rule 2).
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Callable, Optional, Sequence

from word2number import w2n

from adafuse.tasks.metrics.registry import register_item_metric

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")

# zero … ninety, and the scale words. "trillion" is listed although word2number ignores it
# ("two trillion" converts to 2): the rule only asks what word2number returns.
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred thousand million billion trillion"
).split()
# longest first so that "seventeen" is not read as "seven" + "teen"
_NUMBER_WORD = r"(?:" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
_HAS_NUMBER_WORD = re.compile(rf"\b{_NUMBER_WORD}\b")
# a run of 1-4 number words joined by spaces, hyphens or " and ", on word boundaries
_NUMBER_RUN = re.compile(
    rf"\b{_NUMBER_WORD}(?:(?:\s+and\s+|\s+|-){_NUMBER_WORD}){{0,3}}\b", re.IGNORECASE
)

STOP_WORDS = (
    "a an the and or in on of for to with at by from about as is was were be been are has have "
    "had do does did but so if then than that which who whom whose because while where when how "
    "what why can will would should could shall may might must"
).split()
_STOP_WORDS = re.compile(r"\b(?:" + "|".join(STOP_WORDS) + r")\b")
_TRAILING_S = re.compile(r"(?<=\w)'s\b")


def _word_to_num(text: str) -> Optional[float]:
    try:
        return w2n.word_to_num(text)
    except Exception:  # word2number raises ValueError, IndexError, ...: all mean "not a number"
        return None


def _collapse(s: str) -> str:
    return " ".join(s.split())


# --- normalisation -------------------------------------------------------------------------


def normalize_triviaqa(s: str) -> str:
    s = unicodedata.normalize("NFD", s).lower().translate(_PUNCT)
    return _collapse(_ARTICLES.sub(" ", s))


def _numbers_to_digits(s: str) -> str:
    def convert(m: re.Match) -> str:
        value = _word_to_num(m.group(0))
        return m.group(0) if value is None else str(value)

    return _NUMBER_RUN.sub(convert, s)


def _fold_plural(token: str) -> str:
    if len(token) >= 4 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def normalize_nq(s: str) -> str:
    s = _numbers_to_digits(unicodedata.normalize("NFD", s)).lower().translate(_PUNCT)
    s = _STOP_WORDS.sub(" ", s)
    # Quirk, as published: punctuation (the apostrophe too) is already gone here, so this "'s"
    # strip never fires; "john's" becomes "johns" and the plural folding makes it "john".
    s = _TRAILING_S.sub("", s)
    return _collapse(" ".join(_fold_plural(t) for t in s.split()))


def normalize_squad(s: str) -> str:
    s = _numbers_to_digits(unicodedata.normalize("NFD", s)).lower()
    s = _TRAILING_S.sub("", s).translate(_PUNCT)  # "'s" goes before punctuation does
    return _collapse(_STOP_WORDS.sub(" ", s))


# --- numbers (rule 2) ----------------------------------------------------------------------


def number_triviaqa(s: str) -> Optional[float]:
    """A string of digits, or text with a listed number word that word2number converts."""
    if s.isdigit():
        try:
            return int(s)
        except ValueError:  # str.isdigit accepts e.g. superscripts that int() refuses
            return None
    if _HAS_NUMBER_WORD.search(s):
        return _word_to_num(s)
    return None


def number_word2number(s: str) -> Optional[float]:
    """A string of digits, or whatever word2number accepts.

    Quirk, as published: word2number accepts any text holding a number word it knows, and it
    knows "point", so "boiling point" and "match point" are both the number 0.
    """
    if s.isdigit():
        try:
            return int(s)
        except ValueError:
            return None
    return _word_to_num(s)


# --- matching ------------------------------------------------------------------------------


def token_subset(pred: str, gold: str) -> bool:
    p, g = pred.split(), gold.split()
    if not p or not g:
        return False
    small, other = (p, g) if len(p) <= len(g) else (g, p)  # the prediction's side on a tie
    if len(small) >= 3 and len(other) - len(small) > 1:
        return False
    other_tokens = set(other)
    return all(t in other_tokens for t in small)


def lenient_match(
    pred: str,
    gold: str,
    normalize: Callable[[str], str],
    number: Callable[[str], Optional[float]],
) -> bool:
    p, g = normalize(pred), normalize(gold)
    if p == g:
        return True
    pn, gn = number(p), number(g)
    if pn is not None and gn is not None and pn == gn:
        return True
    return token_subset(p, g)


def _any_match(pred: str, golds: Sequence[str], normalize, number) -> float:
    return float(any(lenient_match(pred, g, normalize, number) for g in golds))


@register_item_metric("em_lenient_triviaqa")
def em_lenient_triviaqa(pred: str, golds: Sequence[str]) -> float:
    """TriviaQA lenient exact match (metrics.md); 1.0 when any alias matches."""
    return _any_match(pred, golds, normalize_triviaqa, number_triviaqa)


@register_item_metric("em_lenient_nq")
def em_lenient_nq(pred: str, golds: Sequence[str]) -> float:
    """Natural Questions lenient exact match (metrics.md); 1.0 when any answer matches."""
    return _any_match(pred, golds, normalize_nq, number_word2number)


@register_item_metric("em_lenient_squad")
def em_lenient_squad(pred: str, golds: Sequence[str]) -> float:
    """SQuAD lenient exact match (metrics.md): NQ's rules without plural folding."""
    return _any_match(pred, golds, normalize_squad, number_word2number)
