"""The decoders by name, and their parameters, declared once on each class.

A decoder declares its parameters in its constructor's signature (keyword-only: name, type,
default) and the ranges of the numeric ones in `bounds`, and the short names reports give its
settings in `labels`; everything else is derived here: the checks its constructor runs, the
checks a run's config gets before any model loads (`check_decoder_config`), the "did you
mean" for a mistyped parameter, the decoder names in errors (`DECODERS`, in the order reports
list them), and the Hydra schema of its config node (`config_schema`, stored as
`schema/decoder/<name>`, which gives conf/decoder/ its defaults). The same facts as plain
data (types, defaults, bounds, labels, the decoders' order), read without importing torch, are
adafuse/decoder_catalog.py's; `DECODERS` is kept there too. Parameters every decoder
shares: `weights` (per-model ensemble weights), `mode` (cached | recompute) and `engine`
(`EngineOptions`).

A decoder written outside this package is used without editing it, either way:
- registered from the user's own module: `@register_decoder` on the class, then
  `decoder.name=<its name>` once that module is imported;
- named in a config: `decoder._target_: package.module.Class` (a YAML found through
  `hydra.searchpath`); the class is imported when the run builds its decoder.
examples/custom_decoder/ shows the second.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
from typing import Any

from adafuse.decoder_catalog import DECODERS, LAST_MODEL, facts_of, schema_fields
from adafuse.errors import AdaFuseError



def register_decoder(cls: type) -> type:
    """Class decorator: `cls.name` becomes a decoder choice."""
    existing = DECODERS.get(cls.name)
    if existing is not None and existing is not cls:
        raise AdaFuseError(f"decoder name {cls.name!r} is taken by {existing.__module__}.{existing.__qualname__}")
    DECODERS[cls.name] = cls
    store_schema(cls)
    return cls


def store_schema(cls: type) -> None:
    """`schema/decoder/<name>` in Hydra's ConfigStore: what `defaults: [/schema/decoder@_here_:
    <name>]` in a decoder's YAML validates against."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="schema/decoder", name=cls.name, node=config_schema(cls))


def parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The decoder's parameters: its constructor's keyword-only arguments."""
    return {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def default(cls: type, key: str) -> Any:
    """The default a decoder declares for one of its parameters."""
    return parameters(cls)[key].default


def schema_name(cls: type) -> str:
    """The name of a decoder's schema dataclass, as OmegaConf's errors quote it."""
    return f"{cls.__name__}Conf"


def schema_keys(cls: type) -> list[str]:
    """The keys a decoder's config node may have besides `name` and `batch_size`."""
    return [f.name for f in dataclasses.fields(config_schema(cls)) if f.name not in ("name", "batch_size")]


@functools.cache
def config_schema(cls: type) -> type:
    """The dataclass a decoder's config node is checked against when Hydra composes it:
    `name`, each of the constructor's keyword-only parameters (type and default from the
    signature) but `engine` (a run's own node), and the runner's `batch_size` (prompts per
    `generate_batch` call); decoder_catalog.schema_fields says which."""
    fields: list[tuple] = []
    for key, kind, value in schema_fields(facts_of(cls)):
        if isinstance(value, (list, dict)):
            fields.append((key, kind, dataclasses.field(default_factory=lambda v=value: type(v)(v))))
        else:
            fields.append((key, kind, dataclasses.field(default=value)))
    return dataclasses.make_dataclass(schema_name(cls), fields)


def check_parameters(cls: type, values: dict, n_models: int | None = None) -> None:
    """Each value within what `cls` declares for it; one line naming the first bad one.
    n_models: how many models the decoder gets (for `model_index`, `weights`)."""
    from adafuse.decoding.base import MODES, check_range, ensemble_weights
    from adafuse.decoding.engine.protocol import EngineOptions

    declared = parameters(cls)
    bounds = getattr(cls, "bounds", {})
    for key, value in values.items():
        if key not in declared:
            close = difflib.get_close_matches(key, list(declared), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AdaFuseError(f"decoder {cls.name!r} has no parameter {key!r}{hint}; "
                               f"its parameters: {', '.join(declared)}")
        if key in bounds:
            low, high = bounds[key]
            if high == LAST_MODEL:
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value < n_models:
                    raise AdaFuseError(f"{key}={value!r} is out of range; allowed: {low}..{n_models - 1}")
            else:
                check_range(key, value, low, high, integer=declared[key].annotation in ("int", int))
        elif key == "weights" and value is not None:
            ensemble_weights(value, [None] * n_models)
        elif key == "mode" and value not in MODES:
            raise AdaFuseError(f"unknown mode {value!r}; allowed: {', '.join(MODES)}")
        elif key == "engine":
            EngineOptions.of(value)


def decoder_class(config: dict) -> type:
    """The class a decoder config names: `_target_` (an import path), else `name`."""
    from adafuse.decoding.base import Decoder

    target = config.get("_target_")
    if not target:
        name = config.get("name", "adafuse")
        if name not in DECODERS:
            raise AdaFuseError(f"unknown decoder {name!r}; allowed: {', '.join(sorted(DECODERS))}")
        return DECODERS[name]
    module, _, attr = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise AdaFuseError(f"decoder._target_={target!r} cannot be imported ({exc}); give "
                           "package.module.Class, importable from the current folder or PYTHONPATH") from None
    if not (isinstance(cls, type) and issubclass(cls, Decoder)):
        raise AdaFuseError(f"decoder._target_={target!r} is not a Decoder subclass")
    return cls


def decoder_arguments(config: dict) -> dict:
    """A decoder config's constructor arguments: all but `name` and `_target_`."""
    return {k: v for k, v in config.items() if k not in ("name", "_target_")}


def check_decoder_config(config: dict, n_models: int, engine=None) -> type:
    """Check a decoder config before any model loads; returns the decoder's class.
    engine: a run's engine options (its `engine` node), given to a decoder that takes them."""
    from adafuse.decoding.engine.protocol import EngineOptions

    cls = decoder_class(config)
    check_parameters(cls, decoder_arguments(config), n_models)
    EngineOptions.of(engine)
    return cls


def build_decoder(config: dict, models, engine=None):
    """A decoder from its config node: `_target_` or `name` picks the class, the rest are its
    arguments. engine: engine options for a decoder that takes them and whose node names none
    (a run's `engine` node: `engine.share_prefix=false`)."""
    config = dict(config)
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    cls = check_decoder_config(config, len(models), engine)
    arguments = decoder_arguments(config)
    if engine is not None and "engine" in parameters(cls) and arguments.get("engine") is None:
        arguments["engine"] = dict(engine)
    return cls(models, **arguments)
