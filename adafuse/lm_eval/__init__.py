"""adafuse as a model of EleutherAI's lm-evaluation-harness (`pip install adafuse[lm-eval]`).

    python -m adafuse.lm_eval run --model adafuse --model_args models=smol_gemma,theta_delta=0.7 \\
        --tasks <task> --include_path <dir> --output_path results/ --log_samples

`python -m adafuse.lm_eval` registers the `adafuse` model, then hands its arguments to
lm-eval's own command line unchanged. From Python: `from adafuse.lm_eval import AdaFuseLM`
(importing it registers the model), then `lm_eval.simple_evaluate(model=AdaFuseLM(...), ...)`.
The class and its `--model_args` are documented in `adafuse/lm_eval/model.py` and `args.py`.
"""

from importlib import import_module


def __getattr__(name: str):
    # lm-eval is imported on first use, so that `adafuse.lm_eval.args` works without it
    if name == "AdaFuseLM":
        return import_module("adafuse.lm_eval.model").AdaFuseLM
    raise AttributeError(f"module 'adafuse.lm_eval' has no attribute {name!r}")
