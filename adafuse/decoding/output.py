"""What a decoder returns: the response, the per-round trace and the cost counters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelCost:
    """Cost of one model. A forward is one model call, however many rows it batches;
    tokens fed counts non-padding input tokens."""

    name: str
    forwards: int = 0
    tokens_fed: int = 0
    seconds: float = 0.0
    # {kind: [forwards, seconds]}: what the forwards were for (prefill, step, score,
    # step+score, recompute), kept on a decode's totals for benchmarks and profiles
    by_kind: dict = field(default_factory=dict)

    def add(self, other: ModelCost) -> None:
        self.forwards += other.forwards
        self.tokens_fed += other.tokens_fed
        self.seconds += other.seconds
        for kind, (n, seconds) in other.by_kind.items():
            self.count_kind(kind, n, seconds)

    def count_kind(self, kind: str, forwards: int, seconds: float) -> None:
        mine = self.by_kind.setdefault(kind, [0, 0.0])
        mine[0] += forwards
        mine[1] += seconds


@dataclass
class Stats:
    models: list[ModelCost]
    seconds: float = 0.0
    rounds: int = 0
    words: int = 0  # words of the final response
    new_tokens: int = 0  # the first model's tokens of the response
    boundary_merges: int = 0  # rounds where re-tokenising prompt_m + R changed committed ids
    near_ties: int = 0  # rounds whose two best ensemble scores differ by < 1e-4 nats

    @property
    def forwards(self) -> int:
        return sum(m.forwards for m in self.models)

    @property
    def tokens_fed(self) -> int:
        return sum(m.tokens_fed for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["forwards"] = self.forwards
        out["tokens_fed"] = self.tokens_fed
        return out


@dataclass
class Proposal:
    """One candidate span: exact text (leading whitespace included) and how it ends.

    `terminal` is None, "eos" (the proposer emitted its EOS; kept as a marker, not text) or
    "stop" (the text ends with a task stop string).
    """

    text: str
    terminal: str | None
    proposers: list[int]  # indices of the models that proposed it, first proposer first
    kind: str  # "greedy" (confident span) or "explore" (one-word branch)
    first_token_prob: float = 0.0
    nll: list[float] = field(default_factory=list)  # per model, mean NLL of the span
    score: float = float("inf")  # ensemble score: weighted mean of the finite NLLs

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.text, self.terminal)


@dataclass
class Round:
    index: int
    margins: list[list[float]]  # per model: Δ1, then the Δj read while extending a span
    explored: list[bool]  # per model: Δ1 < θ
    proposals: list[Proposal]
    winner: int
    boundary_merge: list[int] = field(default_factory=list)  # models whose ids were re-tokenised
    near_tie: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Output:
    text: str
    finish_reason: str  # "eos", "stop", "length"
    trace: list[Round]
    stats: Stats
    prompt: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "stats": self.stats.to_dict(),
            "trace": [r.to_dict() for r in self.trace],
        }

    def summary(self, model_names: list[str] | None = None, max_rounds: int = 12) -> str:
        """One line a round, in words: what each model did (explored how many branches, or
        was confident, and its top-1 margin Δ), how many proposals, the winner and who
        proposed it; the README's example printed "round  1: smollm2 confident, 1 word
        (Δ 0.82), gemma3 explored 3 (Δ 0.09); 3 proposals; winner ' VIII\\n' [stop] from
        smollm2+gemma3 (score 1.376)". Names default to the models' in `stats`."""
        from adafuse.traceview import round_line

        names = model_names or [m.name for m in self.stats.models]
        lines = [round_line(r.to_dict(), names) for r in self.trace[:max_rounds]]
        if len(self.trace) > max_rounds:
            lines.append(f"... {len(self.trace) - max_rounds} more rounds")
        return "\n".join(lines)
