"""Step 3 of a round: every model scores every proposal by mean NLL, boundary-aware.

A proposal's tokens for model m are those of tokenize_m(prompt_m + R + c) beyond the longest
common prefix with the committed ids; when a tokenizer merges across the boundary, that prefix
is shorter than the committed ids and scoring covers the re-tokenised tail too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from adafuse.decoding.output import Proposal
from adafuse.decoding.text import longest_common_prefix


def proposal_rows(lm, committed: Sequence[int], context_text: str, proposals: Sequence[Proposal]):
    """Token rows of each proposal for one model, and where its scored tokens start."""
    rows, starts = [], []
    for p in proposals:
        ids = lm.encode(context_text + p.text)
        start = longest_common_prefix(ids, committed)
        if p.terminal == "eos":
            ids = ids + [lm.eos_id]  # the model scores its own EOS for an EOS-terminal span
        rows.append(ids)
        starts.append(start)
    return rows, starts


def ensemble_score(nlls: Sequence[float], weights: Sequence[float]) -> float:
    """Weighted mean of the finite NLLs; a model whose NLL is not finite is left out."""
    total = weight = 0.0
    for nll, w in zip(nlls, weights):
        if math.isfinite(nll):
            total += w * nll
            weight += w
    return total / weight if weight > 0 else math.inf
