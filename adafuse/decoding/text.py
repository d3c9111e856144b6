"""Words, stop strings, and continuations decoded and re-tokenised: the text rules of the method.
The stop-string rule itself (`find_stop`) is adafuse/stops.py's, shared with the scorer.

A word is a maximal run of non-whitespace characters, whitespace being what `str.isspace()`
says. A word is complete once whitespace follows it. Text is never rebuilt from words.
"""

from __future__ import annotations

from collections.abc import Sequence

from adafuse.stops import find_stop  # noqa: F401  (the decoders' stop rule, shared with the scorer)


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


class ContinuationEncoder:
    """encode(text) of texts that continue a context whose ids are known, encoding only
    their tails.

    A decode re-tokenises prompt_m + R + c for every proposal c and every commit, and with a
    few-shot prompt that is 1,400 tokens each time. Here the known ids are cut `ANCHOR` ids
    before their end, at j; the context's text splits there at k (what those last ids decode
    to), and a text t starting with context[:k] encodes as ids[:j] + tail(t[k:]), the tail
    encoded without special tokens. That holds where the cut is a boundary the tokenizer
    keeps whatever follows it, so it is checked on the context itself: tail(context[k:]) must
    give back ids[j:]; where it does not (a cut inside a multi-byte character, a tokenizer
    that adds a prefix space to a tail), or a text does not start with context[:k], the whole
    text is encoded. A merge reaching back over ANCHOR tokens past an edit at the end would
    break the rule: BPE with pre-tokenisation (SmolLM2) never merges across its pre-tokens,
    and the test suite checks every tokenizer it loads against full encodes.
    """

    ANCHOR = 48

    def __init__(self, lm, context: str, context_ids: Sequence[int]):
        self.lm, self.context, self.ids = lm, context, list(context_ids)
        self.cut = None  # (j, k) once checked
        if len(self.ids) > self.ANCHOR + 1:
            j = len(self.ids) - self.ANCHOR
            tail = lm.decode(self.ids[j:])
            if tail and context.endswith(tail):
                self.cut = (j, len(context) - len(tail))

    def requests(self, texts: Sequence[str]) -> list[tuple[str, bool]]:
        """(text to encode, whether it is a tail) for the check (when there is a cut), then
        for each text."""
        if self.cut is None:
            return [(t, False) for t in texts]
        j, k = self.cut
        head = self.context[:k]
        return [(self.context[k:], True)] + [(t[k:], True) if t.startswith(head) else (t, False) for t in texts]

    def assemble(self, requests: Sequence[tuple[str, bool]], encoded: Sequence[list[int]]) -> list[list[int]] | None:
        """encode(t) of each text from `requests(texts)` and their encodings; None where the
        check failed (then encode the texts whole)."""
        if self.cut is None:
            return list(encoded)
        j, _ = self.cut
        check, *rest = encoded
        if check != self.ids[j:]:
            return None
        return [self.ids[:j] + ids if tail else ids for (_, tail), ids in zip(requests[1:], rest)]


def encode_continuations(lm, contexts: Sequence[tuple[str, Sequence[int], Sequence[str]]]) -> list[list[list[int]]]:
    """For each (context, its ids, texts continuing it): encode(t) of each text, the tails of
    all of them in one tokenizer call (`ContinuationEncoder`)."""
    encoders = [ContinuationEncoder(lm, context, ids) for context, ids, _ in contexts]
    requests = [enc.requests(texts) for enc, (_, _, texts) in zip(encoders, contexts)]
    tails = iter(lm.encode_many([t for r in requests for t, tail in r if tail], add_special_tokens=False))
    whole = iter(lm.encode_many([t for r in requests for t, tail in r if not tail]))
    out, again = [], []
    for n, (enc, req) in enumerate(zip(encoders, requests)):
        encoded = [next(tails) if tail else next(whole) for _, tail in req]
        result = enc.assemble(req, encoded)
        if result is None:
            again.append(n)
        out.append(result)
    if again:
        redone = iter(lm.encode_many([t for n in again for t in contexts[n][2]]))
        for n in again:
            out[n] = [next(redone) for _ in contexts[n][2]]
    return out
