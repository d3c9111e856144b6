"""Decoders: AdaFuse (the adaptive ensemble) and the single-model greedy baseline."""

from adafuse.decoding.base import Decoder
from adafuse.decoding.ensemble import AdaFuse
from adafuse.decoding.greedy import Greedy
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats

__all__ = ["AdaFuse", "build_decoder", "Decoder", "Greedy", "ModelCost", "Output", "Proposal", "Round", "Stats"]


def build_decoder(config: dict, models) -> Decoder:
    """A decoder from its config node: `name` picks the class, the rest are its arguments."""
    from adafuse.errors import AdaFuseError

    config = dict(config)
    name = config.pop("name", "adafuse")
    classes = {cls.name: cls for cls in (AdaFuse, Greedy)}
    if name not in classes:
        raise AdaFuseError(f"unknown decoder {name!r}; allowed: {', '.join(sorted(classes))}")
    try:
        return classes[name](models, **config)
    except TypeError as exc:
        raise AdaFuseError(f"decoder {name!r}: {exc}") from exc
