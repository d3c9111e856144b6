"""Words, stop strings and decoding of continuations: the text rules of the method.

A word is a maximal run of non-whitespace characters, whitespace being what `str.isspace()`
says. A word is complete once whitespace follows it. Text is never rebuilt from words.
"""

from __future__ import annotations

from collections.abc import Sequence


def complete_word_ends(text: str) -> list[int]:
    """End offsets (exclusive) of the words of `text` that are followed by whitespace."""
    ends = []
    in_word = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if in_word:
                ends.append(i)
            in_word = False
        else:
            in_word = True
    return ends


def word_count(text: str) -> int:
    return len(text.split())


def find_stop(text: str, start: int, stops: Sequence[str]) -> tuple[int, int] | None:
    """The first stop string of `text` that ends after offset `start`, as (begin, end).

    "First" is the one that would be seen first while generating left to right: the
    smallest end, then the longest match. Occurrences wholly inside text[:start] are old.
    """
    best: tuple[int, int] | None = None
    for stop in stops:
        if not stop:
            continue
        pos = text.find(stop, max(0, start - len(stop) + 1))
        if pos < 0:
            continue
        found = (pos, pos + len(stop))
        if best is None or (found[1], found[0]) < (best[1], best[0]):
            best = found
    return best


def longest_common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items a and b share. Compares slices, halving their length past each
    match (list comparison runs in C): a context of 1,400 ids is not walked id by id."""
    a, b = list(a), list(b)
    n = min(len(a), len(b))
    i, step = 0, n
    while step:
        while i + step <= n and a[i : i + step] == b[i : i + step]:
            i += step
        step //= 2
    return i


class ContinuationDecoder:
    """Decodes generated ids as text that continues a context, leading whitespace included.

    Decoding a continuation alone can drop or add a leading space (SentencePiece prefix
    handling), so the last few context ids are decoded with it and their text stripped off.
    """

    ANCHOR = 4

    def __init__(self, lm, context_ids: Sequence[int]):
        self.lm = lm
        self.context_ids = list(context_ids)
        self.anchor = self.context_ids[-self.ANCHOR :]
        self.anchor_text = lm.decode(self.anchor)

    def __call__(self, ids: Sequence[int]) -> str:
        if not ids:
            return ""
        text = self.lm.decode(self.anchor + list(ids))
        if text.startswith(self.anchor_text):
            return text[len(self.anchor_text) :]
        # the anchor ended inside a multi-byte character: decode against the whole context
        full = self.lm.decode(self.context_ids)
        text = self.lm.decode(self.context_ids + list(ids))
        return text[len(full) :]  # past the context's characters, whatever they decode to
