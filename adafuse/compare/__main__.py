"""Compare runs in the terminal, in an HTML report, or in W&B.

    python -m adafuse.compare runs/ --html report.html

Its command line, examples and notes: COMMAND below (`--help` prints them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adafuse import cli
from adafuse.compare.disagree import default_pair
from adafuse.compare.grid import build_grid
from adafuse.compare.load import Run, load_runs
from adafuse.compare.table import terminal_report
from adafuse.safe_read import quiet_on_closed_pipe, say


COMMAND = cli.Command(
    prog="python -m adafuse.compare",
    summary="Compare runs in the terminal, in an HTML report, or in W&B.",
    usage=("PATHS ... [--html OUT.html] [--pair A B] [--title TITLE] [--wandb [--wandb-dir DIR] [--project P]]",),
    args=(
        cli.Arg("PATHS", "run folders, sweep folders or folders above them", type=Path, many=True),
        cli.Arg("--html OUT.html", "write the report to this file", type=Path),
        cli.Arg("--pair A B", "the two runs whose per-item disagreements the report shows (folders, or the "
                "end of their paths); default: on the task with the most runs, its best ensemble run "
                "against its best single model"),
        cli.Arg("--title TITLE", "the report's title", default="AdaFuse runs compared"),
        cli.Arg("--wandb", "log the Table-1 grid and the runs as W&B tables"),
        cli.Arg("--wandb-dir DIR", "where W&B keeps its files", default="runs/compare", type=Path),
        cli.Arg("--project P", "the W&B project", default="adafuse"),
    ),
    examples=(
        "runs/triviaqa/2026-11-27_21-06-39 runs/triviaqa/2026-11-27_21-30-00",
        "runs/ --html report.html                           # every run below runs/",
        "runs/triviaqa --html r.html --pair <run A> <run B>",
        "runs/triviaqa --wandb                              # offline without a key",
    ),
    notes="""\
Folders that cannot be read (empty, interrupted before the first item, damaged) are left out
with a one-line note. Exit status 2 when no run could be read, a --pair run is not among them,
or the --html file cannot be written.""",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return cli.ArgumentParser.of(COMMAND).parse_args(argv)


def find_run(runs: list[Run], name: str) -> Run | None:
    """The run at folder `name`, or the only run whose path ends with it."""
    target = Path(name).resolve()
    exact = [r for r in runs if r.path.resolve() == target]
    if exact:
        return exact[0]
    suffix = [r for r in runs if str(r.path.resolve()).endswith(name.rstrip("/"))]
    return suffix[0] if len(suffix) == 1 else None


def write_report(path: Path, page: str) -> str | None:
    """Write the page; None, or why it could not be written (a folder, no permission, ...)."""
    if path.is_dir():
        return "is a folder; give a file name, e.g. report.html"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a folder's name of bytes that are not UTF-8 holds unpaired surrogates as Python reads
        # it (the files' text cannot: adafuse.safe_read refuses it): written as escapes
        path.write_text(page, encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        return f"cannot write it ({exc.strerror or type(exc).__name__})"
    return None


@quiet_on_closed_pipe
def main(argv: list[str] | None = None) -> int:
    """Every text printed may hold run-folder content (names, paths, answers): through `say`,
    its control characters escaped."""
    args = parse_args(argv)
    runs, notes = load_runs(args.paths)
    for note in notes:
        say(f"note: {note}", file=sys.stderr)
    if not runs:
        return cli.error("no runs to compare")
    results = None
    if build_grid(runs).tasks:  # the intervals once, for the terminal and the report
        from adafuse.compare.bootstrap import build_results

        results = build_results(runs)
    say(terminal_report(runs, results))
    if args.pair:
        pair = tuple(find_run(runs, name) for name in args.pair)
        missing = [name for name, run in zip(args.pair, pair) if run is None]
        if missing:
            return cli.error(f"--pair: no run (or several) at {', '.join(missing)}")
    else:
        pair = default_pair(runs)
    if args.html:
        from adafuse.compare.html import render_report

        problem = write_report(args.html, render_report(runs, notes, pair, title=args.title,
                                                               results=results))
        if problem:
            return cli.error(f"--html {args.html}: {problem}")
        say(f"\nreport: {args.html}")
    if args.wandb:
        from adafuse.compare.wandb_table import log_to_wandb

        say(log_to_wandb(runs, args.wandb_dir, project=args.project))
    return 0


if __name__ == "__main__":
    sys.exit(main())
