"""The stop-string rule, one for decoding and for scoring (no torch: the scorer uses it too).

A stop string ends the output where generation would have noticed it: text grows left to
right, so the stop that COMPLETES first wins, i.e. the occurrence with the smallest end; among
occurrences ending at the same offset, the longest (the earliest start). The output is the text
before that occurrence. So over "abc" with stops ["abc", "b"], "b" (ending at 2) is seen before
"abc" (ending at 3) and the output is "a"; with stops ["bc", "abc"] both end at 3 and "abc", the
longer, cuts: the output is "". Empty stop strings are ignored.

The decoders (adafuse/decoding/: greedy, proposals, ensemble, union_topk) call `find_stop` on
the text as it grows; the tasks (adafuse/tasks/filters.cut_at_stop) cut a whole output with it
before scoring, so a saved response re-scored gives what the decoder had returned.
"""

from __future__ import annotations

from collections.abc import Sequence


def find_stop(text: str, start: int, stops: Sequence[str]) -> tuple[int, int] | None:
    """The first stop string of `text` that ends after offset `start`, as (begin, end).

    "First" is the one that would be seen first while generating left to right: the
    smallest end, then the longest match (the module's rule). Occurrences wholly inside
    text[:start] are old (a decoder passes what it had already checked).
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


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """A whole output cut by the rule: the text before the first stop string to complete."""
    found = find_stop(text, 0, stops)
    return text if found is None else text[: found[0]]
