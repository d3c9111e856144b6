"""Answer filters: small str -> str functions applied to a model's output before scoring.

A task card lists them by name (`filters: [first_boxed]`); they run in order after the output
has been cut at the task's stop strings. Register a new one with `@register_filter("name")`.
"""

from __future__ import annotations

import re
from typing import Callable

from adafuse.stops import cut_at_stop  # noqa: F401  (the decoder's rule: tasks cut with it before the filters)
from adafuse.tasks.errors import TaskError

Filter = Callable[[str], str]
FILTERS: dict[str, Filter] = {}


def register_filter(name: str) -> Callable[[Filter], Filter]:
    def add(fn: Filter) -> Filter:
        if name in FILTERS:
            raise ValueError(f"filter {name!r} is registered twice")
        FILTERS[name] = fn
        return fn

    return add


def get_filter(name: str) -> Filter:
    try:
        return FILTERS[name]
    except KeyError:
        raise TaskError(f"unknown filter {name!r}; known filters: {', '.join(sorted(FILTERS))}") from None


# `[^{}]*`: the published rule reads boxed content without nested braces (\boxed{\frac{1}{2}}
# does not match, and the whole text is used instead).
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


@register_filter("first_boxed")
def first_boxed(text: str) -> str:
    """Content of the first `\\boxed{...}` (no nested braces); else the whole text."""
    m = _BOXED.search(text)
    return m.group(1) if m else text


@register_filter("last_boxed")
def last_boxed(text: str) -> str:
    """Content of the last `\\boxed{...}` (no nested braces); else the whole text."""
    found = _BOXED.findall(text)
    return found[-1] if found else text


@register_filter("strip")
def strip(text: str) -> str:
    return text.strip()


@register_filter("first_line")
def first_line(text: str) -> str:
    """Text before the first newline, leading whitespace ignored."""
    return text.lstrip().split("\n", 1)[0]


@register_filter("gsm8k_hash_answer")
def gsm8k_hash_answer(text: str) -> str:
    """Rewrite upstream GSM8K's final '#### 72' as 'The answer is 72' (the bundled gold form).

    Used on the gold of the Hugging Face source so that `gsm8k_accuracy` finds the answer.
    """
    head, sep, tail = text.rpartition("####")
    if not sep:
        return text
    return f"{head.rstrip()}\nThe answer is {tail.strip()}"
