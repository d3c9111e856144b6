"""Step 2 of a round: the pool, the union of every model's proposals."""

from __future__ import annotations

from collections.abc import Sequence

from adafuse.decoding.output import Proposal


def pool_proposals(per_model: Sequence[Sequence[Proposal]]) -> list[Proposal]:
    """Union keyed by (text, terminal kind), in order of first appearance (the tie-break);
    a proposal made again lists its further proposers."""
    pool: dict[tuple[str, str | None], Proposal] = {}
    for proposals in per_model:
        for p in proposals:
            if p.key in pool:
                merged = pool[p.key]
                for m in p.proposers:
                    if m not in merged.proposers:
                        merged.proposers.append(m)
            else:
                pool[p.key] = Proposal(p.text, p.terminal, list(p.proposers), p.kind,
                                       p.first_token_prob)
    return list(pool.values())
