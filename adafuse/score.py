"""Re-score predictions with a task's rules, or re-score run folders in place.

    python -m adafuse.score task=nq predictions=runs/nq/2026-11-28_02-00-00/samples.jsonl

Its command line, the files it reads and its reports: COMMAND below (`--help` prints them).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from adafuse import cli
from adafuse.errors import AdaFuseError
from adafuse.runfolder import RESULTS, write_json_atomic, write_jsonl_atomic
from adafuse.safe_read import printable, read_records, text_problem
from adafuse.runfolder.provenance import git_state
from adafuse.runfolder.rundir import RunDir
from adafuse.tasks import ScoreResult, Task, TaskError, get_task
from adafuse.tasks.loaders import read_jsonl
from adafuse.tasks.metrics.registry import percent

COMMAND = cli.Command(
    prog="python -m adafuse.score",
    summary="Re-score predictions with a task's rules, or re-score run folders in place.",
    usage=("task=NAME predictions=FILE.jsonl [limit=N] [source=S] [tasks_dir=DIR] [per_item=OUT.jsonl] "
           "[only_predicted=true] [gold=file|task]",
           "rescore=RUNS_DIR [tasks_dir=DIR]"),
    args=(
        cli.Arg("task=NAME", "the task whose rules (filters, metrics) score the predictions"),
        cli.Arg("predictions=FILE.jsonl", "the predictions: one JSON object a line (see notes)"),
        cli.Arg("limit=N", "score the first N lines (a file with gold), or match to the task's first N items",
                default="all"),
        cli.Arg("source=S", "where the task's items come from: a source its card names (bundled, hf) or "
                "a JSONL file", default="the card's"),
        cli.Arg("tasks_dir=DIR", "the folder of task cards", default="$ADAFUSE_TASKS_DIR, else tasks/"),
        cli.Arg("per_item=OUT.jsonl", "also write each item's prediction, extraction and scores to this file"),
        cli.Arg("only_predicted=true", "score the predicted items alone, instead of counting an item "
                "without a prediction as wrong", default="false"),
        cli.Arg("gold=file|task", "file: each line carries its gold; task: match the lines to the task's "
                "items instead", default="file"),
        cli.Arg("rescore=RUNS_DIR", "re-score every finished run folder at or below it, in place (see notes)"),
    ),
    examples=(
        "task=nq predictions=runs/nq/2026-11-28_02-00-00/samples.jsonl",
        "task=squad predictions=paper_preds.jsonl only_predicted=true",
        "task=triviaqa predictions=preds.jsonl limit=100 per_item=scored.jsonl",
        "rescore=runs/table1_embedded       # every finished run below it",
    ),
    notes="""\
A predictions file holds one JSON object a line; `pred` (or `response`, as in a run's
samples.jsonl) is the raw model output, null or absent for none. Two kinds of file:
- with its own gold answers, `{"question", "pred", "answer"}` as the paper's scripts write them,
  or a run's samples.jsonl (`gold`): each line is an item and no task data is read; `task=`
  picks the rules. `limit=N` scores the first N lines. `gold=task` matches such a file to the
  task's items instead, as for the next kind;
- without gold, `{"id" or "question", "pred"}`: matched to the task's first `limit` items
  (all without it) by id, else by question text.
An item without a prediction counts as wrong, as in the paper's accuracies; `only_predicted=true`
scores the predicted items alone.

Two reports: for a person, on stderr, every metric on the 0-100 scale `compare` and RESULTS.md
print (accuracy and exact match in percent, BLEU and chrF as sacrebleu reports them); for
scripts, JSON on stdout with each number as results.json stores it (fractions in [0, 1], BLEU
and chrF on 0-100), and how many items had a prediction.

