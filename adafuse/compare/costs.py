"""Compare's reader of a run's cost totals from its samples: one function, `cost_totals`, with
the keys of results.json's "cost", tolerant of folders written by older versions (a field they
lack is None, and a line says so: never a guessed 0).
"""

from __future__ import annotations

from typing import Any

# the cost totals the comparison reads (results.json's "cost", or summed from the samples)
COST_FIELDS = ("forwards", "words", "decode_seconds", "seconds_per_item")


def _number(sample: dict, *keys: str) -> float | None:
    value: Any = sample
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


SAMPLE_COSTS = {"forwards": ("cost", "forwards"), "words": ("words",), "rounds": ("rounds",),
                "decode_seconds": ("seconds", "decode")}


def cost_totals(samples: list[dict], shared_prefix: Any = None) -> tuple[dict[str, Any], list[str]]:
    """(totals, what is missing): the cost totals of a run from its samples, with the keys of
    results.json's "cost", and the forwards of the shared prefix's prefill once when the run
    recorded it (`cost.shared_prefix` of its header, {model: {"forwards": ...}}; older runs
    charged it to their first item). A total some sample does not record is None, and a line
    says so. Compare's reader of costs: it tolerates folders of older versions, where the
    runner's `adafuse.runfolder.totals` requires every field."""
    totals: dict[str, Any] = {}
    lacking = []
    for name, keys in SAMPLE_COSTS.items():
        values = [_number(s, *keys) for s in samples]
        missing = sum(v is None for v in values)
        totals[name] = None if missing or not samples else sum(values)
        if missing:
            lacking.append(f"{missing} of {len(samples)} samples record no {'.'.join(keys)}, so no {name}")
    if isinstance(shared_prefix, dict) and totals["forwards"] is not None:
        prefix = [_number(v, "forwards") for v in shared_prefix.values() if isinstance(v, dict)]
        if None in prefix:
            lacking.append("its shared_prefix records no forwards, so no forwards")
            totals["forwards"] = None
        else:
            totals["forwards"] += sum(prefix)
    n = len(samples)
    seconds, forwards = totals["decode_seconds"], totals["forwards"]
    totals["seconds_per_item"] = seconds / n if seconds is not None and n else None
    totals["forwards_per_item"] = forwards / n if forwards is not None and n else None
    spans = [w for s in samples for w in s.get("span_words") or []]
    shares = [s["uncertain_share"] for s in samples if s.get("uncertain_share") is not None]
    totals["mean_span_words"] = sum(spans) / len(spans) if spans else None
    totals["mean_uncertain_share"] = sum(shares) / len(shares) if shares else None
    return totals, lacking
