"""AdaFuse: adaptive ensemble decoding of causal LMs with heterogeneous tokenizers.

    from adafuse import load_model, AdaFuse, Greedy
    pair = [load_model("smollm2-135m-instruct"), load_model("gemma3-270m")]
    out = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3).generate(
        "Question: Which British king married Mary of Teck?\\nAnswer:", max_new_tokens=32, stop=["\\n"])
    out.text, out.trace, out.stats
"""

from importlib import import_module

from adafuse.errors import AdaFuseError, ModelLoadError

__version__ = "0.1.0"

# imported on first use, so that `python -m adafuse.score` and the task registry start
# without loading torch and transformers
_LAZY = {
    "AdaFuse": "adafuse.decoding",
    "Decoder": "adafuse.decoding",
    "FixedSpan": "adafuse.decoding",
    "Rerank": "adafuse.decoding",
    "UnionTopK": "adafuse.decoding",
    "Greedy": "adafuse.decoding",
    "Output": "adafuse.decoding",
    "build_decoder": "adafuse.decoding",
    "LoadedModel": "adafuse.models",
    "ModelSpec": "adafuse.models",
    "load_model": "adafuse.models",
}

__all__ = ["AdaFuseError", "ModelLoadError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'adafuse' has no attribute {name!r}")
