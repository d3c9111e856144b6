"""The records of a run folder and their JSON form.

    results.json    Results: the header from the start (config, task, versions, git, ...),
                    metrics and cost totals once the run is complete
    samples.jsonl   Sample: one line an item
    trace.jsonl     TraceRow: one line a round of an item

A record wraps the JSON object as it was written (its JSON form is that object, so files stay
byte for byte what they were) and gives typed access to the fields the format defines. Fields
another writer adds are kept. A record is checked when it is made: a field of another type
than adafuse.run writes (results.json: checks.results_problem; a sample or trace line:
safe_read's SAMPLE_FIELDS, TRACE_FIELDS), or one that is needed and missing (a folder from an
older version, or not from adafuse at all), is a one-line error naming the file and the field,
so every reader that goes through these records (merge, score rescore=, a resumed run) stops
at the damage with that line, never later with a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from adafuse.errors import AdaFuseError
from adafuse.runfolder.checks import results_problem
from adafuse.safe_read import SAMPLE_FIELDS, TRACE_FIELDS, record_problem


class Record:
    kind = "record"
    required: tuple[str, ...] = ()

    def __init__(self, data: Any, where: str = ""):
        self.where = where or self.kind
        if not isinstance(data, dict):
            raise AdaFuseError(f"{self.where}: a {self.kind} must be a JSON object, not "
                               f"{type(data).__name__}")
        missing = [k for k in self.required if k not in data]
        if missing:
            raise AdaFuseError(f"{self.where}: {self.kind} without {', '.join(map(repr, missing))}; "
                               "not written by adafuse.run")
        problem = self.problem(data)
        if problem:
            raise AdaFuseError(f"{self.where}: {problem}")
        self.data = data

    def problem(self, data: dict) -> str | None:
        """What in `data` has another type than the format's, or None."""
        return None

    def need(self, key: str) -> Any:
        """data[key], or a one-line error saying that it is missing."""
        if key not in self.data:
            raise AdaFuseError(f"{self.where}: {self.kind} has no {key!r} (written by another "
                               "version of adafuse?)")
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> dict:
        return self.data


class Sample(Record):
    """One finished item: its answer, scores, decoding statistics and cost."""

    kind = "sample"
    required = ("id",)

    def problem(self, data: dict) -> str | None:
        return record_problem(data, SAMPLE_FIELDS)

    @property
    def key(self) -> str:
        """The item's id as a string: ids are ints in some data files, strings in others."""
        return str(self.data["id"])

    @property
    def index(self) -> Optional[int]:
        return self.data.get("index")

    @property
    def response(self) -> Optional[str]:
        return self.data.get("response")


class TraceRow(Record):
    """One round of one item: margins, proposals, every model's NLL, the winner."""

    kind = "trace row"
    required = ("id", "item", "round")

    def problem(self, data: dict) -> str | None:
        return record_problem(data, TRACE_FIELDS)

    @property
    def key(self) -> str:
        return str(self.data["id"])

    @property
    def order(self) -> tuple:
        return self.data["item"], self.data["round"]


class Results(Record):
    """results.json: the header while a run goes, metrics and cost when it is complete."""

    kind = "results.json"
    required = ("config",)

    def problem(self, data: dict) -> str | None:
        return results_problem(data)

    @property
    def config(self) -> dict:
        return self.data["config"]

    @property
    def complete(self) -> bool:
        return self.data.get("status") == "complete"

    @property
    def cost(self) -> Optional["CostTotals"]:
        """The cost totals of a complete run; None while it runs (its `cost` then holds only
        the shared prefix's entry, once known)."""
        cost = self.data.get("cost")
        if not self.complete or not isinstance(cost, dict):
            return None
        return CostTotals.from_json(cost, self.where)


