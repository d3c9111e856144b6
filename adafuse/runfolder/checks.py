"""What a run folder's files must hold to be read: the config and results.json checked against
the types adafuse.run writes there, and the decoder settings the registry declares numeric.

    config_problem(config)    # None, or one line: what keeps the config from being read
    results_problem(results)  # the same for a whole results.json

`Results` (records.py) checks each results.json it is made from with `results_problem`, so
every reader that goes through RunDir.read_results (`merge`, `score rescore=`, a resumed run)
gets one line naming the file and the field; `show` checks what it reads with it too, and
`compare` leaves a folder out with `config_problem`'s line as its note. Nothing here reads a
file, and nothing imports torch (the registry's facts come from adafuse.decoder_catalog).
"""

from __future__ import annotations

import functools
from typing import Any

from adafuse.safe_read import finite

# results.json's "cost": the totals that are numbers (records.CostTotals), and the two that
# hold one entry a model
COST_NUMBERS = ("forwards", "tokens_fed", "rounds", "words", "new_tokens", "boundary_merges",
                "near_ties", "decode_seconds", "seconds_per_item", "forwards_per_item",
                "mean_span_words", "mean_uncertain_share", "warmup_items", "warmup_seconds")
COST_PER_MODEL = ("per_model", "shared_prefix")


def well_formed(config: Any) -> bool:
    """The parts of a config the comparison reads have the types adafuse.run gives them."""
    return config_problem(config) is None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int)) or finite(value)


def config_problem(config: Any) -> str | None:
    """What keeps a run's config from being read, or None: the models, task and decoder
    nodes of the types adafuse.run writes; decoder settings plain values (numbers finite),
    and the numeric parameters the decoder registry declares (θ_Δ, max_words, B, ...) numbers."""
    if not isinstance(config, dict):
        return "its config is not a mapping"
    decoder, task, models = config.get("decoder") or {}, config.get("task") or {}, config.get("models") or []
    if not isinstance(decoder, dict) or not isinstance(task, dict) or not isinstance(models, list):
        return "its config is not one adafuse.run writes (models, task, decoder)"
    for spec in models:
        if not (isinstance(spec, str) or (isinstance(spec, dict) and all(
                isinstance(spec.get(k), (str, type(None))) for k in ("name", "alias")))):
            return f"a model of its config is {_shown(spec)}, not a name or a model spec"
    if not isinstance(task.get("name"), (str, type(None))):
        return f"task.name is {_shown(task.get('name'))}, not a name"
    for key in ("shard", "num_shards"):
        value = config.get(key)
        if value is not None and not _count(value) and not _unresolved(value):
            return f"config.{key} is {_shown(value)}, not a count"
    for key, value in decoder.items():
        ok = _scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value)) or key == "engine"
        if not ok:
            return f"decoder.{key} is {_shown(value)}, not a plain value"
        kind = numeric_settings().get(key)
        unresolved = _unresolved(value) and key != "model_index"
        if kind and value is not None and not unresolved and not _number_of(kind, value):
            return f"decoder.{key} is {_shown(value)}, not {kind}"
    return None


def results_problem(results: Any) -> str | None:
    """What in a results.json has another type than adafuse.run (or adafuse.merge) writes
    there, or None: its config (`config_problem`), task, metric, counts, cost totals, models
    and the record of a merge. A field that is absent or null is no problem (a run writes
    its metrics and totals when it ends)."""
    if not isinstance(results, dict):
        return f"not a JSON object but {type(results).__name__}"
    config = results.get("config")
    if config is not None:
        bad = config_problem(config)
        if bad:
            return bad
    task = results.get("task")
    if task is not None and not isinstance(task, dict):
        return f"task is {_shown(task)}, not an object"
    task = task or {}
    stop = task.get("stop")
    checks = [
        ("status", results.get("status"), isinstance(results.get("status"), str), "a word"),
        ("task.name", task.get("name"), isinstance(task.get("name"), str), "a name"),
        ("task.source", task.get("source"), isinstance(task.get("source"), str), "text"),
        ("task.stop", stop, isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(x, str) for x in stop)),
         "stop strings"),
        ("task.max_new_tokens", task.get("max_new_tokens"), _count(task.get("max_new_tokens")), "a count"),
        ("main_metric", results.get("main_metric"), isinstance(results.get("main_metric"), str), "a name"),
        ("main", results.get("main"), finite(results.get("main")), "a finite number"),
        ("n_items", results.get("n_items"), _count(results.get("n_items")), "a count"),
        ("n_missing", results.get("n_missing"), _count(results.get("n_missing")), "a count"),
        ("metrics", results.get("metrics"), isinstance(results.get("metrics"), dict), "an object"),
        ("cost", results.get("cost"), isinstance(results.get("cost"), dict), "an object"),
        ("models", results.get("models"), isinstance(results.get("models"), list) and all(
            isinstance(m, dict) and isinstance(m.get("name"), str) for m in results["models"]),
         "a list of models (objects with a name)"),
        ("shard", results.get("shard"), isinstance(results.get("shard"), dict), "an object"),
        ("merged_from", results.get("merged_from"), _texts(results.get("merged_from")), "a list of folders"),
        ("inputs", results.get("inputs"), isinstance(results.get("inputs"), dict), "an object"),
    ]
    for name, value, ok, what in checks:
        if value is not None and not ok:
            return f"{name} is {_shown(value)}, not {what}"
    cost = results.get("cost") or {}
    for key in COST_NUMBERS:
        if cost.get(key) is not None and not finite(cost[key]):
            return f"cost.{key} is {_shown(cost[key])}, not a finite number"
    for key in COST_PER_MODEL:
        models = cost.get(key)
        if models is not None and not (isinstance(models, dict) and all(
                isinstance(v, dict) and all(finite(x) for x in v.values()) for v in models.values())):
            return f"cost.{key} is {_shown(models)}, not an object of models' totals (numbers)"
    return None


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _unresolved(value: Any) -> bool:
    """An interpolation `${...}` left as it is (a .hydra/config.yaml is read unresolved)."""
    return isinstance(value, str) and value.startswith("${")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number_of(kind: str, value: Any) -> bool:
    if kind == "a list of numbers":
        return isinstance(value, list) and all(finite(v) for v in value)
    return finite(value) and (kind == "a number" or isinstance(value, int))


def _shown(value: Any) -> str:
    from adafuse.safe_read import short

    return short(value)


@functools.cache
def numeric_settings() -> dict[str, str]:
    """Decoder keys the registry declares as numbers ("an integer", "a number", "a list of
    numbers"), across the registered decoders."""
    import typing

    from adafuse.decoder_catalog import catalog, schema_fields

    kinds: dict[str, str] = {}
    for facts in catalog().values():
        for key, kind, _ in schema_fields(facts):
            args = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
            if args == [int]:
                kinds.setdefault(key, "an integer")
            elif args == [float]:
                kinds.setdefault(key, "a number")
            elif typing.get_origin(args[0]) in (list, typing.List) and typing.get_args(args[0]) in ((float,), (int,)):
                kinds.setdefault(key, "a list of numbers")
    return kinds
