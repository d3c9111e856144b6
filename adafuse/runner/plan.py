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


def estimate_after(batch_size: int, todo: int) -> int:
    """How many of a sitting's items finish before its estimate: one at batch 1; at batch B,
    B of them (a batch's worth), since the first to finish among B decoded together is the
    shortest and the time to it is no measure of the rate (a run at batch 8 estimated a
    fraction of its time from its first item)."""
    return max(1, min(batch_size, todo - 1))


def estimate_line(elapsed: float, finished: int, left: int, steady: bool = False) -> tuple[str, bool]:
    """(the estimate after `finished` items took `elapsed` seconds, whether it is above an
    hour): their rate for the items left. The first estimate counts a sitting's first items,
    warm-up included (model warm-up, a Ray actor's first call: an upper bound); with `steady`,
    the items after those, at the rate the run keeps."""
    seconds = elapsed * left / max(1, finished)
    hours, rest = divmod(int(seconds), 3600)
    shown = f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
    if steady:
        why = f"the {finished} after the first took {elapsed:.1f} s"
    else:
        first = "the first" if finished == 1 else f"the first {finished}"
        why = f"{first} took {elapsed:.1f} s, warm-up included; again after the next {finished}"
    return f"estimate: about {shown} for the {left} item{'s' if left != 1 else ''} left ({why})", seconds > 3600
