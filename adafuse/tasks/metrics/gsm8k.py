"""GSM8K accuracy as published with the AdaFuse paper (metrics.md), and its strict variant.

- prediction's answer: the first `\\boxed{...}` (no nested braces), else the whole text;
- gold's answer: the text after "The answer is" / "the answer is" (the last occurrence; the
  bundled golds have exactly one), else the whole gold;
- both reduced to digits and '.', formatted with two decimals when they parse as a number;
- right when equal **or when either contains the other** (as published: "8.00" counts against
  "18.00"); `gsm8k_accuracy_strict` asks for equality only.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from adafuse.tasks.filters import first_boxed
from adafuse.tasks.metrics.registry import register_item_metric

_ANSWER_IS = re.compile(r"[Tt]he answer is")
_NOT_NUMBER = re.compile(r"[^0-9.]")


def gold_answer(gold: str) -> str:
    parts = _ANSWER_IS.split(gold)
    return parts[-1] if len(parts) > 1 else gold


def reduce_number(text: str) -> Optional[str]:
    """Digits and '.' only, as "%.2f" when that parses; None when nothing is left."""
    reduced = _NOT_NUMBER.sub("", text.lower())
    if not reduced:
        return None
    try:
        return f"{float(reduced):.2f}"
    except ValueError:  # e.g. "1.2.3" or "."
        return reduced


def _pair(pred: str, gold: str) -> tuple[Optional[str], Optional[str]]:
    return reduce_number(first_boxed(pred)), reduce_number(gold_answer(gold))


@register_item_metric("gsm8k_accuracy")
def gsm8k_accuracy(pred: str, golds: Sequence[str]) -> float:
    """Published GSM8K accuracy: equality or containment either way of the reduced answers."""
    for gold in golds:
        p, g = _pair(pred, gold)
        if p is not None and g is not None and (p == g or p in g or g in p):
            return 1.0
    return 0.0


@register_item_metric("gsm8k_accuracy_strict")
def gsm8k_accuracy_strict(pred: str, golds: Sequence[str]) -> float:
    """GSM8K accuracy with equality only (no containment)."""
    for gold in golds:
        p, g = _pair(pred, gold)
        if p is not None and p == g:
            return 1.0
    return 0.0
