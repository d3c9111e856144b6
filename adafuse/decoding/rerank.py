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
the scoring forward (one per model, all answers of a batch together, on the prompt's KV cache
kept from the decode). A model's own answer is scored again in that forward rather than taken
from its decode's logits: it costs its tokens once more, and keeps cached and recompute modes,
and every model, on the same footing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from adafuse.decoding.base import Decoder, ensemble_weights
from adafuse.decoding.decide import decide
from adafuse.decoding.greedy import decode_chunk
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

    def _decode_chunk(self, run, prompts, max_new_tokens, stop) -> list[Output]:
        engines = run.engines
        n, models = len(prompts), range(len(self.models))
        # answers[m][k]: (model m's greedy output for prompt k, the stop string that ended it)
        answers = [decode_chunk(self, engines[m], m, prompts, max_new_tokens, stop, keep=True)
                   for m in models]
        pools = {k: pool_proposals([[_candidate(m, *answers[m][k])] for m in models]) for k in range(n)}

        started = time.perf_counter()
        scores = []  # per model {k: ModelScores}, all from one scoring forward
        for m, engine in enumerate(engines):
            # the prompt's ids are committed (the decode left them); the scoring forward is
            # charged to the cost of each prompt's decode
            contexts = {k: self.models[m].format_prompt(prompts[k]) for k in range(n)}
            scores.append(score_pools(engine, contexts, pools)[0])
            for k in range(n):
                engine.remove(k)
        share = (time.perf_counter() - started) / n

        outputs = []
        for k in range(n):
            decision = decide(pools[k], [s[k].nll for s in scores], self.weights)
            merged = [m for m, s in enumerate(scores) if s[k].boundary_merge]
            trace = [Round(index=0, margins=[[] for _ in models], explored=[False for _ in models],
                           proposals=decision.pool, winner=decision.winner, boundary_merge=merged,
                           near_tie=decision.near_tie)]
            best, _ = answers[decision.chosen.proposers[0]][k]
            stats = Stats(models=[ModelCost(lm.name) for lm in self.models], seconds=share,
                          rounds=1, words=word_count(best.text),
                          boundary_merges=int(bool(merged)), near_ties=int(decision.near_tie))
            for m in models:
                decoded = answers[m][k][0].stats
                stats.models[m].add(decoded.models[0])
                stats.seconds += decoded.seconds
            first = self.models[0]
            prompt0 = first.format_prompt(prompts[k])
            stats.new_tokens = len(first.encode(prompt0 + best.text)) - len(first.encode(prompt0))
            outputs.append(Output(text=best.text, finish_reason=best.finish_reason, trace=trace,
                                  stats=stats))
        return outputs


def _candidate(model_index: int, out: Output, end: str) -> Proposal:
    """A greedy answer as a proposal: its text with the stop string that ended it, and how it
    ended (an EOS is a marker: each scoring model scores its own)."""
    terminal = {"stop": "stop", "eos": "eos"}.get(out.finish_reason)
    return Proposal(text=out.text + end, terminal=terminal, proposers=[model_index], kind="answer")
