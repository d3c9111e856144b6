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
    registry.py    decoders by name (or `_target_`), their parameters declared once, checks
    engine/        the forwards: cached and recompute engines behind one protocol
"""

# each decoder class registers itself (registry.register_decoder) where it is defined; the
# order of these imports is the order reports list the decoders in
from adafuse.decoding.base import Decoder
from adafuse.decoding.greedy import Greedy  # isort: skip
from adafuse.decoding.ensemble import AdaFuse  # isort: skip
from adafuse.decoding.fixed_span import FixedSpan  # isort: skip
from adafuse.decoding.union_topk import UnionTopK  # isort: skip
from adafuse.decoding.rerank import Rerank  # isort: skip
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats
from adafuse.decoding.registry import DECODERS, build_decoder, register_decoder

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
    "register_decoder",
]