`rescore=DIR` re-scores every finished run folder at or below DIR with the current rules of its
task (after a scoring rule changed; no decoding): the samples' `extracted`, `scores` and
`main_score` and results.json's metrics are rewritten, results.json keeps the numbers before under
`rescored.previous`; the person's report gives each run's main metric before and after, on 0-100.
Bad input prints one line and exits with 2.""",
)
KEYS = set(COMMAND.keys())
USAGE = f"usage: {COMMAND.prog} " + " | ".join(COMMAND.usage) + " (--help for more)"
GOLD_FIELDS = ("answer", "gold")  # the paper's scripts write `answer`, a run's samples `gold`
PRED_FIELDS = ("pred", "response")
BOOLS = {"true": True, "false": False}
RULES = ("version", "filters", "metrics", "main_metric")  # what a re-score takes from the task card now


def parse_args(argv: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise TaskError(f"expected key=value, got {arg!r}; {USAGE}")
        if key not in KEYS:
            raise TaskError(f"unknown key {key!r}; allowed keys: {', '.join(sorted(KEYS))}")
        args[key] = value
    if "rescore" in args:
        extra = sorted(set(args) - {"rescore", "tasks_dir"})
        if extra:
            raise TaskError(f"rescore= takes no {', '.join(extra)}; {USAGE}")
        return args
    for key in ("task", "predictions"):
        if key not in args:
            raise TaskError(f"missing {key}=...; {USAGE}")
    if args.get("only_predicted", "false") not in BOOLS:
        raise TaskError(f"only_predicted must be true or false, got {args['only_predicted']!r}")
    if args.get("gold", "file") not in ("file", "task"):
        raise TaskError(f"gold must be file or task, got {args['gold']!r}")
    return args


# --- reading a predictions file ---------------------------------------------------------------


def _field(row: dict, names: tuple[str, ...]) -> Optional[str]:
    return next((n for n in names if n in row), None)


def check_line(row: dict, where: str) -> None:
    """The fields of one line have the types the scorer needs."""
    pred = _field(row, PRED_FIELDS)
    if pred is not None and row[pred] is not None and not isinstance(row[pred], str):
        raise TaskError(f"{where}: {pred!r} must be a string or null, got {type(row[pred]).__name__}")
    if row.get("question") is not None and not isinstance(row["question"], str):
        raise TaskError(f"{where}: 'question' must be a string, got {type(row['question']).__name__}")
    if "id" in row and (isinstance(row["id"], bool) or not isinstance(row["id"], (str, int))):
        raise TaskError(f"{where}: 'id' must be a string or an integer, got {type(row['id']).__name__}")
    gold = _field(row, GOLD_FIELDS)
    if gold is not None:
        value = row[gold]
        if isinstance(value, list):
            if not value or not all(isinstance(v, str) for v in value):
                raise TaskError(f"{where}: {gold!r} must be a string or a non-empty list of strings, got {value!r:.60}")
        elif not isinstance(value, str):
            raise TaskError(f"{where}: {gold!r} must be a string or a non-empty list of strings, "
                            f"got {type(value).__name__}")
    bad = text_problem(row)  # a run's samples.jsonl as predictions: read as the run folder is
    if bad:
        raise TaskError(f"{where}: {bad}")


def read_predictions(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each line, each checked; an empty file is an error."""
    if not path.is_file():
        raise TaskError(f"predictions file not found: {path}")
    rows = []
    for lineno, row in read_jsonl(path):
        check_line(row, f"{path}:{lineno}")
        rows.append((lineno, row))
    if not rows:
        raise TaskError(f"{path}: no predictions in it (the file is empty)")
    return rows


def prediction(row: dict) -> Optional[str]:
    field = _field(row, PRED_FIELDS)
    return None if field is None else row[field]


def has_gold(rows: list[tuple[int, dict]], path: Path) -> bool:
    """Whether the file carries its gold answers: all lines or none."""
    with_gold = [lineno for lineno, row in rows if _field(row, GOLD_FIELDS)]
    if with_gold and len(with_gold) != len(rows):
        first = next(lineno for lineno, row in rows if not _field(row, GOLD_FIELDS))
        raise TaskError(f"{path}:{first}: no 'answer' while line {with_gold[0]} has one; "
                        "give every line its gold answer, or none")
    return bool(with_gold)


def items_from_file(rows: list[tuple[int, dict]], limit: Optional[int]):
    """(docs, predictions, lines) of a file that carries its gold: one item a line; a repeated
    id keeps its first line, as a run folder does."""
    docs, preds, lines, seen = [], [], [], set()
    for lineno, row in rows:
        if "id" in row:
            if str(row["id"]) in seen:
                continue
            seen.add(str(row["id"]))
        docs.append({"answer": row[_field(row, GOLD_FIELDS)], "id": row.get("id"), "question": row.get("question")})
        preds.append(prediction(row))
        lines.append(lineno)
    return (docs, preds, lines) if limit is None else (docs[:limit], preds[:limit], lines[:limit])


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
        if _field(row, PRED_FIELDS) is None:
            raise TaskError(f"{path}:{lineno}: missing field 'pred' (the model output; or 'response')")
        if "id" in row:
            key, what = by_id.get(str(row["id"])), f"id {row['id']!r}"
        elif "question" in row:
            key, what = by_question.get(row["question"]), "question text"
        else:
            raise TaskError(f"{path}:{lineno}: needs the item's 'id' or 'question'")
        if key is None:
            raise TaskError(f"{path}:{lineno}: {what} matches no item of task {task.name!r}")
        if key in seen:
            raise TaskError(f"{path}:{lineno}: second prediction for item id {key}")
        seen.add(key)
        if key in position:
            preds[position[key]] = prediction(row)
    return preds


