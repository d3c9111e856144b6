"""Decoders: AdaFuse (the adaptive ensemble), the single-model greedy baseline and the
ensemble baselines (fixed_span, union_topk, rerank), all behind one interface."""

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
