"""AdaFuse: adaptive ensemble decoding of causal LMs with heterogeneous tokenizers.

    from adafuse import load_model, AdaFuse, Greedy
    pair = [load_model("smollm2-135m-instruct"), load_model("gemma3-270m")]
    out = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3).generate(
        "Question: Which British king married Mary of Teck?\\nAnswer:", max_new_tokens=32, stop=["\\n"])
    out.text, out.trace, out.stats
"""

from adafuse.decoding import AdaFuse, Decoder, Greedy, Output
from adafuse.errors import AdaFuseError, ModelLoadError
from adafuse.models import LoadedModel, ModelSpec, load_model

__version__ = "0.1.0"

__all__ = [
    "AdaFuse",
    "AdaFuseError",
    "Decoder",
    "Greedy",
    "LoadedModel",
    "ModelLoadError",
    "ModelSpec",
    "Output",
    "load_model",
]