# --- scoring ---------------------------------------------------------------------------------


def _limit(args: dict[str, str]) -> Optional[int]:
    if "limit" not in args:
        return None
    if not args["limit"].isdigit():
        raise TaskError(f"limit must be a non-negative integer, got {args['limit']!r}")
    return int(args["limit"])


def score_file(args: dict[str, str]) -> dict:
    limit = _limit(args)
    task = get_task(args["task"], source=args.get("source"), tasks_dir=args.get("tasks_dir"))
    path = Path(args["predictions"])
    rows = read_predictions(path)
    if has_gold(rows, path) and args.get("gold", "file") == "file":
        docs, preds, lines = items_from_file(rows, limit)
        origin = {"gold": "file"}
    else:
        docs = task.docs(limit=limit)
        preds, lines = match_predictions(task, rows, docs, path), [None] * len(docs)
        origin = {"gold": "task", "source": task.source}
    n_items, n_predicted = len(docs), sum(p is not None for p in preds)
    only_predicted = BOOLS[args.get("only_predicted", "false")]
    if only_predicted:
        kept = [i for i, p in enumerate(preds) if p is not None]
        docs, preds, lines = [docs[i] for i in kept], [preds[i] for i in kept], [lines[i] for i in kept]
    if not docs:
        raise TaskError(f"{path}: no item to score" + (" (no line has a prediction)" if only_predicted else ""))
    result = task.score(preds, docs)
    if "per_item" in args:
        write_per_item(Path(args["per_item"]), docs, preds, lines, result)
    return {"task": task.name, **origin, "predictions": str(path), **result.to_dict(),
            "n_predicted": n_predicted, "n_without_prediction": n_items - n_predicted,
            "missing": "left out" if only_predicted else "counted as wrong"}


def write_per_item(out: Path, docs: list[dict], preds: list, lines: list, result: ScoreResult) -> None:
    """One line per item (id, line of the predictions file, prediction, extracted answer,
    gold, scores), written atomically: a killed scorer leaves the old file or the new one."""
    rows = ({"id": doc.get("id"), "line": line, "pred": pred, "extracted": extracted,
             "gold": doc["answer"], "scores": scores}
            for doc, pred, line, extracted, scores in zip(docs, preds, lines, result.extracted, result.per_item))
    write_jsonl_atomic(out, ({k: v for k, v in row.items() if v is not None or k == "pred"} for row in rows))


# --- re-scoring run folders in place ---------------------------------------------------------


def finished_runs(root: Path) -> list[RunDir]:
    if not root.exists():
        raise TaskError(f"rescore: no such folder: {root}")
    found = sorted({p.parent for p in [root / RESULTS, *root.rglob(RESULTS)] if p.is_file()})
    runs = [RunDir(p) for p in found if _complete(RunDir(p))]
    if not runs:
        raise TaskError(f"rescore: no finished run folder (results.json with status complete) at or below {root}")
    return runs


def _complete(run: RunDir) -> bool:
    """Whether a folder holds a finished run; a damaged results.json is a note, and skipped."""
    try:
        results = run.read_results()
    except (AdaFuseError, OSError) as exc:
        print(f"note: {printable(str(exc))}; not rescored, nothing changed", file=sys.stderr)
        return False
    return isinstance(results, dict) and results.get("status") == "complete"


