"""RESULTS.md's Markdown: the grid with its intervals, AdaFuse against the best single model,
cost, provenance, and the reading in words a person writes (named by the grid's digest).

The numbers are those of bootstrap.Results, which are the grid's (grid.py): a cell prints as
`fmt_score` prints it in every view, followed by its interval.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from adafuse.compare.bootstrap import LEVEL, Results, average_replicates, build_results, percentile_interval
from adafuse.compare.facts import on_most_items, reading_facts
from adafuse.compare.grid import MISSING, fmt_gain, fmt_interval, fmt_score
from adafuse.compare.load import Run
from adafuse.compare.members import member_rows
from adafuse.compare.subsets import adafuse_differences, common_items


def fmt(value: float | None, digits: int = 1) -> str:
    return fmt_score(value) if digits == 1 else (MISSING if value is None else f"{value:.{digits}f}")




def pct(value: float | None, interval: tuple[float, float] | None = None) -> str:
    if value is None:
        return MISSING
    text = fmt_gain(value)
    return text + (f" [{interval[0] * 100:+.1f}, {interval[1] * 100:+.1f}]" if interval else "")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def grid_section(res: Results) -> str:
    header = ["system", *[f"{t}<br>{res.metrics[t]}" for t in res.tasks], "Average", "gain vs best single"]
    rows = []
    for s in res.systems:
        covered = s.tasks(res.tasks)
        avg = s.average(res.tasks)
        avg_text = fmt_interval(avg, percentile_interval(average_replicates(s, res.tasks)))
        if avg is not None and len(covered) < len(res.tasks):
            avg_text += f" ({len(covered)} of {len(res.tasks)} tasks)"
        name = f"**{s.label}**" if s is res.adafuse else s.label
        if s is res.best_single:
            name += " (best single)"
        rows.append([name, *[fmt_interval(s.value(t), s.cells[t].interval if t in s.cells else None)
                             + n_note(res, s, t) for t in res.tasks],
                     avg_text, pct(res.gain(s), res.gain_interval(s))])
    n_row = ["items", *[", ".join(sorted({str(s.cells[t].run.n_done) for s in res.systems if t in s.cells}))
                        for t in res.tasks], "", ""]
    return markdown_table(header, [*rows, n_row])


def n_note(res: Results, system, task: str) -> str:
    """` (n=100)` on a cell scored on fewer items than the most of its column."""
    cell = system.cells.get(task)
    return "" if cell is None or on_most_items(res, system, task) else f" (n={cell.run.n_done})"


def subsets_section(res: Results, runs: Sequence[Run]) -> str:
    """Every system of a task cut to the items all of them ran, against AdaFuse (subsets.py)."""
    cut, notes = common_items(runs)
    sub = build_results(cut, res.resamples, res.seed) if cut else None
    if sub is None or not sub.systems:
        return "\n".join(["_Every task's systems ran on the same items: the grid above pairs them all._",
                           *[f"- {note}" for note in notes]])
    diffs = adafuse_differences(sub)
    header = ["system − AdaFuse", *sub.tasks, "Average"]
    rows = [[d.system, *[fmt_interval(*d.per_task[t]) if t in d.per_task else MISSING for t in sub.tasks],
             fmt_interval(*d.average) + (f" ({len(d.per_task)} of {len(sub.tasks)} tasks)"
                                         if len(d.per_task) < len(sub.tasks) else "")]
            for d in diffs]
    parts = [grid_section(sub), ""]
    if rows:
        parts += [f"Each system minus AdaFuse on the same items [paired {LEVEL}% CI]; the average is over the "
                  "tasks both ran here.", "", markdown_table(header, rows)]
    return "\n".join(parts + [f"- {note}" for note in notes])


def adafuse_section(res: Results) -> str:
    a, b = res.adafuse, res.best_single
    if a is None or b is None:
        return "_No AdaFuse run at the paper's defaults, or no single-model run: nothing to compare._"
    rows = []
    for task in [*res.tasks, None]:
        if task and (a.value(task) is None or b.value(task) is None):
            continue
        if task is None:  # the average over the tasks both ran
            shared = res.shared_tasks(a)
            if not shared:  # no task run on the same items by both (a part still running)
                continue
            ours, theirs = a.average(shared), b.average(shared)
        else:
            ours, theirs = a.value(task), b.value(task)
        diff = res.paired_difference(a, task)
        interval = percentile_interval(diff)
        verdict = "—" if interval is None else ("excludes 0" if interval[0] > 0 or interval[1] < 0 else "contains 0")
        rows.append([task or "**Average**", fmt(ours), fmt(theirs),
                     fmt_interval(ours - theirs, interval), half_width(interval), verdict,
                     pct(res.gain(a, task), res.gain_interval(a, task))])
    return markdown_table(["task", a.label, f"{b.label} (best single)", "difference [paired 95% CI]",
                           "± (half-width)", "interval", "relative gain [95% CI]"], rows)


def half_width(interval: tuple[float, float] | None) -> str:
    return MISSING if interval is None else f"±{(interval[1] - interval[0]) / 2:.1f}"


def members_section(res: Results) -> str:
    """AdaFuse against each member and the better one, and the oracle (members.py)."""
    rows, notes = member_rows(res)
    if not rows:
        return "\n".join(["_No task where AdaFuse at the paper's defaults and every member alone ran on the same "
                          "items._", *[f"- {note}" for note in notes]])
    labels = list(rows[0].members)
    share = [MISSING if r.share is None else f"{r.share * 100:.0f}%" for r in rows]
    lines = [("n (items)", [str(r.n) for r in rows]),
             *[(m, [fmt(r.members[m]) for r in rows]) for m in labels],
             ("better member", [r.better for r in rows]),
             ("**AdaFuse**", [fmt(r.adafuse) for r in rows]),
             *[(f"AdaFuse − {m} [paired 95% CI]", [fmt_interval(*r.vs[m]) for r in rows]) for m in labels],
             ("AdaFuse − better member [paired 95% CI]", [fmt_interval(*r.vs_better) for r in rows]),
             ("± (half-width) against the better member", [half_width(r.vs_better[1]) for r in rows]),
             ("**oracle**: either member right [95% CI]", [fmt_interval(r.oracle, r.oracle_interval) for r in rows]),
             ("AdaFuse's share of the headroom", share)]
    header = ["", *[r.task or f"Average ({', '.join(r.tasks)})" for r in rows]]
    table = markdown_table(header, [[name, *cells] for name, cells in lines])
    return "\n".join([table, *([""] + [f"- {n}" for n in notes] if notes else [])])


def cost_section(res: Results) -> str:
    header = ["system", "s/item (all tasks)", "forwards/word", *[f"s/item {t}" for t in res.tasks], "decode hours"]
    rows = []
    for s in res.systems:
        seconds = [c.run.cost.get("decode_seconds") for c in s.cells.values()]
        hours = None if None in seconds else sum(seconds) / 3600
        rows.append([s.label, fmt(s.seconds_per_item(), 2), fmt(s.forwards_per_word(), 2),
                     *[fmt(s.cells[t].run.seconds_per_item, 2) if t in s.cells else "—" for t in res.tasks],
                     fmt(hours, 2)])
    return markdown_table(header, rows)


def wall_clock(runs: Sequence[Run]) -> str:
    """Decoding time summed over items (exact across sittings), and the earliest start and
    latest finish recorded (a run continued later records only its last sitting's)."""
    seconds = [r.cost.get("decode_seconds") for r in runs]
    known = [s for s in seconds if s is not None]
    decode = sum(known)
    starts, ends = [], []
    for run in runs:
        data = run.header
        for key, bucket in (("started", starts), ("finished", ends)):
            try:
                bucket.append(datetime.fromisoformat(str(data.get(key))))
            except ValueError:
                pass
    span = (f"; recorded from {min(starts):%Y-%m-%d %H:%M} to {max(ends):%Y-%m-%d %H:%M}"
            if starts and ends else "")
    missing = f" ({len(seconds) - len(known)} runs record no decode_seconds)" if len(known) < len(seconds) else ""
    return f"{decode / 3600:.2f} h of decoding summed over the {len(known)} runs' items{missing}{span}"


def prefix_note(runs: Sequence[Run]) -> str:
    """Where the few-shot prefix's prefill is counted: runs of older versions charged it to each
    job's first item; newer ones record it once per run as `cost.shared_prefix`."""
    recorded = sum(isinstance((r.header.get("cost") or {}).get("shared_prefix"), dict) for r in runs)
    if recorded == 0:
        return "each job's first item carries its few-shot prefill"
    once = "the few-shot prefix's prefill is counted once per run, in forwards, as cost.shared_prefix"
    if recorded == len(runs):
        return once
    return f"{once}, in {recorded} runs; in the other {len(runs) - recorded} each job's first item carries it"


def provenance(runs: Sequence[Run]) -> str:
    commits, versions = set(), set()
    for run in runs:
        data = run.header
        git = data.get("git") if isinstance(data.get("git"), dict) else {}
        commits.add(str(git.get("commit") or git.get("sha") or "?")[:12] + ("+dirty" if git.get("dirty") else ""))
        versions_of = data.get("versions") if isinstance(data.get("versions"), dict) else {}
        torch = versions_of.get("torch")
        if torch:
            versions.add(f"torch {torch}")
    return f"commit {', '.join(sorted(commits)) or '?'}; {', '.join(sorted(versions)) or 'versions unknown'}"


def grid_digest(grid: str) -> str:
    """A short name for the grid's numbers, which a reading written for them quotes."""
    return hashlib.sha256(grid.encode("utf-8")).hexdigest()[:12]


READING_HEADER = re.compile(r"\A\s*<!--\s*grid\s+([0-9a-f]+)\s*-->\s*\n?")


def reading_section(reading: str | None, digest: str, source: str) -> list[str]:
    """The person's reading, under a warning when it was written for other numbers."""
    if reading is None:
        return ["", (f"No reading in words yet: write it in `{source}`, its first line "
                     f"`<!-- grid {digest} -->` (the digest of the grid above), and rerun the command.")]
    header = READING_HEADER.match(reading)
    body = reading[header.end():] if header else reading
    parts = ["", "### In words", ""]
    if not header or header.group(1) != digest:
        written_for = f"grid {header.group(1)}" if header else "no named grid"
        parts += [(f"> **Stale:** this reading (`{source}`) was written for {written_for}, not for "
                   f"the numbers above (grid {digest}). Read the numbers, not these words."), ""]
    return parts + [body.strip()]


def render_markdown(res: Results, runs: Sequence[Run], roots: Sequence[Path], assets: dict[str, str],
                    command: str, reading: str | None = None, reading_source: str = "results/reading.md") -> str:
    models = sorted({run.model_set for run in runs if run.task != "prompt"})
    grid = grid_section(res)
    digest = grid_digest(grid)
    parts = [
        "# Results: Table 1 on the embedded pair",
        "",
        (f"Written by `{command}` on {datetime.now():%Y-%m-%d %H:%M} from {len(runs)} run folders under "
         f"{', '.join(f'`{p}`' for p in roots)} ({provenance(runs)}). Models: {', '.join(models) or '?'}. "
         "Do not edit by hand: rerun the command."),
        "",
        ("Each cell is the task's main metric on a 0-100 scale (accuracy and exact match in percent; "
         f"BLEU and chrF as sacrebleu reports them) with a {LEVEL}% percentile-bootstrap interval over "
         f"items ({res.resamples} resamples, seed {res.seed}; corpus metrics rescored as corpora). "
         "Average: the mean over tasks, its interval from resampling every task. Gain: relative to "
         f"the best single model ({res.best_single.label if res.best_single else 'none'}), on the "
         "average over the tasks both ran, with a paired interval."),
        "",
        "## Systems × tasks",
        "",
        grid,
        "",
        f"Grid digest: `{digest}` (a reading in words names the numbers it was written for by it).",
        "",
        "## AdaFuse against the best single model",
        "",
        adafuse_section(res),
        "",
        "## AdaFuse against its members, and the oracle",
        "",
        ("Each member alone, the better of the two on the task (on the average: the better average), "
         "AdaFuse's paired difference from each, and the oracle: an item counts as right when either "
         "member alone got it right, the ceiling of any rule that picks between the members' own "
         "answers (right/wrong tasks only). AdaFuse's share of the headroom is (AdaFuse − better "
         "member) / (oracle − better member); negative when AdaFuse is below the better member."),
        "",
        members_section(res),
        "",
        "## Baselines and ablations on their items",
        "",
        ("Where some systems of a task ran on fewer items than the others (the sized preset runs the "
         "baselines and ablations on the first items of each task only), every system of that task is "
         "cut to the items all of them finished and scored again there, so that each difference is "
         "paired: the grid of those items, then each system minus AdaFuse."),
        "",
        subsets_section(res, runs),
        "",
        "## Cost",
        "",
        (f"Seconds of decoding per item ({prefix_note(runs)}) and "
         "forwards of all models per word of the response, on the machine that ran them."),
        "",
        cost_section(res),
        "",
        f"Time: {wall_clock(runs)}.",
        "",
        "## Report and plot",
        "",
    ]
    if "html" in assets:
        parts.append(f"- The compare report (every run, the θ_Δ and cost charts, disagreements): [{assets['html']}]({assets['html']})")
    if "png" in assets:
        parts += ["- Main plot: average score against seconds per item, one point a system (those that ran the most tasks), the Pareto front ringed.",
                  "", f"![average score vs seconds per item]({assets['png']})"]
    for key in ("html_note", "png_note"):
        if key in assets:
            parts.append(f"- {assets[key]}")
    parts += ["", "## Reading the numbers", "",
              "Computed facts first; the reading in words after them is written by a person.", ""]
    parts += [f"- {fact}" for fact in reading_facts(res)] or ["- (no runs with metrics)"]
    parts += reading_section(reading, digest, reading_source)
    if res.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in res.notes]
    return "\n".join(parts) + "\n"
