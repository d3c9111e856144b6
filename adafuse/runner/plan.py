"""What a run will take, worked out before it decodes: the models its decoder reads, whether
every prompt fits every model's context window, and how long the items left will take.
"""

from __future__ import annotations

from adafuse.errors import AdaFuseError


def used_models(config: dict) -> tuple[list[int], dict]:
    """The indices of the models the decoder reads, and its config for them alone: a decoder
    of one model (greedy's `model_index`) loads that model, not the whole set."""
    decoder = dict(config["decoder"])
    index = decoder.get("model_index")
    if isinstance(index, int) and not isinstance(index, bool) and len(config["models"]) > 1:
        return [index], {**decoder, "model_index": 0}
    return list(range(len(config["models"]))), decoder


def check_context(models: list, prompts: list[str], ids: list, max_new_tokens: int) -> None:
    """Every prompt, with the budget after it, fits every model's context window: a longer one
    would index past the model's positions, or ask for gigabytes of attention, mid-run."""
    for lm in models:
        window = lm.context_length
        if window is None or not prompts:
            continue
        lengths = [len(ids_) for ids_ in lm.encode_many([lm.format_prompt(p) for p in prompts])]
        worst = max(range(len(prompts)), key=lengths.__getitem__)
        if lengths[worst] + max_new_tokens > window:
            raise AdaFuseError(
                f"item {ids[worst]!r}: its prompt is {lengths[worst]} tokens for model {lm.name!r}, "
                f"whose context window holds {window} (with max_new_tokens={max_new_tokens}: at "
                f"most {window - max_new_tokens} for the prompt); shorten the prompt or drop the item")


def estimate_line(first_seconds: float, left: int, batch_size: int) -> tuple[str, bool]:
    """(the estimate after a sitting's first item, whether it is above an hour): the first
    item's wall time (warm-up included, so an upper bound) for each batch of the items left."""
    seconds = first_seconds * left / max(1, batch_size)
    hours, rest = divmod(int(seconds), 3600)
    shown = f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
    return (f"estimate: about {shown} for the {left} item{'s' if left != 1 else ''} left "
            f"(the first took {first_seconds:.1f} s, warm-up included)"), seconds > 3600
