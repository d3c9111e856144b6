"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

    page = render_report(runs, notes, pair=(run_a, run_b))
    Path("report.html").write_text(page)

Sections: the runs of each task; metric vs θ_Δ; metric vs cost with the Pareto front; the
Table-1 grid (tasks × systems, averages, gain over the best single model); span statistics;
per-item disagreements between two runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from adafuse.compare import svg
from adafuse.compare.bootstrap import LEVEL, Results, build_results
from adafuse.compare.disagree import Disagreement, Divergence, disagreements
from adafuse.compare.grid import (
    Grid,
    build_grid,
    fmt_gain,
    fmt_gain_interval,
    fmt_score,
    item_warnings,
    pick,
    scaled,
    system_label,
)
from adafuse.compare.load import Run, format_value
from adafuse.compare.table import COSTS, best, by_task, pareto_front, task_rows
from adafuse.decoder_catalog import setting_label

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto;
       max-width: 1400px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 18px; margin-top: 34px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; }
.meta, .how { color: #555; font-size: 13px; } .how { max-width: 900px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 9px; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
tr.best td { background: #eaf4e4; font-weight: 600; }
tr.single td { color: #444; } td.pos { color: #2b7a2b; } td.neg { color: #b03030; }
.sub { display: block; font-size: 11px; font-weight: normal; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; margin-bottom: 18px; }
.chart { background: #fff; border: 1px solid #eee; }
.notes li { font-size: 13px; color: #8a5a00; }
.item { border: 1px solid #e3e3e3; border-radius: 4px; padding: 8px 12px; margin: 10px 0; font-size: 13px; }
.item pre { white-space: pre-wrap; margin: 4px 0; font-size: 12px; background: #f8f8f8; padding: 4px 6px; }
.right { color: #2b7a2b; font-weight: 600; } .wrong { color: #b03030; font-weight: 600; }
.trace td { font-size: 12px; } code { background: #f3f3f3; padding: 0 3px; }
.trace td:first-child, .item p code { white-space: pre-wrap; }
"""


@dataclass
class Look:
    """How each system looks on the page: its colour, name and marker, the same in every chart
    (and its name the grid's). Keyed by `Run.system`."""

    colors: dict[str, str]
    labels: dict[str, str]
    order: dict[str, int]

    @classmethod
    def of(cls, runs: Sequence[Run], grid: Grid) -> Look:
        keys = [s.key for s in grid.systems] + sorted({r.system for r in runs} - {s.key for s in grid.systems})
        labels = {s.key: s.label for s in grid.systems}
        labels.update({r.system: system_label(r) for r in runs if r.system not in labels})
        return cls(svg.colors_for(keys), labels, {k: i for i, k in enumerate(keys)})

    @classmethod
    def of_tasks(cls, tasks: dict[str, list[Run]]) -> Look:
        runs = [r for group in tasks.values() for r in group]
        return cls.of(runs, build_grid(runs))

    def color(self, run: Run) -> str:
        return self.colors[run.system]

    def label(self, run: Run) -> str:
        return self.labels[run.system]

    def entries(self, runs: Sequence[Run], shape=None) -> list[svg.Entry]:
        """Legend lines for these runs' systems, in the grid's order."""
        return [svg.Entry(self.label(r), self.color(r), shape(r) if shape else ("square" if r.is_single else "circle"))
                for r in sorted(runs, key=lambda r: self.order[r.system])]


def one_per_system(runs: Sequence[Run]) -> list[Run]:
    """The run the grid shows for each system (pick's choice among reruns)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.system, []).append(run)
    return [pick(group) for group in groups.values()]


def render_report(runs: Sequence[Run], notes: Sequence[str] = (),
                  pair: tuple[Run, Run] | None = None, title: str = "AdaFuse runs compared",
                  results: Results | None = None) -> str:
    """The page; `results`: the grid with its bootstrap intervals when the caller has it."""
    tasks = by_task(runs)
    charted = {t: group for t, group in tasks.items() if t != "prompt"}  # prompt mode: no metrics
    grid = build_grid(runs)
    if results is None and grid.tasks:
        results = build_results(runs)
    look = Look.of(runs, grid)
    parts = [f"<h1>{escape(title)}</h1>",
             (f'<p class="meta">{len(runs)} runs, tasks: {escape(", ".join(tasks))}; '
              f'made {datetime.now():%Y-%m-%d %H:%M} by <code>python -m adafuse.compare</code></p>')]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    parts += [section_grid(results), section_theta(charted, look), section_cost(charted, look),
              section_spans(charted, look), section_runs(tasks), section_disagreements(pair)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(p for p in parts if p) + "</body></html>\n")


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = (),
               left: int = 0) -> str:
    """Cells are escaped here; the first `left` columns are left-aligned."""
    def cells(values, tag):
        return "".join(f'<{tag}{" class=l" if i < left else ""}>{escape(str(v))}</{tag}>'
                       for i, v in enumerate(values))

    body = "".join(f'<tr class="{classes[i] if i < len(classes) else ""}">{cells(r, "td")}</tr>'
                   for i, r in enumerate(rows))
    return f"<table><tr>{cells(header, 'th')}</tr>{body}</table>"


# --- sections --------------------------------------------------------------------------------


def section_runs(tasks: dict[str, list[Run]]) -> str:
    out = ["<h2>All runs</h2>",
           ('<p class="how">One table a task, sorted by its main metric; the best run is '
            "highlighted. n = items scored (finished/planned for a partial run); fwd/word = "
            "forwards of all models per word of the response. Metrics on a 0-100 scale, as in "
            "the grid.</p>")]
    for task, group in tasks.items():
        header, rows = task_rows(group)
        top = {id(r) for r in best(group)}
        out.append(f"<h3>{escape(task)}</h3>")
        out.append(html_table(header[1:], [r[1:] for r in rows],
                              ["best" if id(r) in top else "" for r in group], left=3))
        warnings = item_warnings(task, group) if task != "prompt" else []
        if warnings:
            out.append('<ul class="notes">' + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>")
    return "\n".join(out)


def line_key(run: Run) -> tuple:
    """Runs on one line of the θ_Δ chart: same decoder, model set and settings but θ_Δ."""
    rest = tuple((k, format_value(v)) for k, v in run.settings.items() if k != "theta_delta")
    return (run.decoder, run.model_set, rest)


def line_label(key: tuple, keys: list[tuple]) -> str:
    """What tells a line from the others: its decoder, model set and settings, each only
    where the lines differ in it."""
    decoder, model_set, rest = key
    parts = [decoder] if len({k[0] for k in keys}) > 1 else []
    others = [dict(k[2]) for k in keys]
    for name, value in rest:
        if len({o.get(name) for o in others}) > 1:
            parts.append(f"{setting_label(decoder, name)}={value}")
    if len({k[1] for k in keys}) > 1:
        parts.append(f"· {model_set}")
    return " ".join(parts) or f"{decoder} · {model_set}"


def section_theta(tasks: dict[str, list[Run]], look: Look | None = None) -> str:
    look = look or Look.of_tasks(tasks)
    charts = []
    for task, group in tasks.items():
        swept = [r for r in group if r.theta_delta is not None and r.main is not None and r.n_done]
        if not swept:
            continue
        lines: dict[tuple, list[Run]] = {}
        for run in swept:
            lines.setdefault(line_key(run), []).append(run)
        series, shown = [], []
        for key, runs in sorted(lines.items(), key=lambda kv: str(kv[0])):
            by_theta: dict[float, list[Run]] = {}
            for run in runs:
                by_theta.setdefault(run.theta_delta, []).append(run)
            members = [pick(by_theta[theta]) for theta in sorted(by_theta)]  # one run a θ_Δ
            shown += members
            series.append(svg.Series(line_label(key, list(lines)), [(r.theta_delta, scaled(r)) for r in members],
                                     [f"{look.label(r)} ({r.label}): θ_Δ={r.theta_delta:g}, "
                                      f"{r.main_metric}={fmt_score(scaled(r))}" for r in members],
                                     colors=[look.color(r) for r in members]))
        # runs without θ_Δ (single models, other decoders): flat reference lines
        flat = one_per_system([r for r in group if r.theta_delta is None and r.main is not None and r.n_done])
        for run in flat:
            series.append(svg.Series(look.label(run), [(0.0, scaled(run))],
                                     [f"{look.label(run)} ({run.label}): {run.main_metric}={fmt_score(scaled(run))}"],
                                     dashed=True, colors=[look.color(run)]))
        entries = look.entries(shown + flat, lambda r: "dashed" if r.theta_delta is None else "circle")
        charts.append(svg.line_chart(series, title=task, x_label="θ_Δ (confidence threshold on the margin)",
                                     y_label=f"{swept[0].main_metric or 'metric'} (0-100)", legend_entries=entries))
    if not charts:
        return ""
    return ("<h2>Metric vs θ_Δ</h2><p class=\"how\">Points: runs with a θ_Δ, joined by a grey line where "
            "only θ_Δ differs; dashed: each model alone, and other decoders. Each system has one colour "
            "on the whole page; marks at the same place are drawn a few pixels apart. θ_Δ = 0: every "
            "model always confident (long spans); θ_Δ = 1: always exploring B one-word proposals.</p>"
            + f'<div class="charts">{"".join(charts)}</div>')


def section_cost(tasks: dict[str, list[Run]], look: Look | None = None) -> str:
    look = look or Look.of_tasks(tasks)
    rows = []  # one row a task: its charts side by side
    for task, group in tasks.items():
        charts = []
        for axis, cost_of in COSTS.values():
            runs = one_per_system([r for r in group if r.main is not None and r.n_done and cost_of(r) is not None])
            if not runs:
                continue
            runs.sort(key=lambda r: look.order[r.system])
            points = [svg.Point(cost_of(r), scaled(r), look.label(r),
                                f"{look.label(r)} ({r.label}): {r.main_metric}={fmt_score(scaled(r))}, "
                                f"{axis}={cost_of(r):.3g}", look.color(r), r.is_single)
                      for r in runs]
            front = pareto_front([(p.x, p.y) for p in points])
            charts.append(svg.scatter_chart(points, front, title=f"{task}: {runs[0].main_metric} vs {axis}",
                                            x_label=f"{axis} (lower is cheaper)",
                                            y_label=f"{runs[0].main_metric or 'metric'} (0-100)",
                                            legend_entries=look.entries(runs)))
        if charts:
            rows.append(f'<div class="charts">{"".join(charts)}</div>')
    if not rows:
        return ""
    return ("<h2>Metric vs cost</h2><p class=\"how\">Each point a system (squares: one model alone), "
            "in its colour of the whole page; ringed points form the Pareto front (no other run is at "
            "least as good for less). A name is written beside its point where it has room, else in the "
            "legend and the hover text only. Seconds are decode time on the machine that ran it; "
            "forwards count every model call.</p>" + "".join(rows))


def section_grid(res: Results | None) -> str:
    if res is None or not res.tasks:
        return ""
    grid = res.grid
    header = ["system", *[f"{t}" for t in grid.tasks], "Avg", "gain vs best single"]
    subs = ["", *[grid.metrics[t] for t in grid.tasks], f"{len(grid.tasks)} tasks", f"{LEVEL}% interval"]
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{escape(h)}<span class="sub">{escape(s)}</span></th>'
                   for i, (h, s) in enumerate(zip(header, subs)))
    top_avg = max((s.average(grid.tasks) for s in grid.systems if s.covers(grid.tasks)), default=None)
    rows = []
    for system in grid.systems:
        cells = [f'<td class="l">{escape(system.label)}{" (best single)" if system is grid.best_single else ""}</td>']
        for task in grid.tasks:
            value, gain = system.value(task), grid.gain(system, task)
            top = max((s.value(task) for s in grid.systems if s.value(task) is not None), default=None)
            bold = ' style="font-weight:600"' if value is not None and value == top else ""
            small = [f"n={system.cells[task].run.n_done}"] if value is not None else []
            if gain is not None:
                small.append(fmt_gain_interval(gain, res.gain_interval(system, task)))
            cells.append(f"<td{bold}>{fmt_score(value)}"
                         + "".join(f'<span class="sub">{escape(t)}</span>' for t in small) + "</td>")
        avg = system.average(grid.tasks)
        partial = "" if system.covers(grid.tasks) else "*"
        cells.append(f'<td class="avg">{fmt_score(avg)}{partial}</td>')
        gain = grid.gain(system)
        klass = "" if gain is None else ("pos" if gain > 0 else "neg" if gain < 0 else "")
        interval = res.gain_interval(system) if gain is not None else None
        low_high = fmt_gain_interval(gain, interval)[len(fmt_gain(gain)):].strip()
        cells.append(f'<td class="{klass} gain">{fmt_gain(gain)}'
                     + (f'<span class="sub">{escape(low_high)}</span>' if low_high else "") + "</td>")
        best_row = avg is not None and avg == top_avg and not partial
        rows.append(f'<tr class="{"best" if best_row else "single" if system.single else ""}">{"".join(cells)}</tr>')
    notes = [*grid.notes]
    if any(not s.covers(grid.tasks) for s in grid.systems):
        notes.append("* average over the tasks the system was run on")
    return ("<h2>Systems × tasks (Table 1)</h2><p class=\"how\">Main metric of each task on a 0-100 "
            "scale (accuracy and exact match in percent, BLEU and chrF as sacrebleu reports them), the "
            "same grid as RESULTS.md and the terminal; single models first, then AdaFuse, its ablations "
            "and the baselines. Small print in a cell: n = items scored, then the relative gain over the "
            f"best single model on that task with its {LEVEL}% paired-bootstrap interval (only where both "
            "ran the same items); last column: the gain on the average over the tasks both ran, with its "
            "interval. Bold: best on the task; highlighted: best average.</p>"
            + f"<table id=\"grid\"><tr>{head}</tr>{''.join(rows)}</table>"
            + ('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>" if notes else ""))


SPAN_BINS = ("1 word", "2 words", "3 words", "4+ words")


def section_spans(tasks: dict[str, list[Run]], look: Look | None = None) -> str:
    look = look or Look.of_tasks(tasks)
    charts = []
    for task, group in tasks.items():
        runs = one_per_system([r for r in group if r.span_words and not r.is_single])  # one model: no rounds
        if not runs:
            continue
        runs.sort(key=lambda r: look.order[r.system])
        share_rows, span_rows = [], []
        for run in runs:
            label, shares = look.label(run), run.uncertain_shares
            if run.theta_delta is None or not shares:  # no margin gate: "uncertain" does not apply
                share_rows.append(svg.Bar(label, None, "", look.color(run), f"{label}: no θ_Δ, not applicable"))
            else:
                mean = sum(shares) / len(shares)
                share_rows.append(svg.Bar(label, [mean], f"{mean:.0%}", look.color(run)))
            spans = run.span_words
            counts = [sum(1 for w in spans if min(w, 4) == k) / len(spans) for k in (1, 2, 3, 4)]
            span_rows.append(svg.Bar(label, counts, f"mean {sum(spans) / len(spans):.2f}", look.color(run)))
        if any(row.values is not None for row in share_rows):
            charts.append(svg.bar_chart(share_rows, title=f"{task}: share of uncertain rounds",
                                        x_label="rounds in which some model's margin Δ1 < θ_Δ (mean over "
                                                "items); n/a: a decoder without θ_Δ", x_max=1.0))
        charts.append(svg.bar_chart(span_rows, title=f"{task}: words per committed span",
                                    x_label="share of committed spans (the square: the system's colour)",
                                    segments=SPAN_BINS, x_max=1.0))
    if not charts:
        return ""
    return ("<h2>Span statistics</h2><p class=\"how\">From the runs' samples: how often the ensemble "
            "explored, and how long the spans it committed were.</p>"
            + f'<div class="charts">{"".join(charts)}</div>')


# --- disagreements ---------------------------------------------------------------------------


def verdict(score: float | None) -> str:
    if score is None:
        return ""
    return '<span class="right">✓</span>' if score >= 1 else (
        '<span class="wrong">✗</span>' if score <= 0 else f"({score:.2f})")


def visible(text: str) -> str:
    """A span of text as the page shows it: quoted, newlines and tabs as ⏎ and →."""
    return "“" + str(text).replace("\n", "⏎").replace("\t", "→") + "”"


def proposers(p: dict, names: Sequence[str]) -> str:
    """Who proposed a span, by name (the record's names, else its indices into the models)."""
    named = p.get("proposer_names")
    if not named:
        named = [names[i] if isinstance(i, int) and 0 <= i < len(names) else f"model {i}"
                 for i in p.get("proposers") or []]
    return "+".join(map(str, named)) or "—"


def divergence_html(name: str, d: Divergence, names: Sequence[str]) -> str:
    if d.round is None:
        return f"<p>{escape(name)}: no trace (one model, no rounds)</p>"
    states = []
    for k, model in enumerate(names):
        margin = d.margins[k] if k < len(d.margins) else None
        explored = d.explored[k] if k < len(d.explored) else None
        what = "" if explored is None else (" explored" if explored else " confident")
        states.append(f"{model} Δ1 {'—' if margin is None else f'{margin:.2f}'}{what}")
    rows = [[visible(p.get("text", "")), proposers(p, names),
             *["—" if n is None else f"{n:.2f}" for n in (list(p.get("nll") or []) + [None] * len(names))[:len(names)]],
             "—" if p.get("score") is None else f"{p['score']:.3f}",
             "← committed" if p.get("text") == d.committed else ""] for p in d.proposals[:5]]
    header = ["proposal", "by", *[f"NLL {m}" for m in names], "score", ""]
    return (f"<p>{escape(name)}: round {d.round}, after <code>{escape(visible(d.prefix))}</code>; "
            f"{escape('; '.join(states))}</p>"
            + '<div class="trace">' + html_table(header, rows, left=2) + "</div>")


def item_html(d: Disagreement, runs: tuple[Run, Run]) -> str:
    gold = d.gold if not isinstance(d.gold, list) else " | ".join(map(str, d.gold[:6]))
    return (f'<div class="item"><b>item {escape(d.id)}</b><pre>{escape(d.question)}</pre>'
            f"<p>A: <code>{escape(d.answers[0])}</code> {verdict(d.scores[0])} &nbsp; "
            f"B: <code>{escape(d.answers[1])}</code> {verdict(d.scores[1])} &nbsp; "
            f"gold: <code>{escape(str(gold))}</code></p>"
            + divergence_html(f"A ({runs[0].label})", d.divergence[0], runs[0].model_names)
            + divergence_html(f"B ({runs[1].label})", d.divergence[1], runs[1].model_names) + "</div>")


def section_disagreements(pair: tuple[Run, Run] | None, limit: int = 30) -> str:
    if pair is None:
        return ""
    a, b = pair
    head = (f"<h2>Disagreements: A vs B</h2><p class=\"how\">A = {escape(system_label(a))} "
            f"(<code>{escape(a.label)}</code>), B = {escape(system_label(b))} (<code>{escape(b.label)}</code>), "
            f"task {escape(a.task)}. Items whose extracted answers differ, those where only one is right "
            "first. For each run: the round that committed the first character where the two "
            "responses part, each model's top-1 margin Δ1 there and whether it explored, and that "
            "round's proposals (by: the models that proposed it; NLL: each model's mean NLL of it; "
            "score: the ensemble's, lowest wins). ⏎ is a newline.</p>")
    if a.task != b.task:
        return head + f"<p>Not comparable: A is a {escape(a.task)} run, B a {escape(b.task)} run.</p>"
    items = disagreements(a, b)
    a_only = sum(1 for d in items if (d.scores[0] or 0) > (d.scores[1] or 0))
    b_only = sum(1 for d in items if (d.scores[1] or 0) > (d.scores[0] or 0))
    summary = (f"<p>{len(items)} of {len(a.samples)} items differ: only A right on {a_only}, "
               f"only B right on {b_only}.</p>")
    shown = "".join(item_html(d, (a, b)) for d in items[:limit])
    more = f"<p>… and {len(items) - limit} more.</p>" if len(items) > limit else ""
    return head + summary + shown + more
