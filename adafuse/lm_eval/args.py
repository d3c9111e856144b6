"""`--model_args` for the `adafuse` lm-eval model: key=value pairs into models and a decoder.

lm-eval splits `--model_args` at commas and casts each value (numbers, true/false), so a list
here is written with `+`: `models=smollm2-135m-instruct+gemma3-270m,weights=1+2` (lm-eval
0.4.13's own CLI also keeps `[a,b]` whole). Every key is checked; a bad one raises
AdaFuseError with one line naming it. `check` runs all of it without loading a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adafuse.errors import AdaFuseError

CONF_MODELS = Path(__file__).resolve().parents[2] / "conf" / "models"
LIST_SEPARATOR = "+"

OWN_KEYS = ("models", "decoder", "dtype", "device", "batch_size", "max_batch_size", "chat_template")
# what `--help` says of each of OWN_KEYS: (meaning, default); a decoder's keys are described
# from the decoder registry instead (decoder_help)
OWN_HELP = {
    "models": ("a preset of conf/models/ ({presets}) or model specs joined by '+': embedded names, "
               "hub ids, folders, .gguf files", "smol_gemma"),
    "decoder": ("the decoder: {decoders}", "adafuse"),
    "dtype": ("every model's dtype: auto, float32, bfloat16, float16", "auto"),
    "device": ("every model's device: auto, cpu, cuda, cuda:N (lm-eval's --device too)", "auto"),
    "batch_size": ("prompts decoded together, contexts scored together (lm-eval's --batch_size too)", "1"),
    "max_batch_size": ("accepted from lm-eval and not used", "none"),
    "chat_template": ("true: each model wraps the context in its own chat template", "the preset's"),
}


def decoder_keys() -> dict[str, Any]:
    """The decoders' parameters (but `engine`), each with its schema type: what a key of
    model_args may be beside OWN_KEYS, passed on to the decoder's constructor (which rejects
    one it does not take, naming it). Read from the registered classes, so a decoder
    registered from the user's module is reachable too."""
    import dataclasses

    from adafuse.decoding import DECODERS
    from adafuse.decoding.registry import config_schema, schema_keys

    keys: dict[str, Any] = {}
    for cls in DECODERS.values():
        types = {f.name: f.type for f in dataclasses.fields(config_schema(cls))}
        for key in schema_keys(cls):
            keys.setdefault(key, types[key])
    return keys


def presets() -> list[str]:
    return sorted(p.stem for p in CONF_MODELS.glob("*.yaml"))


def _split(value: Any) -> list[str]:
    """A list value: `a+b`, lm-eval's bracketed `[a,b]` (kept whole by its CLI), or a list."""
    if isinstance(value, (list, tuple)):
        return [str(part).strip() for part in value if str(part).strip()]
    text = str(value).strip()
    parts = text[1:-1].split(",") if text.startswith("[") and text.endswith("]") else text.split(LIST_SEPARATOR)
    return [part.strip() for part in parts if part.strip()]


def model_specs(models: Any, device: str, dtype: str, chat_template: bool | None) -> list[dict]:
    """Model specs from a preset of conf/models/ (`smol_gemma`) or `+`-joined specs (embedded
    names, hub ids, folders, .gguf files)."""
    from omegaconf import OmegaConf

    names = _split(models)
    if not names:
        raise AdaFuseError(f"models={models!r} is empty; give a preset ({', '.join(presets())}) "
                           f"or model specs joined by '{LIST_SEPARATOR}'")
    if len(names) == 1 and names[0] in presets():
        preset = OmegaConf.load(CONF_MODELS / f"{names[0]}.yaml")
        resolved = OmegaConf.to_container(
            OmegaConf.merge({"device": device, "dtype": dtype}, {"models": preset}), resolve=True)
        specs = [dict(spec) for spec in resolved["models"]]
        for spec in specs:  # keys given here override the preset's
            spec["device"], spec["dtype"] = device, dtype
    else:
        specs = [{"name": name, "device": device, "dtype": dtype} for name in names]
    if chat_template is not None:
        for spec in specs:
            spec["chat_template"] = chat_template
    return specs


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise AdaFuseError(f"{key}={value!r} is not a number") from None
    return value


def _positive_int(key: str, value: Any) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1 or isinstance(value, bool):
        raise AdaFuseError(f"{key}={value!r} is not allowed; {key} must be an integer >= 1")
    return number


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise AdaFuseError(f"{key}={value!r} is not allowed; {key} must be true or false")


