"""Files of run folders read as bounded data, for the readers (`compare`, `show`, `score`).

A run folder may come from someone else, be damaged, or be made to hurt whoever reads it. The
readers open its files through here:

- `read_yaml(path)`: plain YAML (no tag builds an object), at most `MAX_YAML_BYTES` of it, at
  most `MAX_ALIASES` aliases, and at most `MAX_NODES` nodes once its aliases are expanded, so a
  "billion laughs" file of a few hundred bytes is refused before anything walks it; a
  self-referencing alias is refused too. The result is a plain tree (dicts with string keys,
  lists, strings, numbers, booleans, None) that shares no node.
- `read_json_bounded(path)`: a JSON file of at most `MAX_JSON_BYTES`.
- `read_records(path, fields)`: the lines of samples.jsonl or trace.jsonl, each checked for
  the types adafuse.run writes (NaN or infinite numbers included: `record_problem`), so that a
  reader skips the run with a note instead of failing in the middle of a report.
- `text_problem(data)`: where a file's data holds text that is not text (an unpaired
  surrogate, from a JSON or YAML `\\ud800` escape: it cannot be written as UTF-8, so the first
  print or write of it would fail). Every reader of a run folder's JSON and YAML (these, and
  adafuse.runfolder's) refuses such a file or line, naming it and the field.
- `printable(text)`, `say(text)`: text from a run folder with terminal control characters
  (and unpaired surrogates) escaped, so that `show` and `compare` never print an escape
  sequence a folder holds;
  `quiet_on_closed_pipe(main)`: a command that ends quietly under `| head`.

Each failure is an `AdaFuseError` whose one line names the file and what is wrong with it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from adafuse.errors import AdaFuseError

MAX_YAML_BYTES = 1 << 20  # a composed Hydra config is a few KB
MAX_JSON_BYTES = 256 << 20  # results.json holds a config, metrics and totals
MAX_ALIASES = 100
MAX_NODES = 200_000


class _Refused(Exception):
    pass


def _bounded_loader(max_aliases: int):
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > max_aliases:
                    raise _Refused(f"more than {max_aliases} YAML aliases")
            return super().compose_node(parent, index)

    return Loader


def expanded_size(data: Any, limit: int) -> int:
    """Nodes in `data` with every shared node counted each time it is reached (what a walk or a
    copy would visit), counting no further than just past `limit`; a cycle is refused."""
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_ids:
            raise _Refused("an alias refers to a node that holds it (a cycle)")
        open_ids.add(key)
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        open_ids.discard(key)
        sizes[key] = total
        return total

    return size(data)


def plain(data: Any) -> Any:
    """A copy of `data` as JSON-like values: string keys, no shared nodes, no other types
    (a YAML date becomes its text)."""
    if isinstance(data, dict):
        return {k if isinstance(k, str) else str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    if data is None or isinstance(data, (str, bool, int, float)):
        return data
    return str(data)


def _read_bounded(path: Path, max_bytes: int) -> bytes | None:
    """A file's bytes, at most `max_bytes` of them (more is one line); None: no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise AdaFuseError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > max_bytes:
        raise AdaFuseError(f"{path}: larger than {max_bytes} bytes; not read")
    return raw


def read_yaml(path: Path, max_bytes: int = MAX_YAML_BYTES, max_aliases: int = MAX_ALIASES,
              max_nodes: int = MAX_NODES) -> Any:
    """The data of a YAML file within the bounds above; None when there is no such file."""
    import yaml

    raw = _read_bounded(path, max_bytes)
    if raw is None:
        return None
    try:
        loader = _bounded_loader(max_aliases)(raw.decode("utf-8"))
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
        if expanded_size(data, max_nodes) > max_nodes:
            raise _Refused(f"more than {max_nodes} nodes once its aliases are expanded")
    except _Refused as exc:
        raise AdaFuseError(f"{path}: {exc}; not read") from None
    except UnicodeDecodeError:
        raise AdaFuseError(f"{path}: not UTF-8 text") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        what = "nested too deeply" if isinstance(exc, RecursionError) else "not plain YAML data"
        raise AdaFuseError(f"{path}: {what}") from None
    data = plain(data)
    bad = text_problem(data)
    if bad:
        raise AdaFuseError(f"{path}: {bad}")
    return data


