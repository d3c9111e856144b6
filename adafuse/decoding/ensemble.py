"""The AdaFuse decoder: propose, pool, score, commit, one round at a time.

    from adafuse import load_model, AdaFuse
    pair = [load_model("smollm2-135m-instruct"), load_model("gemma3-270m")]
    out = AdaFuse(pair, theta_delta=0.7).generate("Question: ...\\nAnswer:", stop=["\\n"])

The algorithm is `../shared/docs/adafuse.md`. `AdaFuse._round` calls its four steps in order,
each a method named after it: `propose` (proposals.py), `pool` (pool.py), `score`
(scoring.py) and `commit` (below), with the winner picked by `decide` (decide.py) between the
last two.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from adafuse.decoding.base import Decoder, ensemble_weights
from adafuse.decoding.decide import Decision, decide
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.pool import pool_proposals
from adafuse.decoding.proposals import ModelProposals, propose
from adafuse.decoding.registry import check_parameters, register_decoder
from adafuse.decoding.scoring import ModelScores, proposal_rows_many, score_pools
from adafuse.decoding.text import encode_continuations, find_stop, word_count


@register_decoder
class AdaFuse(Decoder):
    """Adaptive span-level ensemble of one or more causal LMs (any tokenizers)."""

    name = "adafuse"
    bounds = {"theta_delta": (0, 1), "max_words": (1, None), "num_candidates": (1, None)}
    labels = {"theta_delta": "θ_Δ", "num_candidates": "B"}  # the paper's names, in reports

    def __init__(
        self,
        models: Sequence,
        *,
        theta_delta: float = 0.7,
        max_words: int = 3,
        num_candidates: int = 3,
        weights: Sequence[float] | None = None,
        mode: str = "cached",
        engine=None,
    ):
        super().__init__(models, mode=mode, engine=engine)
        check_parameters(AdaFuse, {"theta_delta": theta_delta, "max_words": max_words,
                                   "num_candidates": num_candidates}, len(self.models))
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
        proposed = self.propose(engines, states, keys, stop, tail_len)
        pools = {k: self.pool([proposed[m].by_key[k].proposals for m in range(len(engines))]) for k in keys}
        scores = self.score(engines, states, pools, proposed)
        decisions = {k: decide(pools[k], [s[k].nll for s in scores], self.weights) for k in keys}
        return self.commit(states, engines, proposed, scores, decisions, stop, tail_len, max_new_tokens)

    def propose(self, engines, states, keys, stop, tail_len) -> list[ModelProposals]:
        """Step 1, per model: what it proposes for every prompt (`proposals.propose`).

        The models propose in turn, and each scores the proposals of the models before it in
        its first branch forward, so the last model needs no scoring forward of its own.
        A subclass with another proposal rule (a baseline) overrides this step only."""
        tails = {k: states[k].response[-tail_len:] if tail_len else "" for k in keys}
        proposed: list[ModelProposals] = []
        for m, engine in enumerate(engines):
            score = None
            if m:
                score = proposal_rows_many(engine.lm, {
                    k: (engine.ids[k], states[k].prompts[m] + states[k].response,
                        self.pool([proposed[j].by_key[k].proposals for j in range(m)]))
                    for k in keys})
            proposed.append(propose(engine, keys, m, tails, theta=self.theta_delta,
                                    max_words=self.max_words, num_candidates=self.num_candidates,
                                    stop=stop, score=score))
        return proposed

    @staticmethod
    def pool(per_model) -> list[Proposal]:
        """Step 2: the union of the models' proposals (`pool.pool_proposals`)."""
        return pool_proposals(per_model)

    def score(self, engines, states, pools, proposed) -> list[dict[object, ModelScores]]:
        """Step 3: every model's mean NLL of every pooled proposal ({key: ModelScores} per
        model, `scoring.score_pools`): from its own span where it generated it (not in the
        recompute oracle), from its first branch forward where it scored it there, the rest in
        one batched scoring forward per model."""
        scores = []
        for m, engine in enumerate(engines):
            contexts = {k: states[k].prompts[m] + states[k].response for k in pools}
            own = None
            if self.reuse_own_spans:
                own = {k: proposed[m].by_key[k].spans_by_key() for k in pools}
            scores.append(score_pools(engine, contexts, pools, own, proposed[m].folded))
        return scores

    def commit(self, states, engines, proposed, scores, decisions: dict[object, Decision], stop,
               tail_len, max_new_tokens) -> list:
        """Step 4: each prompt's round goes into its trace and its winner is appended to R for
        every model (`_append`); returns the keys that finished (a terminal or empty winner,
        or the budget spent)."""
        finished, commits, before = [], {}, {}
        for k, decision in decisions.items():
            state = states[k]
            before[k] = state.response
            state.trace.append(Round(
                index=len(state.trace),
                margins=[p.by_key[k].margins for p in proposed],
                explored=[p.by_key[k].explored for p in proposed],
                proposals=decision.pool, winner=decision.winner,
                boundary_merge=[m for m, s in enumerate(scores) if s[k].boundary_merge],
                near_tie=decision.near_tie))
            if self._append(state, decision.chosen, stop, tail_len):
                commits[k] = state.response
            else:
                finished.append(k)
        for m, engine in enumerate(engines):
            if commits:  # R + winner encoded as a whole would be, re-tokenising its tail only
                ids = encode_continuations(engine.lm, [
                    (states[k].prompts[m] + before[k], engine.ids[k], [states[k].prompts[m] + r])
                    for k, r in commits.items()])
                engine.commit({k: row for k, (row,) in zip(commits, ids)}, proposed[m].branches)
        for k in commits:
            # the budget is in the first model's tokens; each round adds at least one
            spent = len(engines[0].ids[k]) - states[k].prompt_len
            if spent >= max_new_tokens or len(states[k].trace) >= max_new_tokens:
                states[k].finish = "length"
                finished.append(k)
        return finished

    @staticmethod
    def _append(state, win: Proposal, stop, tail_len) -> bool:
        """R <- R + the winner; False where the decode ends here (cut at a stop string, an
        EOS, or nothing added: another round would repeat this one)."""
        new_response = state.response + win.text
        if win.terminal == "stop":
            cut = find_stop(new_response, max(0, len(state.response) - tail_len), stop)
            state.response = new_response[: cut[0]] if cut else new_response
            state.finish = "stop"
        elif win.terminal == "eos":
            state.response, state.finish = new_response, "eos"
        elif not win.text:
            state.finish = "length"
        else:
            state.response = new_response
            return True
        return False


@dataclass
class _State:
    """One prompt's decode in progress."""

    prompts: list[str]  # prompt_m per model
    stats: Stats
    prompt_len: int = 0  # the first model's prompt tokens
    response: str = ""
    finish: str = "length"
    trace: list[Round] = field(default_factory=list)
