"""Step 3 of a round: every model scores every proposal by mean NLL, boundary-aware.

A proposal's tokens for model m are those of tokenize_m(prompt_m + R + c) beyond the longest
common prefix with the committed ids; when a tokenizer merges across the boundary, that prefix
is shorter than the committed ids and scoring covers the re-tokenised tail too.

Each NLL comes from one of three places, recorded beside it:
- OWN_SPAN: the proposer's own span, from the logits it was generated with (same tokens, same
  context: no forward);
- BRANCH_FORWARD: a later model scored an earlier model's proposal in its first branch
  forward of step 1 (`Rows.folded`);
- SCORING_FORWARD: the rest, in one batched scoring forward per model (`Engine.score`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from adafuse.decoding.output import Proposal
from adafuse.decoding.proposals import own_span_nlls
from adafuse.decoding.text import encode_continuations, longest_common_prefix

OWN_SPAN, BRANCH_FORWARD, SCORING_FORWARD = "own span", "branch forward", "scoring forward"


def proposal_rows(lm, committed: Sequence[int], context_text: str, proposals: Sequence[Proposal]):
    """Token rows of each proposal for one model, and where its scored tokens start."""
    return proposal_rows_many(lm, {None: (committed, context_text, proposals)})[None]


def proposal_rows_many(lm, requests: dict) -> dict:
    """`proposal_rows` of several prompts, {key: (committed, context_text, proposals)} ->
    {key: (rows, starts)}: each context_text + c encoded as a whole would be, but only its
    tail re-tokenised, all prompts' in one tokenizer call (`text.encode_continuations`)."""
    encoded = encode_continuations(lm, [(context, committed, [context + p.text for p in proposals])
                                        for committed, context, proposals in requests.values()])
    out = {}
    for (key, (committed, _, proposals)), per_key in zip(requests.items(), encoded):
        rows, starts = [], []
        for p, ids in zip(proposals, per_key):
            starts.append(longest_common_prefix(ids, committed))
            if p.terminal == "eos":
                ids = ids + [lm.eos_id]  # the model scores its own EOS for an EOS-terminal span
            rows.append(ids)
        out[key] = (rows, starts)
    return out


@dataclass
class ModelScores:
    """One model's mean NLL of each pooled proposal of one prompt, and where each came from."""

    nll: list = field(default_factory=list)
    source: list = field(default_factory=list)
    boundary_merge: bool = False  # some proposal re-tokenises committed ids


def score_pools(engine, contexts: dict, pools: dict, own_spans: dict | None = None,
                folded: dict | None = None, committed: dict | None = None) -> tuple[dict, object]:
    """Step 3 for one model: ({key: ModelScores} of every proposal of `pools` ({key: pool}),
    the engine's `Scored` of its scoring forward or None), the latter for the commit.
    `score_requests` then `fill_scores`, for a model alone."""
    out, requests = score_requests(engine, contexts, pools, own_spans, folded, committed)
    scored = engine.score({k: (r, s) for k, (r, s, _) in requests.items()}) if requests else None
    return fill_scores(out, requests, scored), scored


def score_requests(engine, contexts: dict, pools: dict, own_spans: dict | None = None,
                   folded: dict | None = None, committed: dict | None = None) -> tuple[dict, dict]:
    """What one model knows of its NLLs before its scoring forward: {key: ModelScores} with
    the own-span and folded NLLs filled in, and the requests left for `Engine.score`
    ({key: (rows, starts, pool indices)}).

    contexts: {key: prompt_m + R}, the text the committed ids encode;
    own_spans: {key: {(text, terminal): OwnSpan}} this model generated this round (None: no
        shortcut, every NLL from a forward);
    folded: `Rows.folded` of this model's branch rows this round (NLLs already computed);
    committed: {key: the ids `contexts[key]` encodes} where that is a prefix of the engine's
        committed ids (rerank scores after the prompt once its decode went on); None: the
        engine's committed ids."""
    out, requests, plans = {}, {}, []
    ids = {k: (committed or {}).get(k, engine.ids[k]) for k in pools}
    encoded = proposal_rows_many(engine.lm, {k: (ids[k], contexts[k], pool) for k, pool in pools.items()})
    for key, pool in pools.items():
        rows, starts = encoded[key]
        out[key] = ModelScores([None] * len(pool), [None] * len(pool), any(s < len(ids[key]) for s in starts))
        spans = (own_spans or {}).get(key, {})
        for i, (p, row, start) in enumerate(zip(pool, rows, starts)):
            if p.key in spans and start == len(ids[key]):
                plans.append((key, i, spans[p.key].plan(row[start:])))
    for (key, i, _), nll in zip(plans, own_span_nlls([plan for *_, plan in plans])):
        if nll is not None:
            out[key].nll[i], out[key].source[i] = nll, OWN_SPAN
    for key, pool in pools.items():
        rows, starts = encoded[key]
        scores, ahead = out[key], (folded or {}).get(key, {})
        for i, (row, start) in enumerate(zip(rows, starts)):
            if scores.nll[i] is None and (tuple(row), start) in ahead:
                scores.nll[i], scores.source[i] = ahead[(tuple(row), start)], BRANCH_FORWARD
        todo = [i for i, v in enumerate(scores.nll) if v is None]
        if todo:
            requests[key] = ([rows[i] for i in todo], [starts[i] for i in todo], todo)
    return out, requests


def fill_scores(out: dict, requests: dict, scored) -> dict:
    """`score_requests`' ModelScores completed with the NLLs of its scoring forward."""
    for key, (_, _, todo) in requests.items():
        for i, v in zip(todo, scored.nll[key]):
            out[key].nll[i], out[key].source[i] = v, SCORING_FORWARD
    return out
