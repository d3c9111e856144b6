"""Step 1 of a round: one model proposes word spans from its committed context.

Confident (Δ1 ≥ θ): one greedy span of k ≤ `max_words` words, k the largest value such that
Δ1 … Δ(k-1) ≥ θ: a confident word earns the next one, so Δ1 ≥ θ always earns word 2. Δj (j ≥ 2)
is read at the first distribution whose context holds word j-1's last character.
Uncertain (Δ1 < θ): the B most likely first tokens, each continued greedily to one word.

Everything here is read from the engine's `Dist`s (top tokens and log-probabilities); a
model's run is a `ProposalRun`, which a driver steps alone or in lockstep with the other
models' (`run_together`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import math

from adafuse.decoding.engine import Engine, Rows, Step, gather
from adafuse.decoding.engine.protocol import Done
from adafuse.decoding.output import Proposal
from adafuse.decoding.text import ContinuationDecoder, complete_word_ends, find_stop

WORD_TOKEN_CAP = 16  # tokens one word may take before its partial text is proposed


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


@dataclass
class OwnSpan:
    """What the proposer computed while generating a span: its tokens (an EOS last for an
    EOS-terminal span) and their log-probabilities, and the branch row that generated it
    (its rows keep the distributions on the device)."""

    tokens: list[int]
    logprobs: list[float]
    rows: object = None  # the `Rows` of the branch, None: no distribution can be asked for
    row: int = 0
    fed: int = 0  # tokens the row was fed (distributions it reached: fed + 1)

    def plan(self, tokens: Sequence[int]):
        """How to get the mean NLL of `tokens` from this span without a forward: None where
        the span does not cover them; else (sum of known log-probabilities, n, query, rows),
        query being None or the (row, position, token) whose log-probability `rows` must
        supply.

        All but the last token must be what was generated; the last may differ, because the
        distribution it is drawn from is known: a span cut at a stop string often ends in a
        token that the stop text re-tokenises differently (Gemma's "\n\n" where the stop
        string is "\n"), and its score then needs no forward."""
        n = len(tokens)
        if n == 0 or list(tokens[: n - 1]) != self.tokens[: n - 1]:
            return None
        if n <= min(len(self.tokens), len(self.logprobs)) and tokens[n - 1] == self.tokens[n - 1]:
            return sum(self.logprobs[:n]), n, None, None
        # the last token differs (or was never drawn): its distribution is the one after the
        # n - 1 tokens before it (the context's for a one-token span)
        if self.rows is None or n - 1 > self.fed or n - 1 > len(self.logprobs):
            return None
        return sum(self.logprobs[: n - 1]), n, (self.row, n - 1, int(tokens[n - 1])), self.rows


def own_span_nlls(plans: Sequence) -> list[float | None]:
    """Mean NLLs of `OwnSpan.plan` results, the log-probabilities they ask for read in one
    request per rows object."""
    asks: dict[int, tuple[object, list]] = {}
    for i, plan in enumerate(plans):
        if plan is not None and plan[2] is not None:
            asks.setdefault(id(plan[3]), (plan[3], []))[1].append(i)
    answers = {}
    for rows, members in asks.values():
        for i, value in zip(members, rows.logprobs([plans[i][2] for i in members])):
            answers[i] = value
    out = []
    for i, plan in enumerate(plans):
        if plan is None:
            out.append(None)
        else:
            known, n, query = plan[:3]
            out.append(-(known + (answers[i] if query is not None else 0.0)) / n)
    return out


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
    branch rows (the commit passes them back to the engine, which may adopt the winner's)
    and the NLLs of earlier models' proposals it scored in its first branch forward
    ({key: {(row, start): NLL}}, `Rows.folded`)."""

    by_key: dict
    rows: Rows | None = None
    folded: dict = field(default_factory=dict)