def header(*, config: dict, task: dict, versions: dict, git: dict, run_dir: str,
           sweep_dir: Optional[str], started: str, inputs: Optional[dict] = None) -> dict:
    """What results.json holds from the start: enough to continue the run later, and the
    digests of its inputs (prompt, data, gold) that a continued run must find unchanged."""
    out = {"config": config, "task": task, "versions": versions, "git": git, "run_dir": run_dir,
           "sweep_dir": sweep_dir, "started": started}
    if inputs is not None:
        out["inputs"] = inputs
    return out


def complete_results(head: dict, *, finished: str, main_metric: str, metrics: dict,
                     n_items: int, n_missing: int, shard: dict, cost: dict, models: list,
                     wall_seconds: Optional[float] = None, resumed_items: Optional[int] = None,
                     merged_from: Optional[list[str]] = None) -> dict:
    """results.json of a complete run (of `adafuse.run`, or of `adafuse.merge` with
    `merged_from`), in one key order for both."""
    out: dict[str, Any] = {"status": "complete"}
    out.update({k: head.get(k) for k in ("task", "run_dir", "sweep_dir", "started")})
    if merged_from is not None:
        out["merged_from"] = merged_from
    out["finished"] = finished
    if wall_seconds is not None:
        out["wall_seconds"] = wall_seconds
    out.update({"main_metric": main_metric or None,
                "main": metrics.get(main_metric) if main_metric else None,
                "metrics": metrics, "n_items": n_items, "n_missing": n_missing})
    if resumed_items is not None:
        out["resumed_items"] = resumed_items
    out.update({"shard": shard, "cost": cost, "models": models, "config": head.get("config"),
                "versions": head.get("versions"), "git": head.get("git")})
    if head.get("inputs") is not None:
        out["inputs"] = head["inputs"]
    return out


# --- cost ----------------------------------------------------------------------------------


@dataclass
class ModelTotals:
    forwards: int = 0
    tokens_fed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"forwards": self.forwards, "tokens_fed": self.tokens_fed,
                "seconds": round(self.seconds, 3)}


@dataclass
class CostTotals:
    """A run's cost: its items' summed, plus the shared prefix's prefill, once per run.

    `shared_prefix` is {model: ModelTotals} (empty when there was none to prefill: recompute
    mode, prompt mode); None for a run written before it had its own entry, whose first item
    carries it instead."""

    forwards: int
    tokens_fed: int
    rounds: int
    words: int
    new_tokens: int
    boundary_merges: int
    near_ties: int
    decode_seconds: float
    seconds_per_item: float
    forwards_per_item: float
    mean_span_words: Optional[float]
    mean_uncertain_share: Optional[float]
    per_model: dict[str, ModelTotals]
    shared_prefix: Optional[dict[str, ModelTotals]] = field(default=None)
    # the first item of each sitting (flagged in its sample's `seconds.warmup`: timings only,
    # so a continued run's samples equal an uninterrupted run's) carries one-time work:
    # weight packing, allocator and kernel warm-up. seconds_per_item leaves those items out
    # (steady state) when there are others; they are reported apart here. None: a folder
    # written before the flag, whose seconds_per_item is the mean over all items.
    warmup_items: Optional[int] = None
    warmup_seconds: Optional[float] = None

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in
               ("forwards", "tokens_fed", "rounds", "words", "new_tokens", "boundary_merges",
                "near_ties", "decode_seconds", "seconds_per_item", "forwards_per_item",
                "mean_span_words", "mean_uncertain_share")}
        if self.warmup_items is not None:
            out["warmup_items"], out["warmup_seconds"] = self.warmup_items, self.warmup_seconds
        out["per_model"] = {k: v.to_json() for k, v in self.per_model.items()}
        if self.shared_prefix is not None:
            out["shared_prefix"] = {k: v.to_json() for k, v in self.shared_prefix.items()}
        return out

    @classmethod
    def from_json(cls, data: dict, where: str = "cost") -> "CostTotals":
        record = _CostRecord(data, where)

        def models(value: Any) -> dict[str, ModelTotals]:
            return {k: ModelTotals(v.get("forwards", 0), v.get("tokens_fed", 0), v.get("seconds", 0.0))
                    for k, v in (value or {}).items()}

        prefix = data.get("shared_prefix")
        return cls(**{k: record.need(k) for k in
                      ("forwards", "tokens_fed", "rounds", "words", "new_tokens", "boundary_merges",
                       "near_ties", "decode_seconds", "seconds_per_item", "forwards_per_item")},
                   mean_span_words=data.get("mean_span_words"),
                   mean_uncertain_share=data.get("mean_uncertain_share"),
                   per_model=models(data.get("per_model")),
                   shared_prefix=None if prefix is None else models(prefix),
                   warmup_items=data.get("warmup_items"), warmup_seconds=data.get("warmup_seconds"))


