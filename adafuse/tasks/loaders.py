"""Data loaders: a task's items from a JSONL file or a Hugging Face dataset.

Every loader returns docs: dicts with at least `id`, the fields the prompt template names,
and `answer` (a string, or a list of acceptable strings). Items without an `id` get their
0-based position. Errors name the file and line, or the field and its source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from adafuse.tasks.errors import TaskError
from adafuse.tasks.filters import get_filter

HF_HINT = "offline? use the bundled data (source=bundled) or a local JSONL file (source=path.jsonl)"


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; errors name the file and line."""
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TaskError(f"{path}:{lineno}: malformed JSON ({e.msg}, column {e.colno})") from None
                if not isinstance(row, dict):
                    raise TaskError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                yield lineno, row
    except UnicodeDecodeError as e:
        raise TaskError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_jsonl(path: Path, required: Iterable[str]) -> list[dict]:
    """One JSON object a line; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"data file not found: {path}")
    docs = []
    for lineno, row in read_jsonl(path):
        _check_fields(row, required, f"{path}:{lineno}")
        docs.append(row)
    return _with_ids(docs, str(path))


def _check_fields(row: dict, required: Iterable[str], where: str) -> None:
    for field in required:
        if field not in row:
            have = ", ".join(sorted(row)) or "none"
            raise TaskError(f"missing field {field!r} in {where} (fields there: {have})")


def _check_doc(doc: dict, where: str) -> None:
    """An item's id is a string or an integer; its answer a string or a non-empty list of
    strings; its text encodes as UTF-8 (JSON can hold an unpaired surrogate, "\\ud800", which
    no file, tokenizer or report can write)."""
    item_id = doc["id"]
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        raise TaskError(f"{where}: id {item_id!r} must be a string or an integer")
    answer = doc.get("answer")
    if "answer" in doc and not (isinstance(answer, str) or (
            isinstance(answer, list) and answer and all(isinstance(a, str) for a in answer))):
        shown = repr(answer) if len(repr(answer)) <= 60 else repr(answer)[:57] + "..."
        raise TaskError(f"{where}: answer {shown} must be a string or a non-empty "
                        "list of strings (quote a number: \"42\")")
    for key, value in doc.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise TaskError(f"{where}: field {key!r} holds text that is not valid Unicode "
                                    "(an unpaired surrogate)") from None


def _with_ids(docs: list[dict], origin: str) -> list[dict]:
    seen = set()
    for i, doc in enumerate(docs):
        doc.setdefault("id", i)
        _check_doc(doc, f"{origin}, item {i}")
        key = str(doc["id"])
        if key in seen:
            raise TaskError(f"duplicate id {doc['id']!r} in {origin}")
        seen.add(key)
    return docs


# --- Hugging Face datasets -----------------------------------------------------------------


def _load_hf_split(dataset: str, config: str | None, split: str) -> Any:
    what = f"{dataset}" + (f" (config {config})" if config else "") + f", split {split}"
    try:
        import datasets
    except ImportError:
        raise TaskError(f"Hugging Face dataset {what} needs the `datasets` package; {HF_HINT}") from None
    try:
        return datasets.load_dataset(dataset, config, split=split)
    except Exception as e:  # offline, gated, unknown config: all end the same way for the user
        raise TaskError(f"could not load Hugging Face dataset {what}: {_one_line(e)}; {HF_HINT}") from None


def _lookup(row: dict, path: str, origin: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            have = ", ".join(sorted(row))
            raise TaskError(f"missing field {path!r} in {origin} (fields there: {have})")
        value = value[part]
    return value


def map_field(row: dict, spec: Any, origin: str) -> Any:
    """A field spec: "a.b" (dotted path), "{x} {y}" (a template over top-level fields), or
    {from: <spec>, filter: <name or list of names>} (filters applied to the value, or to each
    string of a list)."""
    if isinstance(spec, dict):
        value = map_field(row, spec["from"], origin)
        names = spec.get("filter", [])
        for name in [names] if isinstance(names, str) else names:
            fn = get_filter(name)
            value = [fn(v) for v in value] if isinstance(value, list) else fn(value)
        return value
    if "{" in spec:
        try:
            return spec.format_map(row)
        except KeyError as e:
            raise TaskError(f"missing field {e.args[0]!r} in {origin} (fields there: {', '.join(sorted(row))})") from None
    return _lookup(row, spec, origin)


def load_hf(spec: dict, required: Iterable[str]) -> list[dict]:
    """`datasets.load_dataset(dataset, config, split=split)`, fields mapped by `spec["fields"]`."""
    rows = _load_hf_split(spec["dataset"], spec.get("config"), spec["split"])
    origin = f"Hugging Face dataset {spec['dataset']}"
    fields = spec.get("fields") or {}
    docs = []
    for row in rows:
        row = dict(row)
        doc = {target: map_field(row, src, origin) for target, src in fields.items()}
        for name in required:  # fields named like the doc's need no mapping
            if name not in doc:
                doc[name] = map_field(row, name, origin)
        docs.append(doc)
    return _with_ids(docs, origin)


def load_hf_parallel(spec: dict, required: Iterable[str]) -> list[dict]:
    """Two configs of one dataset, aligned by an id field: source text -> `question`, target
    text -> `answer` (FLORES+ keeps one language per config)."""
    text, id_field = spec.get("text_field", "text"), spec.get("id_field", "id")
    origin = f"Hugging Face dataset {spec['dataset']}"
    src = _load_hf_split(spec["dataset"], spec["source_config"], spec["split"])
    tgt = _load_hf_split(spec["dataset"], spec["target_config"], spec["split"])
    targets = {str(_lookup(dict(r), id_field, origin)): _lookup(dict(r), text, origin) for r in tgt}
    docs = []
    for row in src:
        row = dict(row)
        key = str(_lookup(row, id_field, origin))
        if key not in targets:
            raise TaskError(f"{origin}: id {key} of {spec['source_config']} has no {spec['target_config']} row")
        docs.append({"id": row[id_field], "question": _lookup(row, text, origin), "answer": targets[key]})
    return _with_ids(docs, origin)


def load_source(spec: dict, base_dir: Path, required: Iterable[str]) -> list[dict]:
    """Dispatch on `spec["kind"]`; a JSONL path is relative to the task's folder."""
    kind = spec["kind"]
    if kind == "jsonl":
        return load_jsonl(base_dir / spec["path"], required)
    if kind == "hf":
        return load_hf(spec, required)
    if kind == "hf_parallel":
        return load_hf_parallel(spec, required)
    raise TaskError(f"unknown data source kind {kind!r}; known kinds: jsonl, hf, hf_parallel")
