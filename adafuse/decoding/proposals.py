"""Step 1 of a round: one model proposes word spans from its committed context.

Confident (Δ1 ≥ θ): one greedy span of k ≤ `max_words` words, k the largest value such that
Δ1 … Δ(k-1) ≥ θ: a confident word earns the next one, so Δ1 ≥ θ always earns word 2. Δj (j ≥ 2)
is read at the first distribution whose context holds word j-1's last character.
Uncertain (Δ1 < θ): the B most likely first tokens, each continued greedily to one word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from adafuse.decoding.engine import Branches, Engine
from adafuse.decoding.output import Proposal
from adafuse.decoding.text import ContinuationDecoder, complete_word_ends, find_stop

WORD_TOKEN_CAP = 16  # tokens one word may take before its partial text is proposed


def margin_and_top(logits: torch.Tensor, k: int) -> tuple[float, list[int], list[float]]:
    """Top-1 margin Δ = p1 - p2 after softmax (float64: host decision), and the top-k tokens.
    The top tokens are read off the logits (the same order as their probabilities) and only
    their probabilities computed, exp(logit - logsumexp) in float64: 35% less time than a
    float64 softmax of the whole vocabulary, equal to it within 1e-15."""
    top = torch.topk(logits, min(max(k, 2), logits.numel()))
    values = torch.exp(top.values.double() - torch.logsumexp(logits.double(), dim=-1)).tolist()
    margin = values[0] - (values[1] if len(values) > 1 else 0.0)
    return margin, top.indices.tolist()[:k], values[:k]


def is_confident(margin: float, theta: float) -> bool:
    # θ = 1 is the always-uncertain ablation, also where softmax saturates to a one-hot
    return theta < 1.0 and margin >= theta


@dataclass
class _Branch:
    key: object  # the prompt this branch continues
    first_prob: float
    earned: int  # words this span holds so far; grows while the margins stay ≥ θ
    max_words: int
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    words_done: int = 0
    word_tokens: int = 0  # tokens spent on the word being completed
    pending: bool = False  # a word ended inside the last token: its Δ comes next step
    margins: list[float] = field(default_factory=list)  # Δj read on this branch (j ≥ 2)
    result: tuple[str, str | None] | None = None  # (text, terminal) once finished
    row: int = 0  # its row in the engine's batch
    eos_token: int | None = None
    logprobs: list[float] = field(default_factory=list)  # of each token, then of an EOS
    after: list = field(default_factory=list)  # logits after each fed token


@dataclass
class OwnSpan:
    """What the proposer computed while generating a span: its tokens (an EOS last for an
    EOS-terminal span), their log-probabilities, the logits after each fed token, and the
    context logits its first token came from."""

    tokens: list[int]
    logprobs: list[float]
    after: list
    context: torch.Tensor | None = None

    def nll(self, tokens: Sequence[int]) -> float | None:
        """Mean NLL of `tokens` from the logits the span was generated with, or None where
        those logits do not cover them.

        All but the last token must be what was generated; the last may differ, because the
        distribution it is drawn from is known: a span cut at a stop string often ends in a
        token that the stop text re-tokenises differently (Gemma's "\n\n" where the stop
        string is "\n"), and its score then needs no forward."""
        n = len(tokens)
        if n == 0 or list(tokens[: n - 1]) != self.tokens[: n - 1]:
            return None
        if n <= min(len(self.tokens), len(self.logprobs)) and tokens[n - 1] == self.tokens[n - 1]:
            return -sum(self.logprobs[:n]) / n
        # the last token differs (or was never drawn): its distribution is the context's
        # for a one-token span, else the logits after the token before it
        dist = self.context if n == 1 else (self.after[n - 2] if n - 2 < len(self.after) else None)
        if dist is None or n - 1 > len(self.logprobs):
            return None
        last = float(torch.log_softmax(dist.float(), dim=-1)[int(tokens[n - 1])])
        return -(sum(self.logprobs[: n - 1]) + last) / n


@dataclass
class Proposed:
    """What one model proposed for one prompt in a round: its proposals, the margins it read
    (Δ1, then the Δj read while extending a span), whether it explored (Δ1 < θ), and per
    proposal what it computed generating it (None: a proposal rule without spans)."""

    proposals: list[Proposal]
    margins: list[float]
    explored: bool
    own_spans: list[OwnSpan] | None = None

    def spans_by_key(self) -> dict:
        """{(text, terminal): OwnSpan} of its proposals."""
        if self.own_spans is None:
            return {}
        return {p.key: span for p, span in zip(self.proposals, self.own_spans)}


@dataclass
class ModelProposals:
    """Step 1 of one model for every prompt of the batch: what it proposed per prompt, its
    branch rows (a commit may adopt the winner's) and the NLLs of earlier models' proposals
    it scored in its first branch forward ({key: {(row, start): NLL}}, `Rows.folded`)."""

    by_key: dict
    branches: Branches | None = None
    folded: dict = field(default_factory=dict)


def propose(
    engine: Engine,
    keys: Sequence,
    model_index: int,
    tails: dict,
    *,
    theta: float,
    max_words: int,
    num_candidates: int,
    stop: Sequence[str],
    score: dict | None = None,
) -> ModelProposals:
    """One model's proposals for each prompt of `keys`.

    The branches of all prompts advance together, one forward per step. `tails` holds the
    end of each prompt's response, where a stop string may begin. `score`: other models'
    proposals to score in the first branch forward ({key: (rows, starts)}; see
    `Engine.open_rows`).
    """
    lm = engine.lm
    branches: list[_Branch] = []
    firsts: list[tuple[int, float]] = []
    dists: list[torch.Tensor] = []  # the distribution each branch's next token comes from
    head: dict = {}
    for key in keys:
        context = engine.context_logits(key)
        margin1, top_ids, top_probs = margin_and_top(context, num_candidates)
        explore = not is_confident(margin1, theta)
        head[key] = (margin1, explore, context)
        if explore:
            picks = list(zip(top_ids, top_probs))
            budget = (1, 1)
        else:
            picks = [(top_ids[0], top_probs[0])]
            budget = (min(2, max_words), max_words)  # Δ1 ≥ θ earns word 2
        for token, prob in picks:
            branches.append(_Branch(key=key, first_prob=prob, earned=budget[0],
                                    max_words=budget[1], row=len(branches)))
            firsts.append((token, margin1))
            dists.append(context)
    decoders = {key: ContinuationDecoder(lm, engine.ids[key]) for key in keys}
    rows = engine.open_rows([b.key for b in branches], score)
    next_tokens = [t for t, _ in firsts]
    step_margin = [m for _, m in firsts]  # margin of the distribution each token came from
    live = list(range(len(branches)))

    while live:
        still = []
        for i, token in zip(live, next_tokens):
            b = branches[i]
            b.logprobs.append(float(torch.log_softmax(dists[i].float(), dim=-1)[token]))
            if _advance(b, token, step_margin[i], decoders[b.key], lm, tails[b.key], theta, stop):
                still.append(i)
        live = still
        if not live:
            break
        logits = rows.extend(live, [branches[i].tokens[-1] for i in live])
        next_tokens = []
        for j, i in enumerate(live):
            margin, (best,), _ = margin_and_top(logits[j], 1)
            step_margin[i] = margin
            next_tokens.append(best)
            dists[i] = logits[j]
            branches[i].after.append(logits[j])
            # a word that ended inside the last token reads its Δ here
            if branches[i].pending:
                branches[i].pending = False
                _read_margin(branches[i], margin, theta)

    out = {}
    for key in keys:
        margin1, explore, context = head[key]
        mine = [b for b in branches if b.key == key]
        kind = "explore" if explore else "greedy"
        proposals = [
            Proposal(text=b.result[0], terminal=b.result[1], proposers=[model_index], kind=kind,
                     first_token_prob=b.first_prob)
            for b in mine
        ]
        spans = [OwnSpan(b.tokens + ([b.eos_token] if b.result[1] == "eos" else []), b.logprobs,
                         b.after, context) for b in mine]
        out[key] = Proposed(proposals, [margin1] + (mine[0].margins if not explore else []), explore, spans)
    fed = {b.row: (b.tokens, b.after) for b in branches}
    return ModelProposals(out, Branches(rows, fed), rows.folded)


def _advance(b: _Branch, token: int, token_margin: float, decode, lm, response_tail: str,
             theta: float, stop: Sequence[str]) -> bool:
    """Append one token to a branch; return whether the branch goes on."""
    if token in lm.eos_ids:
        b.result = (b.text, "eos")
        b.eos_token = token
        return False
    previous_len = len(b.text)
    b.tokens.append(token)
    b.word_tokens += 1
    b.text = decode(b.tokens)
    found = find_stop(response_tail + b.text, len(response_tail), stop)
    if found is not None:
        b.result = ((response_tail + b.text)[len(response_tail) : found[1]], "stop")
        return False
    ends = complete_word_ends(b.text)
    while b.words_done < len(ends):
        end = ends[b.words_done]
        b.words_done += 1
        b.word_tokens = 0
        if b.words_done >= b.earned:
            b.result = (b.text[:end], None)
            return False
        if b.words_done + 1 < b.max_words:  # Δ(j+1) decides whether word j+2 is earned
            if end <= previous_len:
                # the word's last character was already in the context of this token's step
                _read_margin(b, token_margin, theta)
            else:
                # the token holds the word's end and the whitespace after it
                b.pending = True
    if b.word_tokens >= WORD_TOKEN_CAP:
        b.result = (b.text, None)
        return False
    return True


def _read_margin(b: _Branch, margin: float, theta: float) -> None:
    """Δ(j+1) after word j: a confident one earns word j+2."""
    b.margins.append(margin)
    if is_confident(margin, theta):
        b.earned = min(b.words_done + 2, b.max_words)
