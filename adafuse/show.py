"""Read one run folder: its settings, its items, and round by round why the ensemble chose
what it chose.

    python -m adafuse.show RUN_DIR item=3

Its command line, examples and notes: COMMAND below (`--help` prints them).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from adafuse import cli
from adafuse.runfolder.checks import results_problem
from adafuse.tasks.metrics.registry import percent
from adafuse.tasks.partial import MEAN, SCORED, score_partial
from adafuse.compare.load import find_run_dirs, read_samples
from adafuse.errors import AdaFuseError
from adafuse.runfolder import RESULTS, SAMPLES, TRACE
from adafuse.safe_read import (TRACE_FIELDS, json_printable, quiet_on_closed_pipe, read_json_bounded,
                               read_records, say)
from adafuse.traceview import (WIDTH, clip, plural, render_round, round_view, short_names,
                               wrapped)

COMMAND = cli.Command(
    prog="python -m adafuse.show",
    summary="Read one run folder: its settings, its items, and round by round why the ensemble chose what "
            "it chose.",
    usage=("RUN_DIR [item=N] [round=K] [--json]",),
    args=(
        cli.Arg("RUN_DIR", "the run folder"),
        cli.Arg("item=N", "one item, by its index in the run: question, gold, response, rounds"),
        cli.Arg("round=K", "one round of that item only (needs item=)"),
        cli.Arg("--json", "the same content as JSON, for scripts"),
    ),
    examples=(
        "RUN_DIR                  # the header and one line an item",
        "RUN_DIR item=3           # the item: question, gold, response, rounds",
        "RUN_DIR item=3 round=1   # one round only",
        "RUN_DIR item=3 --json    # the same content as JSON, for scripts",
    ),
    notes="""\
