"""The decoders by name, and their parameters, declared once on each class.

A decoder declares its parameters in its constructor's signature (keyword-only: name, type,
default) and the ranges of the numeric ones in `bounds`, and the short names reports give its
settings in `labels`; everything else is derived here: the checks its constructor runs, the
checks a run's config gets before any model loads (`check_decoder_config`), the "did you
mean" for a mistyped parameter, the decoder names in errors (`DECODERS`, in the order reports
list them), and the Hydra schema of its config node (`config_schema`, stored as
`schema/decoder/<name>`, which gives conf/decoder/ its defaults). Parameters every decoder
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

import collections.abc
import dataclasses
import difflib
import functools
import importlib
import inspect
import types
import typing
from typing import Any, List, Optional

from adafuse.errors import AdaFuseError

DECODERS: dict[str, type] = {}  # decoder= choices

LAST_MODEL = "last model"  # an upper bound: the index of the last model given


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


_SCALARS = (int, float, str, bool)


def _omegaconf_type(annotation: Any) -> Any:
    """An annotation as a type OmegaConf checks: a scalar, a list of floats (from any
    sequence of floats), Optional of those; Any for the rest (left to the constructor)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            kind = _omegaconf_type(args[0])
            return Optional[kind] if kind is not Any else Any
        return Any
    if annotation in _SCALARS:
        return annotation
    if origin in (list, tuple, collections.abc.Sequence) and args and set(args) <= {float, Ellipsis}:
        return List[float]
    return Any


def _schema_type(cls: type, p: inspect.Parameter) -> Any:
    """The OmegaConf type of a parameter: its annotation, resolved with the class's module
    globals (annotations are strings under `from __future__ import annotations`); without
    one, or where it cannot be resolved, the type of its default; Any where neither says."""
    try:
        annotation = typing.get_type_hints(cls.__init__).get(p.name, inspect.Parameter.empty)
    except Exception:  # a name only imported under TYPE_CHECKING, a typo in a user's class
        annotation = inspect.Parameter.empty
    if annotation is not inspect.Parameter.empty:
        return _omegaconf_type(annotation)
    kind = type(p.default) if type(p.default) in _SCALARS else Any
    return Optional[kind] if p.default is None and kind is not Any else kind


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
    `generate_batch` call)."""
    fields: list[tuple] = [("name", str, dataclasses.field(default=cls.name))]
    for key, p in parameters(cls).items():
        if key == "engine":
            continue
        kind = _schema_type(cls, p)
        if p.default is inspect.Parameter.empty:
            fields.append((key, kind, dataclasses.field(default="???")))
        elif isinstance(p.default, (list, dict)):
            fields.append((key, kind, dataclasses.field(default_factory=lambda v=p.default: type(v)(v))))
        else:
            fields.append((key, kind, dataclasses.field(default=p.default)))
    fields.append(("batch_size", int, dataclasses.field(default=1)))
    return dataclasses.make_dataclass(schema_name(cls), fields)


def setting_label(decoder: str, key: str) -> str:
    """How reports name a decoder setting: the class's `labels` (θ_Δ, B, k); for a decoder
    this process does not know, the label a known one gives the key; else the key."""
    cls = DECODERS.get(decoder)
    if cls is not None:
        return getattr(cls, "labels", {}).get(key, key)
    known = {k: v for c in DECODERS.values() for k, v in getattr(c, "labels", {}).items()}
    return known.get(key, key)


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
