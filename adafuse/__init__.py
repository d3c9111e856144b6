"""AdaFuse: adaptive ensemble decoding of causal LMs with heterogeneous tokenizers."""

__version__ = "0.1.0"
