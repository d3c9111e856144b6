"""Decoders: AdaFuse (the adaptive ensemble) and the single-model greedy baseline."""

from adafuse.decoding.base import Decoder
from adafuse.decoding.ensemble import AdaFuse
from adafuse.decoding.greedy import Greedy
from adafuse.decoding.output import ModelCost, Output, Proposal, Round, Stats

__all__ = ["AdaFuse", "Decoder", "Greedy", "ModelCost", "Output", "Proposal", "Round", "Stats"]
