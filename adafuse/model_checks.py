"""A model set checked without weights, before the first model loads: at least one model,
each spec (`adafuse.model_spec.check_spec`, its error prefixed with the model's place) and
every model by a name of its own.

    check_models(config["models"])      # or AdaFuseError naming models.<i>
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adafuse.errors import AdaFuseError, ModelLoadError
from adafuse.model_spec import DTYPES, ModelSpec, check_spec


def check_models(specs: list[ModelSpec | str | dict[str, Any]]) -> None:
    """Every model of a run's set, in order; the first problem, named by its index."""
    if not specs:
        raise AdaFuseError("models is empty; a run needs at least one model")
    check_model_names(specs)
    for i, spec in enumerate(specs):
        if isinstance(spec, dict) and spec.get("dtype", "auto") not in DTYPES:
            raise AdaFuseError(f"models.{i}.dtype={spec['dtype']!r}; allowed: {', '.join(DTYPES)}")
        try:  # paths, GGUF headers, hub ids (offline: the cache), devices: all before any load
            check_spec(spec)
        except AdaFuseError as exc:
            raise AdaFuseError(f"models.{i}: {exc}") from None


def check_model_names(specs: list[ModelSpec | str | dict[str, Any]]) -> None:
    """Every model of a set goes by its own name (its alias, else its spec's name): traces,
    costs and reports key their per-model entries by it, and two alike would merge. Two names
    may not end alike either (reports and W&B show a path's or hub id's last part), and an
    alias may not be another member's model name. The same model twice, each with its own
    alias, is fine."""
    specs = [ModelSpec.coerce(s) for s in specs]

    def shown(spec: ModelSpec) -> str:
        return spec.alias or str(spec.name)

    for j, b in enumerate(specs):
        for i, a in enumerate(specs[:j]):
            clash = {shown(a), Path(shown(a)).name} & {shown(b), Path(shown(b)).name}
            if b.alias and b.alias == str(a.name):
                clash.add(b.alias)
            if a.alias and a.alias == str(b.name):
                clash.add(a.alias)
            if clash:
                raise ModelLoadError(
                    f"models.{j} ({shown(b)!r}) and models.{i} ({shown(a)!r}) are both named "
                    f"{min(clash)!r}; give each model its own alias, e.g. models.{j}.alias=m{j}")