class _CostRecord(Record):
    kind = "cost"


def prefix_totals(costs: Sequence[Any]) -> dict[str, ModelTotals]:
    """The shared-prefix entry from a decoder's `prefix_costs` (ModelCost each); models that
    prefilled nothing are left out."""
    return {c.name: ModelTotals(c.forwards, c.tokens_fed, c.seconds) for c in costs if c.forwards}


def totals(samples: Sequence[dict | Sample], model_names: Sequence[str] = (),
           shared_prefix: Optional[dict[str, ModelTotals]] = None) -> CostTotals:
    """The cost totals of a run from its samples (every model of `model_names` listed, also
    one that never ran), plus its shared prefix's prefill when given."""
    rows = [s if isinstance(s, Sample) else Sample(s) for s in samples]
    per_model = {n: ModelTotals() for n in model_names}
    for s in rows:
        seconds = s.get("seconds") or {}
        for name, cost in (s.need("cost").get("models") or {}).items():
            entry = per_model.setdefault(name, ModelTotals())
            entry.forwards += cost["forwards"]
            entry.tokens_fed += cost["tokens_fed"]
            entry.seconds += (seconds.get("models") or {}).get(name) or 0.0
    prefix_forwards = prefix_tokens = 0
    for name, cost in (shared_prefix or {}).items():
        entry = per_model.setdefault(name, ModelTotals())
        entry.forwards += cost.forwards
        entry.tokens_fed += cost.tokens_fed
        entry.seconds += cost.seconds
        prefix_forwards, prefix_tokens = prefix_forwards + cost.forwards, prefix_tokens + cost.tokens_fed

    def total(key: str) -> int:
        return sum(s.need(key) for s in rows)

    n = len(rows) or 1
    forwards = sum(s.need("cost")["forwards"] for s in rows) + prefix_forwards

    def seconds(rows_: Sequence[Sample]) -> float:
        return sum((s.get("seconds") or {}).get("decode") or 0.0 for s in rows_)

    decode_seconds = seconds(rows)
    def warmup(s: Sample) -> bool:
        return (s.get("seconds") or {}).get("warmup") is True

    warm = [s for s in rows if warmup(s)]
    steady = [s for s in rows if not warmup(s)] or rows
    spans = [w for s in rows for w in s.get("span_words") or []]
    shares = [s.get("uncertain_share") for s in rows if s.get("uncertain_share") is not None]
    return CostTotals(
        forwards=forwards,
        tokens_fed=sum(s.need("cost")["tokens_fed"] for s in rows) + prefix_tokens,
        rounds=total("rounds"), words=total("words"), new_tokens=total("new_tokens"),
        boundary_merges=total("boundary_merges"), near_ties=total("near_ties"),
        decode_seconds=round(decode_seconds, 3),
        seconds_per_item=round(seconds(steady) / (len(steady) or 1), 3),
        forwards_per_item=round(forwards / n, 2),
        mean_span_words=round(sum(spans) / len(spans), 3) if spans else None,
        mean_uncertain_share=round(sum(shares) / len(shares), 4) if shares else None,
        per_model=per_model,
        shared_prefix=shared_prefix,
        warmup_items=len(warm) if warm else None,
        warmup_seconds=round(seconds(warm), 3) if warm else None,
    )