class ProposalRun:
    """One model's step 1 for the prompts of a batch, advanced one forward at a time.

    A driver (`propose_all`) takes `feed()`: the rows to step and their tokens, steps them
    (`Rows.step`, possibly together with other models' runs), and gives the results to
    `take()`, until `feed()` is empty; `result()` is then the model's `ModelProposals`.

    Confident (Δ1 ≥ θ): one greedy branch of up to `max_words` words; uncertain: the B most
    likely first tokens, each continued greedily to one word. `tails` holds the end of each
    prompt's response, where a stop string may begin, `stop` each prompt's stop strings. `score`: other models' proposals to
    score in the first branch forward ({key: (rows, starts)}; see `Engine.open_rows`)."""

    def __init__(self, engine: Engine, keys: Sequence, model_index: int, tails: dict,
                 contexts: dict, *, theta: float, max_words: int, num_candidates: int,
                 stop: dict, score: dict | None = None):
        self.engine, self.keys, self.model_index = engine, list(keys), model_index
        self.tails, self.theta, self.stops = tails, theta, stop
        self.branches: list[_Branch] = []
        self.next_tokens: list[int] = []
        self.token_logprob: list[float] = []  # of each branch's next token
        self.step_margin: list[float] = []  # margin of the distribution each token came from
        self.head: dict = {}
        for key in self.keys:
            dist = contexts[key]
            explore = not is_confident(dist.margin, theta)
            self.head[key] = (dist.margin, explore)
            picks = range(num_candidates) if explore else range(1)
            budget = (1, 1) if explore else (min(2, max_words), max_words)  # Δ1 ≥ θ earns word 2
            for j in picks:
                if j >= len(dist.ids):
                    break
                self.branches.append(_Branch(key=key, first_prob=math.exp(dist.logprobs[j]), earned=budget[0],
                                             max_words=budget[1], row=len(self.branches)))
                self.next_tokens.append(dist.ids[j])
                self.token_logprob.append(dist.logprobs[j])
                self.step_margin.append(dist.margin)
        self.decoders = {key: ContinuationDecoder(engine.lm, engine.ids[key]) for key in self.keys}
        self.rows = engine.open_rows([b.key for b in self.branches], score)
        self.live = list(range(len(self.branches)))

    def feed(self) -> tuple[list[int], list[int]]:
        """Append each live branch's next token; (rows that go on, the token each is fed)."""
        still = []
        lm = self.engine.lm
        for i in self.live:
            b = self.branches[i]
            b.logprobs.append(self.token_logprob[i])
            if _advance(b, self.next_tokens[i], self.step_margin[i], self.decoders[b.key], lm,
                        self.tails[b.key], self.theta, self.stops[b.key]):
                still.append(i)
        self.live = still
        return still, [self.branches[i].tokens[-1] for i in still]

    def take(self, steps: Sequence[Step]) -> None:
        """The results of stepping the rows `feed()` returned, in its order."""
        for i, step in zip(self.live, steps):
            dist = step.dist
            self.step_margin[i] = dist.margin
            self.next_tokens[i] = dist.ids[0]
            self.token_logprob[i] = dist.logprobs[0]
            b = self.branches[i]
            if b.pending:  # a word that ended inside the last token reads its Δ here
                b.pending = False
                _read_margin(b, dist.margin, self.theta)

    def result(self) -> ModelProposals:
        out = {}
        for key in self.keys:
            margin1, explore = self.head[key]
            mine = [b for b in self.branches if b.key == key]
            kind = "explore" if explore else "greedy"
            proposals = [
                Proposal(text=b.result[0], terminal=b.result[1], proposers=[self.model_index], kind=kind,
                         first_token_prob=b.first_prob)
                for b in mine
            ]
            spans = [OwnSpan(b.tokens + ([b.eos_token] if b.result[1] == "eos" else []), b.logprobs,
                             self.rows, b.row, len(self.rows.fed[b.row])) for b in mine]
            out[key] = Proposed(proposals, [margin1] + (mine[0].margins if mine and not explore else []),
                                explore, spans)
        return ModelProposals(out, self.rows, self.rows.folded)


def propose(engine: Engine, keys: Sequence, model_index: int, tails: dict, *, theta: float,
            max_words: int, num_candidates: int, stop, score: dict | None = None) -> ModelProposals:
    """One model's step 1 alone, for each prompt of `keys` (`stop`: the stop strings of all
    prompts, or {key: stop strings})."""
    keys = list(keys)
    stops = stop if isinstance(stop, dict) else {k: list(stop) for k in keys}
    run = ProposalRun(engine, keys, model_index, tails, engine.contexts(keys, max(2, num_candidates)), theta=theta,
                      max_words=max_words, num_candidates=num_candidates, stop=stops, score=score)
    run_together([run])
    return run.result()


def run_together(runs: Sequence[ProposalRun]) -> None:
    """Advance runs of different models in lockstep until all are done: each step is issued
    to every model with rows left before any result is used (members on different devices
    compute at the same time; in one process they simply take turns within the step)."""
    feeds = [run.feed() for run in runs]
    while any(live for live, _ in feeds):
        pending = [run.rows.submit("step", live, tokens) if live else Done([])
                   for run, (live, tokens) in zip(runs, feeds)]
        for run, result in zip(runs, gather(pending)):
            run.take(result)
        feeds = [run.feed() if live else (live, tokens) for run, (live, tokens) in zip(runs, feeds)]


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
