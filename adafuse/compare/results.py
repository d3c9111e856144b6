"""RESULTS.md from the run folders of a Table-1 experiment, each number with a bootstrap interval.

    python -m adafuse.compare.results runs/table1_embedded --out RESULTS.md

Its command line and what it writes: COMMAND below (`--help` prints them). The grid is
grid.py's, the one the terminal, the HTML report and W&B show, so their numbers agree;
bootstrap.py adds the intervals (how: its docstring), markdown.py writes the file, facts.py the
computed facts, plot.py the report and the PNG. This module is the command line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from adafuse import cli
from adafuse.compare.bootstrap import build_results, make_cell, percentile_interval
from adafuse.compare.load import load_runs
from adafuse.compare.markdown import render_markdown
from adafuse.compare.plot import find_chromium, write_assets

__all__ = ["build_results", "find_chromium", "main", "make_cell", "parse_args", "percentile_interval"]


COMMAND = cli.Command(
    prog="python -m adafuse.compare.results",
    summary="RESULTS.md from the run folders of a Table-1 experiment, each number with a bootstrap interval.",
    usage=("PATHS ... [--out FILE.md] [--assets DIR] [--resamples N] [--seed S] [--no-html] [--no-png] "
           "[--reading FILE.md]",),
    args=(
        cli.Arg("PATHS", "run folders, sweep folders or folders above them", type=Path, many=True),
        cli.Arg("--out FILE.md", "the Markdown file", default="RESULTS.md", type=Path),
        cli.Arg("--assets DIR", "where the report and the PNG go; default: results/ beside --out", type=Path),
        cli.Arg("--resamples N", "bootstrap resamples", default="1000", type=int),
        cli.Arg("--seed S", "bootstrap seed", default="0", type=int),
        cli.Arg("--no-html", "skip the compare report"),
        cli.Arg("--no-png", "skip the PNG of the main plot"),
        cli.Arg("--reading FILE.md", "the reading in words to include; default: reading.md in the assets "
                "folder, if any", type=Path),
    ),
    examples=(
        "runs/table1_embedded --out RESULTS.md",
        "runs/table1_embedded --out /tmp/smoke/RESULTS.md --resamples 200",
    ),
    notes="""\
Writes the Markdown file, and beside it (in `results/`, or --assets) the compare report's HTML
and a PNG of the main plot (average score against seconds per item, one point a system). What
it writes is computed from the runs' samples.jsonl and results.json only:

- the grid: systems × tasks, each task's main metric on a 0-100 scale (accuracy and exact match
  as percentages, BLEU and chrF as sacrebleu reports them), the average over tasks and the
  relative gain over the best single model, each number with a 95% percentile-bootstrap
  interval over items (fixed seed);
- AdaFuse (θ_Δ 0.7, max_words 3, B 3) against the best single model, task by task, with a
  paired interval of the difference and its half-width;
- AdaFuse against each member alone and the better one, and the oracle (an item right when
  either member alone got it right) with AdaFuse's share of that headroom (members.py);
- the baselines and ablations on their items: where some systems of a task ran on fewer items
  (the sized preset's), every run of that task cut to the items all of them finished, scored
  again there, and each system minus AdaFuse with a paired interval (subsets.py); the grid
  marks a cell scored on fewer items than its column with its n;
- cost: seconds per item and forwards per word;
- "Reading the numbers": facts only (which intervals overlap, which paired differences exclude
  zero), then the reading in words, which a person writes in `results/reading.md` (or
  --reading). That file's first line, `<!-- grid DIGEST -->`, names the numbers it was written
  for: RESULTS.md prints the digest of its grid, and a reading written for other numbers is
  shown under a warning that it is stale.""",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return cli.ArgumentParser.of(COMMAND).parse_args(argv)


def command_line(args: argparse.Namespace) -> str:
    """The command as RESULTS.md names it: the paths, --out, and every option that was not left
    at its default (they change what is written)."""
    defaults = parse_args(["."])
    parts = ["python", "-m", "adafuse.compare.results", *map(str, args.paths), "--out", str(args.out)]
    for key in ("assets", "resamples", "seed", "reading"):
        if getattr(args, key) != getattr(defaults, key):
            parts += [f"--{key}", str(getattr(args, key))]
    parts += [f"--{key.replace('_', '-')}" for key in ("no_html", "no_png") if getattr(args, key)]
    return " ".join(map(shlex.quote, parts))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resamples < 1:
        return cli.error("--resamples must be at least 1")
    if args.reading and not args.reading.is_file():
        return cli.error(f"--reading {args.reading}: no such file")
    if args.out.is_dir():
        return cli.error(f"--out {args.out}: is a folder; give a file name, e.g. RESULTS.md")
    runs, notes = load_runs(args.paths)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    runs = [r for r in runs if r.task != "prompt"]
    if not runs:
        return cli.error("no task runs to report")
    res = build_results(runs, args.resamples, args.seed)
    res.notes = [*notes, *res.notes]
    assets_dir = args.assets or args.out.parent / "results"
    reading_path = args.reading or assets_dir / "reading.md"
    reading = reading_path.read_text(encoding="utf-8") if reading_path.is_file() else None
    command = command_line(args)
    try:
        assets = write_assets(res, runs, notes, args.out, assets_dir, html=not args.no_html, png=not args.no_png)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        source = os.path.relpath(reading_path, args.out.parent)
        args.out.write_text(render_markdown(res, runs, args.paths, assets, command, reading, source), encoding="utf-8")
    except OSError as exc:
        return cli.error(f"cannot write {exc.filename or args.out} ({exc.strerror or type(exc).__name__})")
    print(f"wrote {args.out}" + "".join(f", {v}" for k, v in assets.items() if k in ("html", "png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
