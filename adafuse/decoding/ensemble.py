"""The AdaFuse decoder: propose, pool, score, commit, one round at a time.

    from adafuse import load_model, AdaFuse
    pair = [load_model("smollm2-135m-instruct"), load_model("gemma3-270m")]
    out = AdaFuse(pair, theta_delta=0.7).generate("Question: ...\\nAnswer:", stop=["\\n"])

The algorithm is `../shared/docs/adafuse.md`; each step lives in its own module:
proposals.py (step 1), the pool below (step 2), scoring.py (step 3), the commit below (step 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from adafuse.decoding.base import Decoder, check_range
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.proposals import propose
from adafuse.decoding.scoring import ensemble_score, proposal_rows
from adafuse.decoding.text import find_stop, longest_common_prefix, word_count
from adafuse.errors import AdaFuseError

NEAR_TIE_NATS = 1e-4


def pool_proposals(per_model: Sequence[Sequence[Proposal]]) -> list[Proposal]:
    """Union keyed by (text, terminal kind), in order of first appearance (the tie-break)."""
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


def pick_winner(proposals: Sequence[Proposal]) -> int:
    """Lowest ensemble score; ties go to the earliest proposal."""
    best = 0
    for i, p in enumerate(proposals):
        if p.score < proposals[best].score:
            best = i
    return best


class AdaFuse(Decoder):
    """Adaptive span-level ensemble of one or more causal LMs (any tokenizers)."""

    name = "adafuse"

    def __init__(
        self,
        models: Sequence,
        *,
        theta_delta: float = 0.7,
        max_words: int = 3,
        num_candidates: int = 3,
        weights: Sequence[float] | None = None,
        mode: str = "cached",
    ):
        super().__init__(models, mode=mode)
        check_range("theta_delta", theta_delta, 0, 1)
        check_range("max_words", max_words, 1, integer=True)
        check_range("num_candidates", num_candidates, 1, integer=True)
        if weights is None:
            weights = [getattr(m, "weight", 1.0) for m in self.models]
        weights = [float(w) for w in weights]
        if len(weights) != len(self.models):
            raise AdaFuseError(
                f"weights={weights} has {len(weights)} entries for {len(self.models)} models"
            )
        if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
            raise AdaFuseError(f"weights={weights}: each must be >= 0 and their sum > 0")
        self.theta_delta = float(theta_delta)
        self.max_words = int(max_words)
        self.num_candidates = int(num_candidates)
        self.weights = weights

    def _generate(self, prompt: str, max_new_tokens: int, stop: list[str]) -> Output:
        prompts = [lm.format_prompt(prompt) for lm in self.models]
        costs = [ModelCost(lm.name) for lm in self.models]
        sessions = [self.open_session(m, p, c) for m, (p, c) in enumerate(zip(prompts, costs))]
        prompt_len = len(sessions[0].ids)
        tail_len = max((len(s) for s in stop), default=1) - 1
        stats = Stats(models=costs)
        trace: list[Round] = []
        response = ""
        finish = "length"
        try:
            # each round commits at least one token of the first model, or ends the decode
            for index in range(max_new_tokens):
                round_ = self._round(index, sessions, prompts, response, stop, tail_len)
                trace.append(round_)
                winner = round_.proposals[round_.winner]
                new_response = response + winner.text
                if winner.terminal == "stop":
                    cut = find_stop(new_response, max(0, len(response) - tail_len), stop)
                    response = new_response[: cut[0]] if cut else new_response
                    finish = "stop"
                    break
                if winner.terminal == "eos":
                    response = new_response
                    finish = "eos"
                    break
                if not winner.text:
                    break  # nothing was added: another round would repeat this one
                response = new_response
                for lm, p, s in zip(self.models, prompts, sessions):
                    s.commit(lm.encode(p + response))
                if len(sessions[0].ids) - prompt_len >= max_new_tokens:
                    break
        finally:
            for s in sessions:
                s.close()
        stats.rounds = len(trace)
        stats.boundary_merges = sum(1 for r in trace if r.boundary_merge)
        stats.near_ties = sum(1 for r in trace if r.near_tie)
        stats.words = word_count(response)
        stats.new_tokens = len(self.models[0].encode(prompts[0] + response)) - prompt_len
        return Output(text=response, finish_reason=finish, trace=trace, stats=stats)

    def _round(self, index, sessions, prompts, response, stop, tail_len) -> Round:
        tail = response[-tail_len:] if tail_len else ""
        per_model, margins, explored = [], [], []
        for m, session in enumerate(sessions):
            proposals, model_margins, model_explored = propose(
                session, m, tail, theta=self.theta_delta, max_words=self.max_words,
                num_candidates=self.num_candidates, stop=stop,
            )
            per_model.append(proposals)
            margins.append(model_margins)
            explored.append(model_explored)
        pool = pool_proposals(per_model)

        nlls, merged = [], []
        for m, session in enumerate(sessions):
            rows, starts = proposal_rows(session, prompts[m] + response, pool)
            nlls.append(session.score(rows, starts))
            if any(s < len(session.ids) for s in starts):
                merged.append(m)
        for i, p in enumerate(pool):
            p.nll = [nlls[m][i] for m in range(len(sessions))]
            p.score = ensemble_score(p.nll, self.weights)
        winner = pick_winner(pool)
        scores = sorted(p.score for p in pool)
        near_tie = len(scores) > 1 and scores[1] - scores[0] < NEAR_TIE_NATS
        return Round(index=index, margins=margins, explored=explored, proposals=pool,
                     winner=winner, boundary_merge=merged, near_tie=near_tie)
