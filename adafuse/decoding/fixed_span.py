"""Fixed-span ensemble: every round each model proposes exactly `span_words` words, greedily.

    python -m adafuse.run decoder=fixed_span decoder.span_words=3 task=triviaqa

The fixed-granularity baseline of the paper (SweetSpan-style span ensembles): no margin gate
and no exploration; the pool, the mean-NLL scoring and the commit are AdaFuse's.

It is AdaFuse with θ = 0, B = 1 and max_words = k, and is built as exactly that. Why that is
the rule (adafuse/decoding/proposals.py): a margin Δ = p1 - p2 is never negative, so with θ = 0
`is_confident` holds for Δ1 (no exploration, one greedy branch; B is unused) and for every Δj
read while the span grows, each of which earns the next word up to `max_words`. So the single
proposal holds k words, except where the text ends first (EOS or a stop string: a terminal
proposal), where one word reaches the 16-token cap (its partial text is proposed), or where one
token completes two words before the first one's Δ could be read (then the span ends at the
words earned so far; real tokenizers rarely have a token with whitespace inside a word run).
"""

from __future__ import annotations

from collections.abc import Sequence

from adafuse.decoding.ensemble import AdaFuse
from adafuse.decoding.registry import check_parameters, register_decoder


@register_decoder
class FixedSpan(AdaFuse):
    """Span-level ensemble with a fixed span of `span_words` words per proposal."""

    name = "fixed_span"
    bounds = {"span_words": (1, 64)}  # a documented cap, as AdaFuse's max_words
    labels = {"span_words": "k"}

    def __init__(self, models: Sequence, *, span_words: int = 3,
                 weights: Sequence[float] | None = None, mode: str = "cached", engine=None):
        check_parameters(FixedSpan, {"span_words": span_words})
        super().__init__(models, theta_delta=0.0, max_words=int(span_words), num_candidates=1,
                         weights=weights, mode=mode, engine=engine)
        self.span_words = int(span_words)
