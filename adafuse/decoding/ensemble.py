"""The AdaFuse decoder: propose, pool, score, commit, one round at a time.

    from adafuse import load_model, AdaFuse
    pair = [load_model("smollm2-135m-instruct"), load_model("gemma3-270m")]
    out = AdaFuse(pair, theta_delta=0.7).generate("Question: ...\\nAnswer:", stop=["\\n"])

The algorithm is `../shared/docs/adafuse.md`. `AdaFuse._round` is one round, in phases that
are issued to every model before any result is used, so that members on different devices
compute at the same time:

    propose (every model, from the same committed text)     proposals.py  -> ModelProposals
    pool    (the union of the proposals, per prompt)         pool.py       -> [Proposal]
    score   (every model scores every pooled proposal)      scoring.py    -> ModelScores, held
    decide  (the lowest ensemble score wins)                 decide.py     -> Decision
    commit  (the winner is appended for every model)         below

What passes between them is values: the engines answer in tokens and log-probabilities
(`engine/readout.py`), and the round's state that a commit needs (the branch rows and the
scoring forward whose keys and values the winner may already hold) is `held`, handed from
score to commit. A `Session` (session.py) drives rounds: prompts join between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from adafuse.decoding.base import Decoder, ensemble_weights
from adafuse.decoding.decide import Decision, decide
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.pool import pool_proposals
from adafuse.decoding.proposals import ModelProposals, ProposalRun, run_together
from adafuse.decoding.registry import check_parameters, register_decoder
from adafuse.decoding.engine import gather
from adafuse.decoding.engine.protocol import Done
from adafuse.decoding.scoring import fill_scores, proposal_rows_many, score_requests
from adafuse.decoding.text import encode_continuations, find_stop, word_count


@register_decoder
class AdaFuse(Decoder):
    """Adaptive span-level ensemble of one or more causal LMs (any tokenizers)."""

    name = "adafuse"
    # documented caps: B branches and words a span may hold (each branch a row of every step)
    bounds = {"theta_delta": (0, 1), "max_words": (1, 64), "num_candidates": (1, 64)}
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

    def engine_top_k(self) -> int:
        return max(2, self.num_candidates)

    # --- the session's hooks (session.py): prompts join between rounds -------------------

    def _open(self) -> _Run:
        engines, totals = self.open_engines()
        fold = self.engine_options.folds([lm.device for lm in self.models])
        return _Run(engines, totals, fold=fold and self.mode == "cached")

    def _admit(self, run: _Run, requests) -> None:
        """The prompts of `requests` join the batch (each model prefills them together)."""
        states = {r.key: _State(prompts=[lm.format_prompt(r.prompt) for lm in self.models],
                                stats=Stats(models=[ModelCost(lm.name) for lm in self.models]),
                                stop=r.stop, max_new_tokens=r.max_new_tokens)
                  for r in requests}
        for m, engine in enumerate(run.engines):
            self.add_prompts(engine, m, [(k, s.prompts[m], s.stats.models[m]) for k, s in states.items()])
        for key, state in states.items():
            state.prompt_len = len(run.engines[0].ids[key])
        run.states.update(states)

    def _charge(self, run: _Run, keys, seconds: float) -> None:
        for key in keys:
            run.states[key].stats.seconds += seconds / len(keys)

    def _partial(self, run: _Run, key) -> str:
        return run.states[key].response

    def _drop(self, run: _Run, key) -> None:
        run.states.pop(key, None)
        for engine in run.engines:
            engine.remove(key)

    def _output(self, run: _Run, key) -> Output:
        state = run.states.pop(key)
        for engine in run.engines:
            engine.remove(key)
        stats = state.stats
        stats.rounds = len(state.trace)
        stats.boundary_merges = sum(1 for r in state.trace if r.boundary_merge)
        stats.near_ties = sum(1 for r in state.trace if r.near_tie)
        stats.words = word_count(state.response)
        stats.new_tokens = len(self.models[0].encode(state.prompts[0] + state.response)) - state.prompt_len
        return Output(text=state.response, finish_reason=state.finish, trace=state.trace, stats=stats)

    # --- one round, in phases ---------------------------------------------------------------

    def _round(self, run: _Run) -> list:
        """One round for every prompt of the batch; returns the keys that finished.

        Each phase is issued to every model before its results are used: propose (every
        model, from the same committed text) -> pool -> score (every model, every pooled
        proposal) -> decide -> commit (every model). With `run.fold` (engine option
        `fold_scoring`), the models propose in turn instead, each later one scoring the
        earlier ones' proposals in its first branch forward (one forward less per model on
        one CPU, but no two models compute at the same time)."""
        states, engines = run.states, run.engines
        keys = list(states)
        proposed = self.propose(engines, states, keys, run.fold)
        pools = {k: self.pool([proposed[m].by_key[k].proposals for m in range(len(engines))]) for k in keys}
        scores, held = self.score(engines, states, pools, proposed)
        decisions = {k: decide(pools[k], [s[k].nll for s in scores], self.weights) for k in keys}
        return self.commit(states, engines, proposed, scores, held, decisions)

    def propose(self, engines, states, keys, fold: bool = False) -> list[ModelProposals]:
        """Step 1, per model: what it proposes for every prompt (`proposals.ProposalRun`).

        Unfolded, every model's branch steps are issued together (`run_together`); folded,
        the models take turns and each scores the proposals of the models before it in its
        first branch forward, so the last model needs no scoring forward of its own.
        A subclass with another proposal rule (a baseline) overrides this step only."""
        contexts = gather([engine.submit("contexts", keys) for engine in engines])
        tails, stops = {k: states[k].tail() for k in keys}, {k: states[k].stop for k in keys}
        runs: list[ProposalRun] = []
        done: list[ModelProposals] = []
        for m, engine in enumerate(engines):
            score = None
            if fold and m:
                score = proposal_rows_many(engine.lm, {
                    k: (engine.ids[k], states[k].prompts[m] + states[k].response,
                        self.pool([done[j].by_key[k].proposals for j in range(m)]))
                    for k in keys})
            runs.append(ProposalRun(engine, keys, m, tails, contexts[m], theta=self.theta_delta,
                                    max_words=self.max_words, num_candidates=self.num_candidates,
                                    stop=stops, score=score))
            if fold:
                run_together(runs[-1:])
                done.append(runs[-1].result())
        if not fold:
            run_together(runs)
            done = [run.result() for run in runs]
        return done

    @staticmethod
    def pool(per_model) -> list[Proposal]:
        """Step 2: the union of the models' proposals (`pool.pool_proposals`)."""
        return pool_proposals(per_model)

    def score(self, engines, states, pools, proposed) -> tuple[list[dict], list[list]]:
        """Step 3: every model's mean NLL of every pooled proposal ({key: ModelScores} per
        model, `scoring.score_pools`): from its own span where it generated it (not in the
        recompute oracle), from its first branch forward where it scored it there, the rest in
        one batched scoring forward per model, all models' issued before any is read. Also,
        per model, what the commit may adopt (its branch rows and its `Scored`): the round's
        state, passed on by the caller rather than kept by the engines."""
        known, pending = [], []
        for m, engine in enumerate(engines):
            contexts = {k: states[k].prompts[m] + states[k].response for k in pools}
            own = None
            if self.reuse_own_spans:
                own = {k: proposed[m].by_key[k].spans_by_key() for k in pools}
            out, requests = score_requests(engine, contexts, pools, own, proposed[m].folded)
            known.append((out, requests))
            pending.append(engine.submit("score", {k: (r, s) for k, (r, s, _) in requests.items()})
                           if requests else Done(None))
        scores, held = [], []
        for m, ((out, requests), scored) in enumerate(zip(known, gather(pending))):
            scores.append(fill_scores(out, requests, scored))
            held.append([h for h in (proposed[m].rows, scored) if h is not None])
        return scores, held

    def commit(self, states, engines, proposed, scores, held, decisions: dict[object, Decision]) -> list:
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
            if self._append(state, decision.chosen):
                commits[k] = state.response
            else:
                finished.append(k)
        pending = []
        for m, engine in enumerate(engines):
            if commits:  # R + winner encoded as a whole would be, re-tokenising its tail only
                ids = encode_continuations(engine.lm, [
                    (states[k].prompts[m] + before[k], engine.ids[k], [states[k].prompts[m] + r])
                    for k, r in commits.items()])
                pending.append(engine.submit("commit", {k: row for k, (row,) in zip(commits, ids)}, held[m]))
        gather(pending)
        for k in commits:
            # the budget is in the first model's tokens; each round adds at least one
            spent = len(engines[0].ids[k]) - states[k].prompt_len
            if spent >= states[k].max_new_tokens or len(states[k].trace) >= states[k].max_new_tokens:
                states[k].finish = "length"
                finished.append(k)
        return finished

    @staticmethod
    def _append(state, win: Proposal) -> bool:
        """R <- R + the winner; False where the decode ends here (cut at a stop string, an
        EOS, or nothing added: another round would repeat this one)."""
        new_response = state.response + win.text
        if win.terminal == "stop":
            cut = find_stop(new_response, max(0, len(state.response) - state.tail_len()), state.stop)
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
    stop: list[str] = field(default_factory=list)
    max_new_tokens: int = 256
    prompt_len: int = 0  # the first model's prompt tokens
    response: str = ""
    finish: str = "length"
    trace: list[Round] = field(default_factory=list)

    def tail_len(self) -> int:
        """How far back from the response's end a stop string may begin."""
        return max((len(s) for s in self.stop), default=1) - 1

    def tail(self) -> str:
        """The end of the response where a stop string may begin."""
        n = self.tail_len()
        return self.response[-n:] if n else ""


@dataclass
class _Run:
    """A session's engines (one per model), their totals and the prompts in flight."""

    engines: list
    totals: list
    fold: bool = False
    states: dict = field(default_factory=dict)
