"""Sample-level ensemble: each model writes its greedy answer, every model scores every answer.

    python -m adafuse.run decoder=rerank task=triviaqa

Each model decodes its full answer alone, exactly as the greedy decoder does (same stop
strings and budget, in that model's own tokens; the code is greedy.py's). Then every model
scores every answer by mean NLL given its prompt, boundary-aware as AdaFuse scores a span, and
the answer with the lowest ensemble score (weighted mean over models) is the output; ties go to
the earlier model. An answer is scored with the end that ended it, as a terminal AdaFuse
proposal is: the stop string that cut it, or each scoring model's own EOS; an answer that ran
out of budget is scored as it stands.

Its trace is one round: the candidates (identical answers merged, their proposers listed), each
model's NLL of each, the ensemble scores and the winner. The cost counts both greedy decodes and
the scoring forward (one per model for the prompts whose answers are all written in the same
step, on the prompt's KV cache kept from the decode). Prompts join and leave as greedy's do:
a finished prompt's place is refilled at the next step. A model's own answer is scored again in that forward rather than taken
from its decode's logits: it costs its tokens once more, and keeps cached and recompute modes,
and every model, on the same footing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from adafuse.decoding import greedy
from adafuse.decoding.base import Decoder, ensemble_weights
from adafuse.decoding.decide import decide
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.pool import pool_proposals
from adafuse.decoding.registry import register_decoder
from adafuse.decoding.scoring import score_pools
from adafuse.decoding.text import word_count


@register_decoder
class Rerank(Decoder):
    """Picks, among the models' greedy answers, the one the ensemble finds most likely."""

    name = "rerank"

    def __init__(self, models: Sequence, *, weights: Sequence[float] | None = None,
                 mode: str = "cached", engine=None):
        super().__init__(models, mode=mode, engine=engine)
        self.weights = ensemble_weights(weights, self.models)

    # --- the session's hooks (session.py): a finished prompt's place is refilled ---------
    # A step is one greedy token for every model and prompt still going (greedy.step); the
    # prompts whose answers are all written are scored together and leave.

    def _open(self) -> _Run:
        engines, totals = self.open_engines()
        return _Run(engines, totals, [greedy._Run(engine, [total]) for engine, total in zip(engines, totals)])

    def _admit(self, run: _Run, requests) -> None:
        for m, decode in enumerate(run.decodes):
            greedy.admit(self, m, decode, requests)
            for r in requests:
                run.prompt_ids[m][r.key] = list(decode.engine.ids[r.key])
        for r in requests:
            run.prompts[r.key], run.seconds[r.key] = r.prompt, 0.0

    def _round(self, run: _Run) -> list:
        for lm, decode in zip(self.models, run.decodes):
            greedy.step(lm, decode)
        written = [k for k in run.prompts if k not in run.outputs
                   and all(d.items[k].finish is not None for d in run.decodes)]
        # a scoring forward per model serves the written prompts together: they wait for it
        # until they are half of those in flight (their places then refilled together)
        if not written or 2 * len(written) < len(run.prompts):
            return []
        self._rerank(run, written)
        return written

    def _rerank(self, run: _Run, keys) -> None:
        """Every model scores every answer of `keys` after its prompt (one scoring forward per
        model for all of them; a decode that went on has committed part of its answer, so the
        prompt's ids are named), then each prompt's output is the ensemble's pick."""
        models = range(len(self.models))
        answers = {k: [(d.items[k].output(), d.items[k].end) for d in run.decodes] for k in keys}
        pools = {k: pool_proposals([[_candidate(m, *answers[k][m])] for m in models]) for k in keys}
        scores = []  # per model {k: ModelScores}
        for m, decode in enumerate(run.decodes):
            contexts = {k: self.models[m].format_prompt(run.prompts[k]) for k in keys}
            scores.append(score_pools(decode.engine, contexts, pools, committed=run.prompt_ids[m])[0])
        for k in keys:
            self._forget(run, k)
            run.outputs[k] = self._output_of(run.prompts[k], pools[k], answers[k], [s[k] for s in scores])

    def _output_of(self, prompt: str, pool, answers, scores) -> Output:
        models = range(len(self.models))
        decision = decide(pool, [s.nll for s in scores], self.weights)
        merged = [m for m, s in enumerate(scores) if s.boundary_merge]
        trace = [Round(index=0, margins=[[] for _ in models], explored=[False for _ in models],
                       proposals=decision.pool, winner=decision.winner, boundary_merge=merged,
                       near_tie=decision.near_tie)]
        best, _ = answers[decision.chosen.proposers[0]]
        stats = Stats(models=[ModelCost(lm.name) for lm in self.models], rounds=1,
                      words=word_count(best.text), boundary_merges=int(bool(merged)),
                      near_ties=int(decision.near_tie))
        for m in models:  # each model's decode and its scoring forward (charged to the prompt)
            stats.models[m].add(answers[m][0].stats.models[0])
        first = self.models[0]
        prompt0 = first.format_prompt(prompt)
        stats.new_tokens = len(first.encode(prompt0 + best.text)) - len(first.encode(prompt0))
        return Output(text=best.text, finish_reason=best.finish_reason, trace=trace, stats=stats)

    def _forget(self, run: _Run, key) -> None:
        for m, decode in enumerate(run.decodes):
            if decode.items.pop(key, None) is not None:
                decode.engine.remove(key)
            run.prompt_ids[m].pop(key, None)

    def _charge(self, run: _Run, keys, seconds: float) -> None:
        for key in keys:
            run.seconds[key] += seconds / len(keys)

    def _output(self, run: _Run, key) -> Output:
        out = run.outputs.pop(key)
        out.stats.seconds = run.seconds.pop(key)
        del run.prompts[key]
        return out

    def _partial(self, run: _Run, key) -> str:
        return ""  # nothing is decided before every answer is written

    def _drop(self, run: _Run, key) -> None:
        self._forget(run, key)
        run.outputs.pop(key, None)
        run.prompts.pop(key, None)
        run.seconds.pop(key, None)


@dataclass
class _Run:
    engines: list
    totals: list
    decodes: list  # greedy._Run per model
    prompt_ids: list = None  # per model {key: the prompt's ids}
    prompts: dict = field(default_factory=dict)  # key -> prompt, while in flight
    seconds: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)  # written and scored, not yet taken

    def __post_init__(self):
        self.prompt_ids = [{} for _ in self.engines]


def _candidate(model_index: int, out: Output, end: str) -> Proposal:
    """A greedy answer as a proposal: its text with the stop string that ended it, and how it
    ended (an EOS is a marker: each scoring model scores its own)."""
    terminal = {"stop": "stop", "eos": "eos"}.get(out.finish_reason)
    return Proposal(text=out.text + end, terminal=terminal, proposers=[model_index], kind="answer")
