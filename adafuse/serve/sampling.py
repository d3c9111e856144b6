"""Which generation requests a deterministic decoder refuses, in one place.

adafuse decoders pick the ensemble's best span every round: there is no sampling, so a
request that asks for it (a temperature above 0, nucleus sampling, several samples, token
log-probabilities of the sampled text) would silently get something else. Such a request is
refused with a one-line reason. lm-eval's `generate_until` applies the same rule to its
gen_kwargs (`do_sample`, `temperature`)."""

from __future__ import annotations

from typing import Any, Optional


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def sampling_refusal(params: dict) -> Optional[tuple[str, str]]:
    """(field, one-line reason) when `params` ask for sampling, else None. Fields absent or
    null, and values that mean greedy decoding (temperature 0, top_p 1, n 1, logprobs
    false/null, do_sample false), pass."""
    deterministic = "adafuse decoders are deterministic (each round the ensemble's best span wins)"
    if params.get("do_sample"):
        return "do_sample", f"do_sample=true is not supported: {deterministic}; use do_sample=false"
    for name, greedy, above in (("temperature", 0.0, True), ("top_p", 1.0, False)):
        value = params.get(name)
        if value is None:
            continue
        number = _number(value)
        if number is None:
            return name, f"{name}={value!r} must be a number"
        if (number > greedy) if above else (number < greedy):
            return name, (f"{name}={value!r} is not supported: {deterministic}; "
                          f"leave it out or use {name}={greedy:g}")
    for name in ("n", "best_of"):
        value = params.get(name)
        if value is None:
            continue
        if _number(value) is None or not float(value).is_integer() or value < 1:
            return name, f"{name}={value!r} must be an integer >= 1"
        if value > 1:
            return name, f"{name}={value!r} is not supported: {deterministic}, so every choice would be the same; use {name}=1"
    for name in ("logprobs", "top_logprobs"):
        value = params.get(name)
        if value is not None and value is not False:
            return name, (f"{name}={value!r} is not supported: the ensemble's spans have no single "
                          "token distribution; leave it out")
    return None