Each round is a small table: every model's margins Δ and whether it explored, then every
proposal with its proposers by name, every model's mean NLL of it and the ensemble score (best
first, the winner marked `*`), near ties and boundary merges flagged. Works on the folders of
every decoder (greedy keeps no rounds: it says so), on runs stopped early, and on folders
written before samples and trace rows named their models (names then come from the config).
Files are read as plain JSON; bad input prints one line and exits with status 2.""",
)
USAGE = "usage: " + COMMAND.prog + " " + COMMAND.usage[0]


@dataclass
class Args:
    run_dir: Path
    item: Optional[int] = None
    round: Optional[int] = None
    as_json: bool = False


def parse_args(argv: list[str]) -> Args:
    paths, keys, as_json = [], {}, False
    for arg in argv:
        if arg in COMMAND.flags():  # --json
            as_json = True
        elif arg.partition("=")[0].isidentifier() and "=" in arg and not Path(arg).exists():
            # (a sweep job's folder, "3_theta_delta=0.5", is a path: it exists, its key is no name)
            key, _, value = arg.partition("=")
            if key not in COMMAND.keys():
                raise AdaFuseError(f"unknown argument {arg!r}; allowed: item=N, round=K, --json")
            try:
                keys[key] = int(value)
            except ValueError:
                raise AdaFuseError(f"{key}={value!r} is not an integer; {USAGE}") from None
        elif arg.startswith("-"):
            raise AdaFuseError(f"unknown option {arg!r}; allowed: --json, --help")
        else:
            paths.append(arg)
    if len(paths) != 1:
        raise AdaFuseError(f"give one run folder (got {len(paths)}); {USAGE}")
    if "round" in keys and "item" not in keys:
        raise AdaFuseError("round= needs item= (the rounds of which item?)")
    return Args(Path(paths[0]), keys.get("item"), keys.get("round"), as_json)


@dataclass
class RunFiles:
    path: Path
    results: dict
    samples: list[dict]
    trace: dict[str, list[dict]]  # rows by item id, in round order

    @property
    def config(self) -> dict:
        return self.results.get("config") or {}

    @property
    def decoder(self) -> dict:
        return self.config.get("decoder") or {}

    @property
    def names(self) -> list[str]:
        """The model set by name (alias, else the spec), in index order."""
        specs = self.config.get("models") or []
        return [str(s.get("alias") or s.get("name")) if isinstance(s, dict) else str(s) for s in specs]


def load(path: Path) -> RunFiles:
    if not path.is_dir():
        raise AdaFuseError(f"{path}: no such folder; give a run folder (it holds {RESULTS})")
    if not (path / RESULTS).is_file():
        below = [str(p.relative_to(path)) for p in find_run_dirs(path) if p != path]
        hint = (f"; run folders below it: {', '.join(below[:4])}{' ...' if len(below) > 4 else ''}"
                if below else " (or one stopped before its first item)")
        raise AdaFuseError(f"{path}: no {RESULTS}, so not a run folder{hint}")
    results = read_json_bounded(path / RESULTS)
    if not isinstance(results, dict):
        raise AdaFuseError(f"{path / RESULTS}: not a JSON object")
    problem = results_problem(results)
    if problem:
        raise AdaFuseError(f"{path / RESULTS}: {problem}; the run is not shown")
    trace: dict[str, list[dict]] = {}
    for row in read_records(path / TRACE, TRACE_FIELDS):
        trace.setdefault(str(row.get("id")), []).append(row)
    for rows in trace.values():
        rows.sort(key=lambda r: r.get("round", 0))
    return RunFiles(path, results, read_samples(path) if (path / SAMPLES).is_file() else [], trace)


# --- the content, as plain data (what --json prints) -----------------------------------------


def header(run: RunFiles) -> dict[str, Any]:
    results, task = run.results, run.results.get("task") or {}
    complete = results.get("status") == "complete"
    limit = (run.config.get("task") or {}).get("limit")
    planned = results.get("n_items") if complete else (limit if isinstance(limit, int) else None)
    main = results.get("main_metric") or task.get("main_metric")
    if complete:
        value, over = results.get("main"), "all items"
    else:  # as compare scores it (adafuse.tasks.partial)
        name = (run.config.get("task") or {}).get("name") or task.get("name") or "prompt"
        main, metrics, how = score_partial(name if isinstance(name, str) else "prompt", main, run.samples)
        value = metrics.get(main) if main else None
        n = len(run.samples)
        over = {SCORED: f"the task's metrics over the {n} finished items",
                MEAN: f"mean of the per-item scores of the {n} finished items"}.get(how, "no finished item has a score")
    names = run.names
    return {
        "run_dir": str(run.path),
        "status": "complete" if complete else f"partial ({results.get('status') or 'no status'})",
        "items_done": len(run.samples), "items_planned": planned,
        "task": {k: task.get(k) for k in ("name", "source", "stop", "max_new_tokens") if k in task},
        "metric": {"name": main, "value": value, "over": over} if main else None,
        "models": [{"name": n, "label": lbl} for n, lbl in zip(names, short_names(names))],
        "decoder": {k: v for k, v in run.decoder.items() if v is not None},
        "cost": {k: (results.get("cost") or {}).get(k) for k in
                 ("seconds_per_item", "forwards_per_item", "rounds", "words")} if complete else None,
    }


def _question(sample: dict) -> tuple[Optional[str], str]:
    """(text, where from): the sample's own `question`, or in an older folder the prompt's
    last block (a task's item text follows the shared prefix's blank line)."""
    if sample.get("question") is not None:
        return str(sample["question"]), "question"
    prompt = str(sample.get("prompt") or "")
    return (prompt.rsplit("\n\n", 1)[-1] or None), "prompt's last block"


def item_summary(sample: dict) -> dict[str, Any]:
    question, _ = _question(sample)
    return {"item": sample.get("index"), "id": sample.get("id"), "score": sample.get("main_score"),
            "rounds": sample.get("rounds"), "words": sample.get("words"),
            "question": question, "response": sample.get("response"), "gold": sample.get("gold")}


def find_sample(run: RunFiles, index: int) -> dict:
    for sample in run.samples:
        if sample.get("index") == index:
            return sample
    have = sorted(s.get("index") for s in run.samples if isinstance(s.get("index"), int))
    allowed = f"{have[0]}..{have[-1]}" if have == list(range(have[0], have[-1] + 1)) else (
        ", ".join(map(str, have[:20])) + (" ..." if len(have) > 20 else "")) if have else "none"
    raise AdaFuseError(f"item={index} is not among this run's finished items; items: {allowed}")


def item_detail(run: RunFiles, index: int, round_index: Optional[int]) -> dict[str, Any]:
    sample = find_sample(run, index)
    rows = run.trace.get(str(sample.get("id")), [])
    question, source = _question(sample)
    names = rows[0].get("models") if rows and rows[0].get("models") else run.names
    gated = run.decoder.get("name") != "fixed_span"
    if round_index is not None:
        picked = [r for r in rows if r.get("round") == round_index]
        if not picked:
            allowed = f"0..{len(rows) - 1}" if rows else "none (this item has no rounds)"
            raise AdaFuseError(f"round={round_index} is not a round of item {index}; rounds: {allowed}")
        rows = picked
    detail = {**item_summary(sample), "question": question, "question_from": source,
              "extracted": sample.get("extracted"), "finish_reason": sample.get("finish_reason"),
              "models": sample.get("models"),
              "rounds_detail": [round_view(r, names, gated) for r in rows]}
    if not rows:
        detail["no_rounds"] = _why_no_rounds(run)
    return detail


def _why_no_rounds(run: RunFiles) -> str:
    d = run.decoder
    if d.get("name") == "greedy" or len(run.names) == 1:
        index = d.get("model_index") or 0
        who = run.names[index] if index < len(run.names) else "one model"
        return f"no rounds: {d.get('name', 'this decoder')} decodes with {who} alone and keeps no trace"
    return f"no rounds: {TRACE} holds none for this item"


# --- as text ---------------------------------------------------------------------------------


def _gold(gold: Any) -> str:
    if isinstance(gold, list):
        return " | ".join(map(str, gold[:4])) + (f" | … ({len(gold)} in all)" if len(gold) > 4 else "")
    return "–" if gold is None else str(gold)


def render_header(h: dict) -> list[str]:
    planned = h["items_planned"] if h["items_planned"] is not None else "?"
    task = h["task"]
    lines = [f"{'run':<10}{h['run_dir']}",
             f"{'status':<10}{h['status']}: {h['items_done']} of {planned} items"
             + ("" if h["status"] == "complete" else " finished (stopped early or still running)"),
             f"{'task':<10}{task.get('name', '?')}"
             + (f" ({task['source']})" if task.get("source") else "")
             + (f", stop {task['stop']!r}" if task.get("stop") else "")
             + (f", max_new_tokens {task['max_new_tokens']}" if task.get("max_new_tokens") else "")]
    if h["metric"]:
        m = h["metric"]
        # on the 0-100 scale compare and score print (the metric's declared scale); --json: as stored
        value = f"{percent(m['name'], m['value']):.1f}" if isinstance(m["value"], (int, float)) else "–"
        lines.append(f"{'metric':<10}{m['name']} = {value} on 0-100 ({m['over']})")
    models = ", ".join(m["label"] if m["label"] == m["name"] else f"{m['label']} = {m['name']}"
                       for m in h["models"])
    lines.append(clip(f"{'models':<10}{models}", WIDTH))
    d = dict(h["decoder"])
    name = d.pop("name", "?")
    lines.append(clip(f"{'decoder':<10}{name}: " + ", ".join(f"{k}={v}" for k, v in d.items()), WIDTH))
    if h["cost"]:
        c = h["cost"]
        lines.append(f"{'cost':<10}{c['seconds_per_item']} s/item, {c['forwards_per_item']} "
                     f"forwards/item, {c['rounds']} rounds, {c['words']} words in all")
    return lines


def _score(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else "–"


def render_items(items: list[dict]) -> list[str]:
    lines = [f"{'item':>4} {'score':>5} {'rounds':>6}  {'question':<34}  {'response':<28}  gold"]
    for it in items:
        gold = it["gold"][0] if isinstance(it["gold"], list) and it["gold"] else it["gold"]
        question = " ".join(str(it["question"] or "").split())
        lines.append(f"{it['item']!s:>4} {_score(it['score']):>5} {it['rounds']!s:>6}  "
                     f"{clip(question, 34):<34}  {clip(repr(it['response']), 28):<28}  "
                     f"{clip('–' if gold is None else str(gold), 15)}")
    return lines


def render_item(d: dict) -> list[str]:
    lines = [f"item {d['item']} · id {d['id']} · score {_score(d['score'])} · "
             f"{plural(d['rounds'] or 0, 'round')}, {plural(d['words'] or 0, 'word')} · "
             f"finished by {d['finish_reason']}"]
    if d["question_from"] == "question":
        lines += wrapped("question", d["question"] or "–")
    else:  # an older folder: the prompt's end
        lines += wrapped("prompt", "…" + (d["question"] or ""))
    lines += wrapped("gold", _gold(d["gold"]), max_lines=3)
    lines += wrapped("response", repr(d["response"]))
    lines += wrapped("extracted", repr(d["extracted"]), max_lines=3)
    if d.get("no_rounds"):
        return lines + ["", d["no_rounds"]]
    for view in d["rounds_detail"]:
        lines += [""] + render_round(view)
    return lines


def show(args: Args) -> tuple[dict, list[str]]:
    """(content, lines): what --json prints, and the text."""
    run = load(args.run_dir)
    h = header(run)
    lines = render_header(h) + [""]
    if args.item is None:
        items = [item_summary(s) for s in run.samples]
        if not items:
            lines.append("no finished items yet")
        else:
            lines += render_items(items) + ["", "one item, round by round: python -m adafuse.show "
                                                "RUN_DIR item=N"]
        return {"run": h, "items": items}, lines
    detail = item_detail(run, args.item, args.round)
    return {"run": h, "item": detail}, lines + render_item(detail)


@quiet_on_closed_pipe
def main(argv: Optional[list[str]] = None) -> int:
    """What it prints holds run-folder text: control characters are escaped (`say`)."""
    argv = sys.argv[1:] if argv is None else argv
    if cli.asks_help(argv):
        return cli.print_help(COMMAND)
    try:
        args = parse_args(argv)
        content, lines = show(args)
    except AdaFuseError as exc:
        return cli.error(exc)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        # a field of a type the checks above let through: the folder, not this command, is odd
        return cli.error(f"{argv}: a file of this run folder holds a value of another type than "
                         f"adafuse.run writes ({type(exc).__name__}: {exc}); the run is not shown")
    if args.as_json:
        print(json_printable(json.dumps(content, ensure_ascii=False, indent=1)))
    else:
        say("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