def read_json_bounded(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The data of a JSON file of at most `max_bytes`; None when there is no such file."""
    raw = _read_bounded(path, max_bytes)
    if raw is None:
        return None
    return loads_text(raw, str(path))


# --- text that is not text --------------------------------------------------------------------

# a JSON escape of a surrogate (`\ud800`..`\udfff`): the only way JSON text decoded from UTF-8
# can hold one, so data whose bytes lack it need not be walked
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(data: Any, raw: bytes | None = None) -> str | None:
    """Where `data` (JSON-like: dicts, lists, strings, ...) holds a string, key or value, that
    cannot be written as UTF-8 (an unpaired surrogate), as "'a.b.0' holds ...", or None. With
    `raw`, the bytes `data` was decoded from as JSON: when they hold no surrogate escape there
    is nothing to look for."""
    if raw is not None and not _SURROGATE_ESCAPE.search(raw):
        return None
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                inner = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and _SURROGATE.search(key):
                    return _surrogate_line(inner, key)
                stack.append((inner, value))
        elif isinstance(node, list):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(node))
        elif isinstance(node, str) and _SURROGATE.search(node):
            return _surrogate_line(where, node)
    return None


def _surrogate_line(where: str, text: str) -> str:
    char = _SURROGATE.search(text).group()
    name = printable(where.encode("utf-8", "backslashreplace").decode("utf-8"))
    return (("'" + name + "'" if name else "the value") + f" holds an unpaired surrogate "
            f"({ascii(char)[1:-1]}), which is not text (it cannot be written as UTF-8)")


def loads_text(raw: bytes, where: str) -> Any:
    """JSON data from a run folder file's bytes: damage, and text that is not text
    (`text_problem`), are an AdaFuseError naming `where` (the file, or file:line)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AdaFuseError(f"{where}: not valid JSON; the file is damaged") from None
    bad = text_problem(data, raw)
    if bad:
        raise AdaFuseError(f"{where}: {bad}; the file is damaged")
    return data


# --- samples.jsonl records --------------------------------------------------------------------


def finite(value: Any) -> bool:
    """A real number (not a bool) that is neither NaN nor infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_text_or_texts(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _numbers(v: Any) -> bool:
    """An object whose values are finite numbers (or such objects: per-model totals)."""
    return isinstance(v, dict) and all(finite(x) or _numbers(x) for x in v.values())


def _list_of(check):
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _optional(check):
    return lambda v: v is None or check(v)


# field -> (what it must be, the check); a field may be absent (older folders), or None
SAMPLE_FIELDS = {
    "id": ("a string or an integer", lambda v: isinstance(v, str) or _integer(v)),
    "index": ("an integer", _integer),
    "response": ("a string", lambda v: isinstance(v, str)),
    "extracted": ("a string", lambda v: isinstance(v, str)),
    "question": ("a string", lambda v: isinstance(v, str)),
    "prompt": ("a string", lambda v: isinstance(v, str)),
    "finish_reason": ("a string", lambda v: isinstance(v, str)),
    "gold": ("a string or a list of strings", _is_text_or_texts),
    "models": ("a list of strings", _list_of(lambda x: isinstance(x, str))),
    "scores": ("an object of finite numbers", lambda v: isinstance(v, dict) and all(map(finite, v.values()))),
    "main_score": ("a finite number", finite),
    "span_words": ("a list of integers", _list_of(_integer)),
    "uncertain_share": ("a number in [0, 1]", lambda v: finite(v) and 0 <= v <= 1),
    "rounds": ("an integer", _integer),
    "words": ("an integer", _integer),
    # a sitting's first item carries `warmup: true` beside its numbers (runner/experiment.py)
    "seconds": ("an object of finite numbers (and a warmup flag)",
                lambda v: _numbers({k: x for k, x in v.items() if not (k == "warmup" and isinstance(x, bool))})
                if isinstance(v, dict) else False),
    "cost": ("an object of finite numbers", _numbers),
}

# trace.jsonl: a line a round
TRACE_FIELDS = {
    "id": SAMPLE_FIELDS["id"],
    "item": ("an integer", _integer),
    "round": ("an integer", _integer),
    "winner": ("an integer", _integer),
    "winner_text": ("a string", lambda v: isinstance(v, str)),
    "margins": ("a list (a model) of lists of numbers",
                _list_of(_optional(_list_of(_optional(finite))))),
    "explored": ("a list of booleans", _list_of(lambda x: isinstance(x, bool))),
    "models": SAMPLE_FIELDS["models"],
    "near_tie": ("a boolean", lambda v: isinstance(v, bool)),
    "proposals": ("a list of proposals (text, proposers, nll, score)", _list_of(lambda p: (
        isinstance(p, dict) and isinstance(p.get("text", ""), str)
        and _list_of(_integer)(p.get("proposers", []))
        and _optional(_list_of(lambda x: isinstance(x, str)))(p.get("proposer_names"))
        and _optional(_list_of(_optional(finite)))(p.get("nll"))
        and _optional(finite)(p.get("score"))))),
}


def record_problem(record: Any, fields: dict | None = None) -> str | None:
    """What is wrong with one record of samples.jsonl (`fields` = SAMPLE_FIELDS, the default)
    or trace.jsonl (TRACE_FIELDS), or None: a field of another type than adafuse.run writes
    (a missing or null field is no problem: older folders lack some)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if "id" not in record:
        return "no 'id'"
    for name, (what, check) in (SAMPLE_FIELDS if fields is None else fields).items():
        value = record.get(name)
        if value is not None and not check(value):
            return f"{name!r} is {short(value)}, not {what}"
    return None


def read_records(path: Path, fields: dict | None = None) -> list[dict]:
    """The records of a run's JSONL file (none when there is no file), each checked by
    `record_problem`; a torn last line (a killed writer) is left out. A bad line anywhere
    else is an AdaFuseError naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - (1 if not lines[-1].strip() else 0)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            if number == last:
                break
            raise AdaFuseError(f"{path}:{number}: not a JSON object; the file is damaged") from None
        problem = record_problem(record, fields) or text_problem(record, line)
        if problem:
            raise AdaFuseError(f"{path}:{number}: {problem}")
        records.append(record)
    return records


def short(value: Any, width: int = 40) -> str:
    """A value for an error line: its repr, cut to `width` characters, escaped."""
    text = repr(value)
    return printable(text if len(text) <= width else text[:width - 1] + "…")


# --- terminal output ------------------------------------------------------------------------

# C0 and C1 controls (ESC among them), DEL, the bidirectional overrides and isolates that
# reorder what a terminal shows, and unpaired surrogates (no encoding can print them: a file
# name of bytes that are not UTF-8 holds them as Python reads it)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str, keep_newlines: bool = True) -> str:
    """`text` with terminal control characters written as escapes (`\\x1b`); newlines and tabs
    kept unless `keep_newlines` is false."""
    text = str(text)
    if not keep_newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def json_printable(text: str) -> str:
    """JSON text with the control characters JSON leaves raw (DEL, C1, bidi) as `\\uXXXX`
    escapes, still the same JSON."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def say(text: str, file=None) -> None:
    """Print text that may hold run-folder content, its control characters escaped."""
    print(printable(text), file=file if file is not None else sys.stdout)


def quiet_on_closed_pipe(main):
    """A command's main that ends quietly, with status 141 (128 + SIGPIPE, as a shell reports a
    tool that a closed pipe ended), when what reads its output goes away (`... | head`)."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            status = main(*args, **kwargs)
            sys.stdout.flush()
            return status
        except BrokenPipeError:
            # Python flushes stdout again at exit: point it at /dev/null so that fails no more
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141

    return wrapped
