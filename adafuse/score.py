"""Re-score a predictions file against a task's items.

    python -m adafuse.score task=triviaqa predictions=runs/x/samples.jsonl [limit=N]
        [source=bundled|hf|path.jsonl] [tasks_dir=DIR] [per_item=out.jsonl]

`predictions` holds one JSON object a line with the raw model output in `pred` (null for
none) and the item's `id` or its `question` text. The items scored are the task's first
`limit` items (all without it); an item with no prediction counts as wrong, as the paper's
accuracies do. Prints the metrics as JSON. Bad input prints one line and exits with 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from adafuse.tasks import Task, TaskError, get_task
from adafuse.tasks.loaders import read_jsonl

KEYS = {"task", "predictions", "limit", "source", "tasks_dir", "per_item"}
REQUIRED = ("task", "predictions")
USAGE = "usage: python -m adafuse.score task=NAME predictions=FILE.jsonl [limit=N] [source=S] [tasks_dir=DIR] [per_item=OUT.jsonl]"


def parse_args(argv: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise TaskError(f"expected key=value, got {arg!r}; {USAGE}")
        if key not in KEYS:
            raise TaskError(f"unknown key {key!r}; allowed keys: {', '.join(sorted(KEYS))}")
        args[key] = value
    for key in REQUIRED:
        if key not in args:
            raise TaskError(f"missing {key}=...; {USAGE}")
    return args


def read_predictions(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise TaskError(f"predictions file not found: {path}")
    rows = []
    for lineno, row in read_jsonl(path):
        if "pred" not in row:
            raise TaskError(f"{path}:{lineno}: missing field 'pred'")
        if row["pred"] is not None and not isinstance(row["pred"], str):
            raise TaskError(f"{path}:{lineno}: 'pred' must be a string or null")
        if "id" not in row and "question" not in row:
            raise TaskError(f"{path}:{lineno}: needs the item's 'id' or 'question'")
        rows.append((lineno, row))
    return rows


def match_predictions(task: Task, rows: list[tuple[int, dict]], docs: list[dict], path: Path) -> list[Optional[str]]:
    """Predictions in the order of `docs`, by id (when the line has one) or question text.

    Lines for items of the task outside `docs` (past `limit`) are skipped; lines that match
    no item of the task are an error, as is a second prediction for one item."""
    every = task.docs()
    by_id = {str(d["id"]): str(d["id"]) for d in every}
    by_question = {d.get("question"): str(d["id"]) for d in every}
    position = {str(d["id"]): i for i, d in enumerate(docs)}
    preds: list[Optional[str]] = [None] * len(docs)
    seen: set[str] = set()
    for lineno, row in rows:
        if "id" in row:
            key = by_id.get(str(row["id"]))
            what = f"id {row['id']!r}"
        else:
            key = by_question.get(row["question"])
            what = "question text"
        if key is None:
            raise TaskError(f"{path}:{lineno}: {what} matches no item of task {task.name!r}")
        if key in seen:
            raise TaskError(f"{path}:{lineno}: second prediction for item id {key}")
        seen.add(key)
        if key in position:
            preds[position[key]] = row["pred"]
    return preds


def score_file(args: dict[str, str]) -> dict:
    limit = None
    if "limit" in args:
        if not args["limit"].isdigit():
            raise TaskError(f"limit must be a non-negative integer, got {args['limit']!r}")
        limit = int(args["limit"])
    task = get_task(args["task"], source=args.get("source"), tasks_dir=args.get("tasks_dir"))
    path = Path(args["predictions"])
    rows = read_predictions(path)
    docs = task.docs(limit=limit)
    preds = match_predictions(task, rows, docs, path)
    result = task.score(preds, docs)
    if "per_item" in args:
        with open(args["per_item"], "w", encoding="utf-8") as f:
            for doc, pred, extracted, scores in zip(docs, preds, result.extracted, result.per_item):
                f.write(json.dumps({"id": doc["id"], "pred": pred, "extracted": extracted,
                                    "gold": doc["answer"], "scores": scores}, ensure_ascii=False) + "\n")
    return {"task": task.name, "source": task.source, "predictions": str(path), **result.to_dict()}


def main(argv: Optional[list[str]] = None) -> int:
    try:
        report = score_file(parse_args(sys.argv[1:] if argv is None else argv))
    except (TaskError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