def parse(args: dict[str, Any]) -> tuple[list[dict], dict[str, Any], int]:
    """(model specs, decoder config for `build_decoder`, batch size) from parsed model_args."""
    from typing import List, Optional

    decoder_types = decoder_keys()
    allowed = [*OWN_KEYS[:2], *decoder_types, *OWN_KEYS[2:]]
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise AdaFuseError(f"unknown model_args key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    device = str(args.get("device") or "auto")
    dtype = str(args.get("dtype") or "auto")
    chat_template = args.get("chat_template")
    if chat_template is not None:
        chat_template = _flag("chat_template", chat_template)
    specs = model_specs(args.get("models", "smol_gemma"), device, dtype, chat_template)

    from adafuse.decoding import DECODERS

    name = str(args.get("decoder") or "adafuse")
    if name not in DECODERS:
        raise AdaFuseError(f"decoder={name!r} is not allowed; allowed: {', '.join(sorted(DECODERS))}")
    decoder: dict[str, Any] = {"name": name}
    for key, kind in decoder_types.items():  # cast as its schema says; ranges: the decoder's own checks
        if args.get(key) is None:
            continue
        value = args[key]
        if kind in (List[float], Optional[List[float]]):
            value = [_number(key, w) for w in _split(value)]
        elif kind in (float, Optional[float]):
            value = _number(key, value)
        elif kind in (int, Optional[int]):
            value = _integer(key, value)
        elif kind in (str, Optional[str]):
            value = str(value)
        decoder[key] = value
    batch_size = _positive_int("batch_size", args["batch_size"]) if args.get("batch_size") is not None else 1
    return specs, decoder, batch_size


def _integer(key: str, value: Any) -> int:
    """An integer from lm-eval's cast (an int) or a string of one; the range is the decoder's."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise AdaFuseError(f"{key}={value!r} is not allowed; {key} must be an integer") from None


def check(args: dict[str, Any]) -> None:
    """Everything `AdaFuseLM(**args)` would reject before loading weights: the keys and values,
    each model spec (`check_spec`: names, files, device, dtype) and the decoder's parameters
    (its constructor, given stand-ins for the models)."""
    from types import SimpleNamespace

    from adafuse.decoding import build_decoder
    from adafuse.model_checks import check_spec

    specs, decoder, _ = parse(args)
    checked = [check_spec(spec) for spec in specs]
    # what a decoder's constructor reads of a model (the base class asks for these attributes)
    stand_ins = [SimpleNamespace(name=spec.name, weight=spec.weight, tokenizer=None, encode=None)
                 for spec in checked]
    try:
        build_decoder(decoder, stand_ins)
    except AdaFuseError:
        raise
    except Exception:  # noqa: BLE001 - a constructor that needs a real model: checked when it loads
        pass


def type_name(kind: Any) -> str:
    """A schema type as --help writes it: int, float, str, or a list joined by '+'."""
    import typing

    if "List" in str(kind):
        return "numbers joined by '+' (1+2)"
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if args else kind
    return getattr(base, "__name__", str(base))


def decoder_help() -> list[tuple[str, str, str]]:
    """(key, meaning, default) for each decoder parameter, read from the registered classes:
    its type and range (`bounds`), its short name in reports (`labels`), and which decoders
    take it with which default."""
    from adafuse.decoding import DECODERS
    from adafuse.decoding.base import MODES
    from adafuse.decoding.registry import LAST_MODEL, default, schema_keys

    rows = []
    for key, kind in decoder_keys().items():
        takers = [cls for cls in DECODERS.values() if key in schema_keys(cls)]
        defaults: dict[str, list[str]] = {}
        for cls in takers:
            value = default(cls, key)
            shown = ("equal" if value is None and key == "weights" else
                     "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
            defaults.setdefault(shown, []).append(cls.name)
        bounds = next((c.bounds[key] for c in takers if key in getattr(c, "bounds", {})), None)
        what = " or ".join(MODES) if key == "mode" else type_name(kind)
        if bounds:
            low, high = bounds
            what += f" >= {low}" if high is None else \
                f" in [{low}, {'the last model' if high == LAST_MODEL else high}]"
        label = next((c.labels[key] for c in takers if key in getattr(c, "labels", {})), None)
        if label:
            what += f" ({label} in reports)"
        shown = "; ".join(f"{v} ({', '.join(names)})" if len(defaults) > 1 else v for v, names in defaults.items())
        rows.append((key, f"{what}; for {', '.join(c.name for c in takers)}", shown))
    return rows


def help_text() -> str:
    """Our --help page (the one shape of every entry point's, adafuse.cli): the `--model_args`
    keys, what each means and its default, printed before lm-eval's own help by
    `python -m adafuse.lm_eval --help`."""
    from adafuse import cli
    from adafuse.decoding import DECODERS

    own = {k: (m.format(presets=", ".join(presets()), decoders=", ".join(DECODERS)), d)
           for k, (m, d) in OWN_HELP.items()}
    rows = [(k, *own[k]) for k in OWN_KEYS[:2]] + decoder_help() + [(k, *own[k]) for k in OWN_KEYS[2:]]
    return cli.render(cli.Command(
        prog="python -m adafuse.lm_eval",
        summary="lm-eval's command line, with an ensemble of LMs (or one) as the model `adafuse`; the "
                "arguments below are the keys of --model_args.",
        usage=("run --model adafuse --model_args key=value,key=value,... --tasks T [lm-eval's options]",
               "<lm-eval's subcommand> [its options]"),
        args=tuple(cli.Arg(key, meaning, default) for key, meaning, default in rows),
        examples=("run --model adafuse --model_args models=smol_gemma,theta_delta=0.7 --tasks capitals_generate "
                  "--include_path adafuse/lm_eval/example_tasks --limit 2",
                  "run --model adafuse --model_args models=smollm2-135m-instruct+gemma3-270m,weights=1+2 "
                  "--tasks gsm8k"),
        notes="""\
lm-eval splits --model_args at commas, so a list is joined by '+'. A bad key or value is one
error: line and exit status 2, before lm-eval indexes its tasks or a model loads.
CPU threads: threads=auto when the models load (the cores free of other load);
OMP_NUM_THREADS=N sets the count.

lm-eval's own help follows.""",
    ))
