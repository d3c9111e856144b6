"""Decoders: AdaFuse (the adaptive ensemble), the single-model greedy baseline and the
ensemble baselines (fixed_span, union_topk, rerank), all behind one interface.

    base.py        the Decoder interface: models, validation, generate / generate_batch
    ensemble.py    AdaFuse: a round's four steps, `propose`, `pool`, `score`, `commit`
    proposals.py   step 1: one model's spans (margin gate, exploration); `Proposed`
    pool.py        step 2: the union of the proposals
    scoring.py     step 3: where a span is scored (own span, branch forward, scoring forward)
    decide.py      where the winner is picked: ensemble score, winner, near-ties
    greedy.py, fixed_span.py, union_topk.py, rerank.py: the baselines
    output.py      what a decoder returns (Output, Round, Proposal, Stats, ModelCost)
    text.py        words, stop strings, decoding continuations
    engine/        the forwards: cached and recompute engines behind one protocol
"""

from adafuse.decoding.base import Decoder
from adafuse.decoding.ensemble import AdaFuse
from adafuse.decoding.fixed_span import FixedSpan
from adafuse.decoding.greedy import Greedy
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.rerank import Rerank
from adafuse.decoding.union_topk import UnionTopK

__all__ = [
    "DECODERS",
    "AdaFuse",
    "Decoder",
    "FixedSpan",
    "Greedy",
    "ModelCost",
    "Output",
    "Proposal",
    "Rerank",
    "Round",
    "Stats",
    "UnionTopK",
    "build_decoder",
]

# decoder= choices: the config's `name` picks the class
DECODERS = {cls.name: cls for cls in (AdaFuse, Greedy, FixedSpan, UnionTopK, Rerank)}


def build_decoder(config: dict, models) -> Decoder:
    """A decoder from its config node: `name` picks the class, the rest are its arguments."""
    from adafuse.errors import AdaFuseError

    config = dict(config)
    name = config.pop("name", "adafuse")
    if name not in DECODERS:
        raise AdaFuseError(f"unknown decoder {name!r}; allowed: {', '.join(sorted(DECODERS))}")
    try:
        return DECODERS[name](models, **config)
    except TypeError as exc:
        raise AdaFuseError(f"decoder {name!r}: {exc}") from exc
