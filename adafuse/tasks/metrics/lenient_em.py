"""Lenient exact match of the AdaFuse paper for TriviaQA, Natural Questions and SQuAD.

The rules are /work/shared/docs/metrics.md, implemented literally, quirks included (each quirk
is named where it happens). A prediction is right when it matches any gold:

1. the normalised strings are equal;
2. both are numbers of equal value;
3. token subset: every token of the shorter side occurs in the longer one, unless the shorter
   side has >= 3 tokens and the counts differ by more than 1 (SQuAD: more than 5).

The three tasks differ in the normalisation, in what counts as a number (rule 2) and in the
length rule of 3. The quirks, each named where it happens:
- GLUED NUMBER RUNS (NQ, SQuAD): the number-word run swallows the whitespace after it, so
  "three hundred soldiers" becomes "300soldiers";
- NQ's "'s" strip never fires (the apostrophe is already gone), plural folding does the work;
- word2number reads "point" as 0, so "boiling point" and "match point" are equal numbers;
- SQUAD_LENGTH_SLACK: SQuAD's token subset allows a length difference of up to 5.

`em_lenient_nq_spaced` and `em_lenient_squad_spaced` are the corrected variants (a number run
keeps the whitespace after it, "300 soldiers"); they are reported beside the published ones,
which stay the tasks' main metrics.
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
# Quirk GLUED NUMBER RUNS, as published: 1-4 repetitions of (number word, optionally " and",
# optionally whitespace or one hyphen), then a word boundary. The optional whitespace belongs
# to the match, so a run followed by a word swallows the space before it ("three hundred
# soldiers" -> "300soldiers", "seven and more" -> "7more"); at the end of the text or before
# punctuation the boundary is only found without the space, and nothing is swallowed.
_NUMBER_RUN_GLUED = re.compile(rf"\b(?:{_NUMBER_WORD}(?:\s+and)?(?:\s+|-)?){{1,4}}\b", re.IGNORECASE)
# The corrected variant: number words joined by whitespace, a hyphen or " and ", and nothing
# after the last word, so the number stays a token of its own ("300 soldiers").
_NUMBER_RUN_SPACED = re.compile(
    rf"\b{_NUMBER_WORD}(?:(?:\s+and\s+|\s+|-){_NUMBER_WORD}){{0,3}}\b", re.IGNORECASE
)
# Quirk SQUAD_LENGTH_SLACK: SQuAD's token subset tolerates this many extra tokens on the longer
# side once the shorter has 3 or more (TriviaQA and NQ: 1).
LENGTH_SLACK = 1
SQUAD_LENGTH_SLACK = 5

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


def _convert_run(m: re.Match) -> str:
    # as published: hyphens become spaces and " and " a space before word2number reads the run
    value = _word_to_num(m.group(0).replace("-", " ").replace(" and ", " "))
    return m.group(0) if value is None else str(value)


def numbers_to_digits(s: str) -> str:
    """Number-word runs replaced by their value, glued to the next word (as published)."""
    return _NUMBER_RUN_GLUED.sub(_convert_run, s)


def numbers_to_digits_spaced(s: str) -> str:
    """Number-word runs replaced by their value, the whitespace after them kept (corrected)."""
    return _NUMBER_RUN_SPACED.sub(_convert_run, s)


def _fold_plural(token: str) -> str:
    if len(token) >= 4 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def normalize_nq(s: str, numbers: Callable[[str], str] = numbers_to_digits) -> str:
    s = numbers(unicodedata.normalize("NFD", s)).lower().translate(_PUNCT)
    s = _STOP_WORDS.sub(" ", s)
    # Quirk, as published: punctuation (the apostrophe too) is already gone here, so this "'s"
    # strip never fires; "john's" becomes "johns" and the plural folding makes it "john".
    s = _TRAILING_S.sub("", s)
    return _collapse(" ".join(_fold_plural(t) for t in s.split()))


def normalize_squad(s: str, numbers: Callable[[str], str] = numbers_to_digits) -> str:
    # metrics.md's order: numbers, then "'s" (before punctuation is deleted, so it fires here),
    # then lowercase; "'S" in capitals is kept as a word "s"
    s = _TRAILING_S.sub("", numbers(unicodedata.normalize("NFD", s))).lower().translate(_PUNCT)
    return _collapse(_STOP_WORDS.sub(" ", s))


def normalize_nq_spaced(s: str) -> str:
    return normalize_nq(s, numbers_to_digits_spaced)


def normalize_squad_spaced(s: str) -> str:
    return normalize_squad(s, numbers_to_digits_spaced)


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


def token_subset(pred: str, gold: str, slack: int = LENGTH_SLACK) -> bool:
    """Every token of the shorter side is in the other; with 3 or more tokens on the shorter
    side, only when the other has at most `slack` more."""
    p, g = pred.split(), gold.split()
    if not p or not g:
        return False
    small, other = (p, g) if len(p) <= len(g) else (g, p)  # the prediction's side on a tie
    if len(small) >= 3 and len(other) - len(small) > slack:
        return False
    other_tokens = set(other)
    return all(t in other_tokens for t in small)


def lenient_match(
    pred: str,
    gold: str,
    normalize: Callable[[str], str],
    number: Callable[[str], Optional[float]],
    slack: int = LENGTH_SLACK,
) -> bool:
    p, g = normalize(pred), normalize(gold)
    if p == g:
        return True
    pn, gn = number(p), number(g)
    if pn is not None and gn is not None and pn == gn:
        return True
    return token_subset(p, g, slack)


def _any_match(pred: str, golds: Sequence[str], normalize, number, slack: int = LENGTH_SLACK) -> float:
    return float(any(lenient_match(pred, g, normalize, number, slack) for g in golds))


@register_item_metric("em_lenient_triviaqa")
def em_lenient_triviaqa(pred: str, golds: Sequence[str]) -> float:
    """TriviaQA lenient exact match (metrics.md); 1.0 when any alias matches."""
    return _any_match(pred, golds, normalize_triviaqa, number_triviaqa)


@register_item_metric("em_lenient_nq")
def em_lenient_nq(pred: str, golds: Sequence[str]) -> float:
    """Natural Questions lenient exact match (metrics.md, glued number runs included)."""
    return _any_match(pred, golds, normalize_nq, number_word2number)


@register_item_metric("em_lenient_nq_spaced")
def em_lenient_nq_spaced(pred: str, golds: Sequence[str]) -> float:
    """em_lenient_nq with the number runs corrected: the number stays a token of its own."""
    return _any_match(pred, golds, normalize_nq_spaced, number_word2number)


@register_item_metric("em_lenient_squad")
def em_lenient_squad(pred: str, golds: Sequence[str]) -> float:
    """SQuAD lenient exact match (metrics.md): NQ's rules without plural folding, with the "'s"
    strip firing and a token-subset length slack of 5."""
    return _any_match(pred, golds, normalize_squad, number_word2number, SQUAD_LENGTH_SLACK)


@register_item_metric("em_lenient_squad_spaced")
def em_lenient_squad_spaced(pred: str, golds: Sequence[str]) -> float:
    """em_lenient_squad with the number runs corrected: the number stays a token of its own."""
    return _any_match(pred, golds, normalize_squad_spaced, number_word2number, SQUAD_LENGTH_SLACK)
