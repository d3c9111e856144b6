"""Where a round's winner is picked: the NLLs of every model are aggregated into one ensemble
score per proposal, the lowest wins (ties to the earliest proposal, the pool's order), and a
round whose two best scores are closer than `NEAR_TIE_NATS` is flagged as a near-tie.

`decide` is the one rule AdaFuse, rerank and every baseline use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from adafuse.decoding.output import Proposal

NEAR_TIE_NATS = 1e-4


def ensemble_score(nlls: Sequence[float], weights: Sequence[float]) -> float:
    """Weighted mean of the finite NLLs; a model whose NLL is not finite is left out."""
    total = weight = 0.0
    for nll, w in zip(nlls, weights):
        if math.isfinite(nll):
            total += w * nll
            weight += w
    return total / weight if weight > 0 else math.inf


def pick_winner(proposals: Sequence[Proposal]) -> int:
    """Lowest ensemble score; ties go to the earliest proposal."""
    best = 0
    for i, p in enumerate(proposals):
        if p.score < proposals[best].score:
            best = i
    return best


@dataclass
class Decision:
    """A round's decision: the pool (each proposal's NLLs and score filled in), the winner's
    index in it and whether the two best scores were a near-tie."""

    pool: list[Proposal]
    winner: int
    near_tie: bool

    @property
    def chosen(self) -> Proposal:
        return self.pool[self.winner]


def decide(pool: list[Proposal], nlls: Sequence[Sequence[float]], weights: Sequence[float]) -> Decision:
    """nlls[m][i]: model m's mean NLL of pool[i]. Fills each proposal's `nll` (per model) and
    `score`, and picks the winner."""
    for i, p in enumerate(pool):
        p.nll = [per_model[i] for per_model in nlls]
        p.score = ensemble_score(p.nll, weights)
    scores = sorted(p.score for p in pool)
    near_tie = len(scores) > 1 and scores[1] - scores[0] < NEAR_TIE_NATS
    return Decision(pool=pool, winner=pick_winner(pool), near_tie=near_tie)
