"""The AdaFuse decoder: propose, pool, score, commit, one round at a time.

    from adafuse import load_model, AdaFuse
    pair = [load_model("smollm2-135m-instruct"), load_model("gemma3-270m")]
    out = AdaFuse(pair, theta_delta=0.7).generate("Question: ...\\nAnswer:", stop=["\\n"])

The algorithm is `../shared/docs/adafuse.md`; each step lives in its own module:
proposals.py (step 1), the pool below (step 2), scoring.py (step 3), the commit below (step 4).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from adafuse.decoding.base import Decoder, check_range, ensemble_weights
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.proposals import propose
from adafuse.decoding.scoring import ensemble_score, proposal_rows
from adafuse.decoding.text import find_stop, word_count

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
        weights = ensemble_weights(weights, self.models)
        self.theta_delta = float(theta_delta)
        self.max_words = int(max_words)
        self.num_candidates = int(num_candidates)
        self.weights = weights

    def _decode(self, prompts, max_new_tokens, stop, batch_size, finished):
        totals = [ModelCost(lm.name) for lm in self.models]
        engines = [self.open_engine(m, totals[m]) for m in range(len(self.models))]
        tail_len = max((len(s) for s in stop), default=1) - 1
        results: list[Output | None] = [None] * len(prompts)
        queue = deque(range(len(prompts)))
        states: dict[int, _State] = {}
        while queue or states:
            joining = []
            while queue and len(states) + len(joining) < batch_size:  # finished places are refilled
                joining.append(queue.popleft())
            if joining:
                started = time.perf_counter()
                states.update(self._start(joining, prompts, engines))
                share = (time.perf_counter() - started) / len(joining)
                for key in joining:
                    states[key].stats.seconds += share
            started = time.perf_counter()
            done = self._round(states, engines, stop, tail_len, max_new_tokens)
            share = (time.perf_counter() - started) / len(states)
            for state in states.values():
                state.stats.seconds += share
            for key in done:
                results[key] = self._finish(states.pop(key))
                for engine in engines:
                    engine.remove(key)
                finished(key, results[key])
        self.last_totals = totals
        return results

    def _start(self, keys, prompts, engines) -> dict:
        """The prompts `keys` join the batch (each model prefills them together)."""
        states = {key: _State(prompts=[lm.format_prompt(prompts[key]) for lm in self.models],
                              stats=Stats(models=[ModelCost(lm.name) for lm in self.models]))
                  for key in keys}
        for m, engine in enumerate(engines):
            self.add_prompts(engine, m, [(k, s.prompts[m], s.stats.models[m]) for k, s in states.items()])
        for key, state in states.items():
            state.prompt_len = len(engines[0].ids[key])
        return states

    def _finish(self, state: _State) -> Output:
        stats = state.stats
        stats.rounds = len(state.trace)
        stats.boundary_merges = sum(1 for r in state.trace if r.boundary_merge)
        stats.near_ties = sum(1 for r in state.trace if r.near_tie)
        stats.words = word_count(state.response)
        stats.new_tokens = len(self.models[0].encode(state.prompts[0] + state.response)) - state.prompt_len
        return Output(text=state.response, finish_reason=state.finish, trace=state.trace, stats=stats)

    def _round(self, states, engines, stop, tail_len, max_new_tokens) -> list:
        """One round for every prompt of the batch; returns the keys that finished."""
        keys = list(states)
        tails = {k: states[k].response[-tail_len:] if tail_len else "" for k in keys}
        proposed = self._propose(engines, keys, tails, stop, states=states)
        pools = {k: pool_proposals([proposed[m][k][0] for m in range(len(engines))]) for k in keys}
        nlls, merged = self._score(states, engines, keys, proposed, pools)
        return self._commit(states, engines, keys, proposed, pools, nlls, merged, stop, tail_len,
                            max_new_tokens)

    def _propose(self, engines, keys, tails, stop, states=None) -> list[dict]:
        """Step 1, per model: {key: (proposals, margins, explored, own spans or None)}.

        The models propose in turn, and each scores the proposals of the models before it in
        its first branch forward, so the last model needs no scoring forward of its own.
        A subclass with another proposal rule (a baseline) overrides this step only."""
        proposed: list[dict] = []
        for m, engine in enumerate(engines):
            score = None
            if m and states is not None:
                score = {}
                for k in keys:
                    earlier = pool_proposals([proposed[j][k][0] for j in range(m)])
                    context = states[k].prompts[m] + states[k].response
                    score[k] = proposal_rows(engine.lm, engine.ids[k], context, earlier)
            proposed.append(propose(engine, keys, m, tails, theta=self.theta_delta,
                                    max_words=self.max_words, num_candidates=self.num_candidates,
                                    stop=stop, score=score))
        return proposed

    def _score(self, states, engines, keys, proposed, pools) -> tuple[list[dict], dict]:
        """Step 3: every model's mean NLL of every pooled proposal, one batched forward per model.

        Returns ({key: [nll per proposal]} per model, {key: models whose scoring re-tokenised
        across the commit boundary})."""
        nlls: list[dict] = []
        merged: dict = {k: [] for k in keys}
        for m, engine in enumerate(engines):
            nll_m: dict = {}
            requests = {}
            for k in keys:
                committed = engine.ids[k]
                context = states[k].prompts[m] + states[k].response
                rows, starts = proposal_rows(engine.lm, committed, context, pools[k])
                if any(s < len(committed) for s in starts):
                    merged[k].append(m)
                nll_m[k] = [None] * len(rows)
                spans = proposed[m][k][3]
                if engine.reuses_own_spans and spans is not None:
                    # a model's own span was scored while it was generated: same tokens, same
                    # context, so only the other proposals need a forward
                    own = {(p.text, p.terminal): span for p, span in zip(proposed[m][k][0], spans)}
                    for i, (p, row, start) in enumerate(zip(pools[k], rows, starts)):
                        if p.key in own and start == len(committed):
                            nll_m[k][i] = own[p.key].nll(row[start:])
                ahead = engine.prescored.get(k, {})
                for i, (row, start) in enumerate(zip(rows, starts)):
                    if nll_m[k][i] is None:
                        nll_m[k][i] = ahead.get((tuple(row), start))
                todo = [i for i, v in enumerate(nll_m[k]) if v is None]
                if todo:
                    requests[k] = ([rows[i] for i in todo], [starts[i] for i in todo], todo)
            if requests:
                scored = engine.score({k: (r, s) for k, (r, s, _) in requests.items()})
                for k, (_, _, todo) in requests.items():
                    for i, v in zip(todo, scored[k]):
                        nll_m[k][i] = v
            nlls.append(nll_m)
        return nlls, merged

    def _commit(self, states, engines, keys, proposed, pools, nlls, merged, stop, tail_len,
                max_new_tokens) -> list:
        """Steps 2 and 4: the winner of each pool is appended for every model."""
        finished, commits = [], {}
        for k in keys:
            state, pool = states[k], pools[k]
            for i, p in enumerate(pool):
                p.nll = [nlls[m][k][i] for m in range(len(engines))]
                p.score = ensemble_score(p.nll, self.weights)
            winner = pick_winner(pool)
            scores = sorted(p.score for p in pool)
            state.trace.append(Round(
                index=len(state.trace),
                margins=[proposed[m][k][1] for m in range(len(engines))],
                explored=[proposed[m][k][2] for m in range(len(engines))],
                proposals=pool, winner=winner, boundary_merge=merged[k],
                near_tie=len(scores) > 1 and scores[1] - scores[0] < NEAR_TIE_NATS))
            win = pool[winner]
            new_response = state.response + win.text
            if win.terminal == "stop":
                cut = find_stop(new_response, max(0, len(state.response) - tail_len), stop)
                state.response = new_response[: cut[0]] if cut else new_response
                state.finish = "stop"
            elif win.terminal == "eos":
                state.response, state.finish = new_response, "eos"
            elif not win.text:
                state.finish = "length"  # nothing was added: another round would repeat this one
            else:
                state.response = new_response
                commits[k] = new_response
                continue
            finished.append(k)
        for m, engine in enumerate(engines):
            if commits:
                engine.commit({k: engine.lm.encode(states[k].prompts[m] + r) for k, r in commits.items()})
        for k in commits:
            # the budget is in the first model's tokens; each round adds at least one
            spent = len(engines[0].ids[k]) - states[k].prompt_len
            if spent >= max_new_tokens or len(states[k].trace) >= max_new_tokens:
                states[k].finish = "length"
                finished.append(k)
        return finished


@dataclass
class _State:
    """One prompt's decode in progress."""

    prompts: list[str]  # prompt_m per model
    stats: Stats
    prompt_len: int = 0  # the first model's prompt tokens
    response: str = ""
    finish: str = "length"
    trace: list[Round] = field(default_factory=list)
