"""Task cards: `tasks/<name>/task.yaml`, read and checked.

A card is declarative (data sources, prompt, stop strings, filters, metrics); every key is
checked here so that a typo fails when the card is read, with the bad key and the allowed ones.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from adafuse.tasks.errors import TaskError
from adafuse.tasks.filters import get_filter
from adafuse.tasks.metrics import get_metric

CARD_KEYS = {
    "name", "description", "version", "data", "prompt", "stop", "max_new_tokens",
    "filters", "metrics", "main_metric", "fallback_main_metric",
}
REQUIRED_KEYS = {"name", "data", "prompt", "stop", "max_new_tokens", "metrics", "main_metric"}
DATA_KEYS = {"default", "sources"}
PROMPT_KEYS = {"file", "text", "separator", "template"}
SOURCE_KEYS = {
    "jsonl": {"kind", "path"},
    "hf": {"kind", "dataset", "config", "split", "fields"},
    "hf_parallel": {"kind", "dataset", "source_config", "target_config", "split", "text_field", "id_field"},
}
SOURCE_REQUIRED = {
    "jsonl": {"path"},
    "hf": {"dataset", "split"},
    "hf_parallel": {"dataset", "source_config", "target_config", "split"},
}


@dataclass
class TaskCard:
    name: str
    folder: Path
    description: str
    version: int
    sources: dict[str, dict]
    default_source: str
    instruction: str  # prompt.txt (or inline text) + separator: the prefix every item shares
    template: str  # per-item text, str.format over the doc's fields
    stop: list[str]
    max_new_tokens: int
    filters: list[str]
    metrics: list[str]
    main_metric: str
    fallback_main_metric: str | None
    template_fields: list[str] = field(default_factory=list)


def _check_keys(where: str, got: dict, allowed: set[str], required: set[str] = frozenset()) -> None:
    for key in got:
        if key not in allowed:
            raise TaskError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(sorted(allowed))}")
    for key in sorted(required):
        if key not in got:
            raise TaskError(f"{where}: missing key {key!r}")


MAX_FORMAT_WIDTH = 1000  # a field's width or precision in the template: {question:>1000000000} pads
                         # every prompt to a gigabyte (and aborted the process)


def _template_fields(template: str, where: str) -> list[str]:
    if not isinstance(template, str) or not template:
        raise TaskError(f"{where}: 'template' must be a non-empty string, got {template!r}")
    try:
        parsed = [(f, spec) for _, f, spec, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise TaskError(f"{where}: bad prompt template ({e})") from None
    for n, spec in parsed:
        if not n.isidentifier():
            raise TaskError(f"{where}: prompt template field {{{n}}} must be a plain field name")
        if "{" in (spec or ""):
            raise TaskError(f"{where}: prompt template field {{{n}:{spec}}}: a format spec may not "
                            "hold another field")
        numbers = [int(x) for x in re.findall(r"\d+", spec or "")]
        if any(x > MAX_FORMAT_WIDTH for x in numbers):
            raise TaskError(f"{where}: prompt template field {{{n}:{spec}}} pads or cuts to "
                            f"{max(numbers)} characters; at most {MAX_FORMAT_WIDTH} are allowed")
    return list(dict.fromkeys(n for n, _ in parsed))


# the card's typed fields (version, stop and max_new_tokens have their own checks)
CARD_TYPES = {"name": "a string", "description": "a string", "data": "a mapping",
              "prompt": "a mapping", "filters": "a list of strings", "metrics": "a list of strings",
              "main_metric": "a string", "fallback_main_metric": "a string"}


def _is(value, kind: str) -> bool:
    if kind == "a string":
        return isinstance(value, str)
    if kind == "a mapping":
        return isinstance(value, dict)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _version(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TaskError(f"{where}: 'version' must be a non-negative integer, got {value!r}")
    return value


def read_card(path: Path) -> TaskCard:
    path = Path(path)
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TaskError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise TaskError(f"{where}: expected a mapping at the top level")
    _check_keys(where, raw, CARD_KEYS, REQUIRED_KEYS)
    if raw["name"] != path.parent.name:
        raise TaskError(f"{where}: name {raw['name']!r} differs from its folder {path.parent.name!r}")

    for key, kind in CARD_TYPES.items():
        if key in raw and not (raw[key] is None and key not in REQUIRED_KEYS) and not _is(raw[key], kind):
            raise TaskError(f"{where}: {key!r} must be {kind}, got {raw[key]!r}")
    data = raw["data"]
    _check_keys(f"{where} data", data, DATA_KEYS, DATA_KEYS)
    sources = data["sources"]
    for sname, spec in sources.items():
        kind = spec.get("kind")
        if kind not in SOURCE_KEYS:
            raise TaskError(f"{where} source {sname!r}: unknown kind {kind!r}; known kinds: {', '.join(SOURCE_KEYS)}")
        _check_keys(f"{where} source {sname!r}", spec, SOURCE_KEYS[kind], SOURCE_REQUIRED[kind])
    if data["default"] not in sources:
        raise TaskError(f"{where}: default source {data['default']!r} is not one of {', '.join(sources)}")

    prompt = raw["prompt"]
    _check_keys(f"{where} prompt", prompt, PROMPT_KEYS, {"template"})
    for key in ("file", "text", "separator"):
        if key in prompt and not isinstance(prompt[key], str):
            raise TaskError(f"{where} prompt: {key!r} must be a string, got {prompt[key]!r}")
    if ("file" in prompt) == ("text" in prompt):
        raise TaskError(f"{where} prompt: give exactly one of 'file' and 'text'")
    if "file" in prompt:
        prompt_path = path.parent / prompt["file"]
        if not prompt_path.is_file():
            raise TaskError(f"{where} prompt: file not found: {prompt_path}")
        instruction = prompt_path.read_text(encoding="utf-8")
    else:
        instruction = prompt["text"]
    instruction += prompt.get("separator", "")

    stop = raw["stop"]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise TaskError(f"{where}: 'stop' must be a list of non-empty strings")
    max_new_tokens = raw["max_new_tokens"]
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise TaskError(f"{where}: 'max_new_tokens' must be a positive integer, got {max_new_tokens!r}")
    filters, metrics = list(raw.get("filters") or []), list(raw["metrics"])
    for name in filters:
        get_filter(name)
    for name in metrics:
        get_metric(name)
    if raw["main_metric"] not in metrics:
        raise TaskError(f"{where}: main_metric {raw['main_metric']!r} is not in metrics {metrics}")

    return TaskCard(
        name=raw["name"],
        folder=path.parent,
        description=raw.get("description", ""),
        version=_version(raw.get("version", 1), where),
        sources=sources,
        default_source=data["default"],
        instruction=instruction,
        template=prompt["template"],
        stop=stop,
        max_new_tokens=max_new_tokens,
        filters=filters,
        metrics=metrics,
        main_metric=raw["main_metric"],
        fallback_main_metric=raw.get("fallback_main_metric"),
        template_fields=_template_fields(prompt["template"], f"{where} prompt"),
    )

