"""SQuAD v1.1's standard exact match and token F1, with the official script's normalisation.

(lowercase, drop `string.punctuation`, drop the words a / an / the, collapse whitespace; the
best score over the gold answers.) Written from the published definition.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

from adafuse.tasks.metrics.registry import register_item_metric

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(pred: str, gold: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(gold))


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:  # v1.1: also 0 when both sides are empty
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


@register_item_metric("em")
def em(pred: str, golds: Sequence[str]) -> float:
    """SQuAD v1.1 exact match, best over the golds."""
    return max((exact_match(pred, g) for g in golds), default=0.0)


@register_item_metric("f1")
def f1(pred: str, golds: Sequence[str]) -> float:
    """SQuAD v1.1 token F1, best over the golds."""
    return max((token_f1(pred, g) for g in golds), default=0.0)
