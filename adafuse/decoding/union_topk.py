"""Token-level union ensemble (UniTE-style): each step, the union of the models' top-k tokens.

    python -m adafuse.run decoder=union_topk decoder.top_k=10 task=triviaqa

One round a step. Each model m maps its `top_k` most likely next tokens to *pieces*: the text
the token adds after the committed text prompt_m + R (decoded against the committed ids, so a
SentencePiece leading space is kept). The union of all models' pieces, keyed by exact text as in
AdaFuse's pool, is scored by every model and the piece with the lowest ensemble score is
appended to R for all of them. Scoring, commit, stop rules, budget and traces are AdaFuse's
(this class only replaces its proposal step); the tokenizers never have to share a vocabulary.

Pieces that are not one token for another tokenizer. A piece is text, and every model scores
it through its own tokenizer exactly as AdaFuse scores a span: its tokens are those of
tokenize_m(prompt_m + R + piece) beyond the longest common prefix with the committed ids. So a
piece that model m splits into several tokens (" Teck" = " Te" + "ck") is scored over all of
them, and one that merges with the end of R (R ends in "." and the piece is "\\n", which m
writes as one ".\\n" token) is scored from the earlier position, the re-tokenised tail
included. The score is the *mean* NLL over those tokens, not the sum: the same scorer AdaFuse
and the fixed-span baseline use, so the three differ only in what they propose; and a piece's
token count depends on the tokenizer, so a sum would charge a model one extra token's NLL
merely because its vocabulary splits the piece (the sum, log p(piece), would also favour the
shorter of two pieces whose texts share a start whatever the models prefer).

A token whose text is an incomplete character (a byte-fallback token holding part of a UTF-8
sequence, which decodes to U+FFFD) or empty adds no text of its own: it is not a piece. If no
model has a piece left, the decode ends (finish "length"). An EOS among a model's top-k is an
EOS-terminal piece; a piece that completes a stop string is stop-terminal, its text cut after
the stop string; both end the decode when they win, as in AdaFuse.
"""

from __future__ import annotations

from collections.abc import Sequence

from adafuse.decoding.ensemble import AdaFuse
from adafuse.decoding.output import Proposal
from adafuse.decoding.proposals import ModelProposals, Proposed
from adafuse.decoding.registry import check_parameters, register_decoder
from adafuse.decoding.text import ContinuationDecoder, find_stop

INCOMPLETE = "\ufffd"  # what a partial UTF-8 sequence decodes to


def token_pieces(engine, key, dist, model_index: int, top_k: int, tail: str, stop: Sequence[str]):
    """Model `model_index`'s top-k next tokens after prompt `key` (`dist`, the engine's
    distribution there) as proposals, and Δ1."""
    lm = engine.lm
    decode = ContinuationDecoder(lm, engine.ids[key])
    pieces = []
    for token, prob in zip(dist.ids[:top_k], dist.probs(top_k)):
        if token in lm.eos_ids:
            text, terminal = "", "eos"
        else:
            text, terminal = decode([token]), None
            if not text or INCOMPLETE in text:
                continue
            found = find_stop(tail + text, len(tail), stop)
            if found is not None:
                text, terminal = (tail + text)[len(tail) : found[1]], "stop"
        pieces.append(Proposal(text=text, terminal=terminal, proposers=[model_index], kind="token",
                               first_token_prob=prob))
    return pieces, dist.margin


@register_decoder
class UnionTopK(AdaFuse):
    """Token-level ensemble: each step appends the best of the union of the models' top-k."""

    name = "union_topk"
    bounds = {"top_k": (1, 1000)}  # a documented cap: every model scores every piece of the union

    def __init__(self, models: Sequence, *, top_k: int = 10,
                 weights: Sequence[float] | None = None, mode: str = "cached", engine=None):
        check_parameters(UnionTopK, {"top_k": top_k})
        # θ, max_words and B are AdaFuse's; this decoder's proposal step does not read them
        super().__init__(models, theta_delta=0.0, max_words=1, num_candidates=1, weights=weights,
                         mode=mode, engine=engine)
        self.top_k = int(top_k)

    def engine_top_k(self) -> int:
        return max(2, self.top_k)

    def propose(self, engines, states, keys, fold: bool = False) -> list[ModelProposals]:
        """Step 1: each model's top-k pieces; no spans, so every piece is scored by a forward."""
        out = []
        for m, engine in enumerate(engines):
            per_key = {}
            contexts = engine.contexts(keys)
            for k in keys:
                pieces, margin = token_pieces(engine, k, contexts[k], m, self.top_k, states[k].tail(),
                                              states[k].stop)
                per_key[k] = Proposed(pieces, [margin], explored=False)
            out.append(ModelProposals(per_key))
        for k in keys:  # no piece at all: an empty proposal, which ends the decode
            if not any(out[m].by_key[k].proposals for m in range(len(engines))):
                out[0].by_key[k].proposals.append(Proposal(text="", terminal=None, proposers=[0], kind="token"))
        return out