def rescore_run(run: RunDir, tasks_dir: Optional[str] = None) -> dict[str, Any]:
    """Score a finished run's samples again with its task's current rules and rewrite them."""
    results = run.read_results()
    described = results.get("task") or {}
    if not (results.get("config") or {}).get("task") or not described.get("name"):
        return {"run": str(run.path), "skipped": "prompt mode: nothing to score"}
    n_missing = results.get("n_missing") or 0
    if n_missing:  # its metrics count the missing items as wrong, which its samples cannot say
        return {"run": str(run.path), "skipped": f"{n_missing} items missing; score it with task= predictions="}
    source = described.get("source")
    task = get_task(described["name"], source=None if source in (None, "bundled") else source, tasks_dir=tasks_dir)
    unchanged = "; not rescored, nothing changed"
    try:
        records = read_records(run.samples)
    except AdaFuseError as exc:
        return {"run": str(run.path), "skipped": f"{exc}{unchanged}"}
    raw = run.samples.read_bytes() if run.samples.is_file() else b""
    if raw and not raw.endswith(b"\n"):  # a partial last line: kept as it is, never cut
        return {"run": str(run.path), "skipped": f"{run.samples}: its last line is cut short{unchanged}"}
    samples, seen = [], set()
    for record in records:
        if str(record.get("id")) not in seen:  # as the run counts them: the first line of an id
            seen.add(str(record.get("id")))
            samples.append(record)
    n_items = results.get("n_items")
    if len(samples) != n_items:  # rescoring fewer items would change what n_items means
        return {"run": str(run.path), "skipped": f"{run.samples} holds {len(samples)} items, {RESULTS} "
                f"counts {n_items!r}{unchanged}; score it with task= predictions= (missing = wrong)"}
    scored = task.score([s.get("response") for s in samples], [{"answer": s.get("gold")} for s in samples])
    main = scored.main_metric
    for sample, extracted, scores in zip(samples, scored.extracted, scored.per_item):
        sample.update(extracted=extracted, scores=scores, main_score=scores.get(main))
    previous = {"main_metric": results.get("main_metric"), "main": results.get("main"),
                "metrics": results.get("metrics"), "task": described}
    results.update(main_metric=main, main=scored.metrics.get(main), metrics=scored.metrics,
                   task={**described, **{k: v for k, v in task.describe().items() if k in RULES}})
    results["rescored"] = {"at": datetime.now().isoformat(timespec="seconds"), "git": git_state(),
                           "previous": (results.get("rescored") or {}).get("previous", previous)}
    with run.lock():
        write_jsonl_atomic(run.samples, samples)
        write_json_atomic(run.results, results)
    return {"run": str(run.path), "main_metric": main, "before": previous["main"], "after": results["main"]}


def rescore(args: dict[str, str]) -> list[dict[str, Any]]:
    """Each finished run below the folder rescored, or skipped with the reason (a damaged
    folder is one skipped entry and a note, never the end of the others)."""
    report = []
    for run in finished_runs(Path(args["rescore"])):
        try:
            entry = rescore_run(run, args.get("tasks_dir"))
        except (AdaFuseError, OSError) as exc:
            entry = {"run": str(run.path), "skipped": f"{exc}; not rescored, nothing changed"}
        if "skipped" in entry:
            print(f"note: {printable(entry['run'])}: {printable(entry['skipped'])}", file=sys.stderr)
        report.append(entry)
    return report


def percent_text(metric: Optional[str], value: Any) -> str:
    """A metric's number on the 0-100 scale (the metric's own declared scale, from the registry)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{percent(metric, value):.1f}"


def report_lines(report: Any) -> list[str]:
    """The person's report: metrics on 0-100, main metric first."""
    if isinstance(report, list):  # rescore=
        lines = [f"{printable(e['run'])}: {e['main_metric']} {percent_text(e['main_metric'], e['before'])} -> "
                 f"{percent_text(e['main_metric'], e['after'])}" for e in report if "skipped" not in e]
        done = len(lines)
        return lines + [f"{done} of {len(report)} runs rescored; main metric before -> after, on 0-100"]
    main, metrics = report["main_metric"], report["metrics"]
    names = [main, *sorted(k for k in metrics if k != main)]
    width = max(map(len, names))
    lines = [f"{report['task']}: {report['n_items']} items scored"]
    lines += [f"  {name.ljust(width)}  {percent_text(name, metrics[name]):>5}" + ("  (main)" if name == main else "")
              for name in names]
    return lines + ["on 0-100 (fractions in percent, BLEU and chrF as sacrebleu reports them); "
                    "stdout: JSON, numbers as results.json stores them"]


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if cli.asks_help(argv):
        return cli.print_help(COMMAND)
    try:
        args = parse_args(argv)
        report: Any = rescore(args) if "rescore" in args else score_file(args)
    except (AdaFuseError, OSError) as e:
        return cli.error(e)
    if isinstance(report, dict) and report["n_without_prediction"]:
        n, p = report["n_predicted"] + report["n_without_prediction"], report["n_predicted"]
        how = ("left out (only_predicted=true)" if report["missing"] == "left out"
               else f"counted as wrong (only_predicted=true scores the {p} alone)")
        print(f"note: {p} of {n} items have a prediction; the other {n - p} are {how}", file=sys.stderr)
    for line in report_lines(report):
        print(line, file=sys.stderr)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
