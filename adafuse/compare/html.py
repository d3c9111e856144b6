"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

    page = render_report(runs, notes, pair=(run_a, run_b))
    Path("report.html").write_text(page)

Sections: the runs of each task; metric vs θ_Δ; metric vs cost with the Pareto front; the
Table-1 grid (tasks × systems, averages, gain over the best single model); span statistics;
per-item disagreements between two runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from adafuse.compare import svg
from adafuse.compare.disagree import Disagreement, Divergence, disagreements
from adafuse.compare.grid import build_grid, fmt_gain, fmt_score, item_warnings, pick, scaled
from adafuse.compare.load import Run, format_value
from adafuse.compare.table import COSTS, best, by_task, pareto_front, task_rows
from adafuse.decoding.registry import setting_label

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
"""


def render_report(runs: Sequence[Run], notes: Sequence[str] = (),
                  pair: tuple[Run, Run] | None = None, title: str = "AdaFuse runs compared") -> str:
    tasks = by_task(runs)
    charted = {t: group for t, group in tasks.items() if t != "prompt"}  # prompt mode: no metrics
    parts = [f"<h1>{escape(title)}</h1>",
             (f'<p class="meta">{len(runs)} runs, tasks: {escape(", ".join(tasks))}; '
              f'made {datetime.now():%Y-%m-%d %H:%M} by <code>python -m adafuse.compare</code></p>')]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    parts += [section_grid(runs), section_theta(charted), section_cost(charted), section_spans(charted),
              section_runs(tasks), section_disagreements(pair)]
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


def section_theta(tasks: dict[str, list[Run]]) -> str:
    charts = []
    for task, group in tasks.items():
        swept = [r for r in group if r.theta_delta is not None and r.main is not None and r.n_done]
        if not swept:
            continue
        lines: dict[tuple, list[Run]] = {}
        for run in swept:
            lines.setdefault(line_key(run), []).append(run)
        series = []
        for key, runs in sorted(lines.items(), key=lambda kv: str(kv[0])):
            by_theta: dict[float, list[Run]] = {}
            for run in runs:
                by_theta.setdefault(run.theta_delta, []).append(run)
            members = [pick(by_theta[theta]) for theta in sorted(by_theta)]  # one run a θ_Δ
            series.append(svg.Series(line_label(key, list(lines)), [(r.theta_delta, scaled(r)) for r in members],
                                     [f"{r.label}: θ_Δ={r.theta_delta:g}, {r.main_metric}={fmt_score(scaled(r))}"
                                      for r in members]))
        # runs without θ_Δ (single models, other decoders): flat reference lines
        for run in [r for r in group if r.theta_delta is None and r.main is not None and r.n_done]:
            label = f"{run.decoder} · {point_label(run)} (single model)" if run.is_single else point_label(run)
            series.append(svg.Series(label, [(0.0, scaled(run))],
                                     [f"{run.label}: {run.main_metric}={fmt_score(scaled(run))}"],
                                     dashed=True))
        charts.append(svg.line_chart(series, title=task, x_label="θ_Δ (confidence threshold on the margin)",
                                     y_label=f"{swept[0].main_metric or 'metric'} (0-100)"))
    if not charts:
        return ""
    return ("<h2>Metric vs θ_Δ</h2><p class=\"how\">One line per max_words (and model set); dashed: "
            "each model alone, and other decoders. θ_Δ = 0: every model always confident (long spans); θ_Δ = 1: always "
            "exploring B one-word proposals.</p>" + f'<div class="charts">{"".join(charts)}</div>')


def point_label(run: Run) -> str:
    if run.is_single:
        return run.models[0] if run.models else run.decoder
    if run.theta_delta is not None:
        extra = f" w{run.max_words}" if run.max_words is not None else ""
        return f"θ{run.theta_delta:g}{extra}"
    return " ".join([run.decoder] + [f"{k}={format_value(v)}" for k, v in run.settings.items()])


def section_cost(tasks: dict[str, list[Run]]) -> str:
    rows = []  # one row a task: its charts side by side
    for task, group in tasks.items():
        charts = []
        for axis, cost_of in COSTS.values():
            runs = [r for r in group if r.main is not None and r.n_done and cost_of(r) is not None]
            if not runs:
                continue
            decoders = sorted({r.decoder for r in runs})
            points = [svg.Point(cost_of(r), scaled(r), point_label(r),
                                f"{r.system}\n{r.label}: {r.main_metric}={fmt_score(scaled(r))}, "
                                f"{axis}={cost_of(r):.3g}", decoders.index(r.decoder), r.is_single)
                      for r in runs]
            front = pareto_front([(p.x, p.y) for p in points])
            charts.append(svg.scatter_chart(points, front, title=f"{task}: {runs[0].main_metric} vs {axis}",
                                            x_label=f"{axis} (lower is cheaper)",
                                            y_label=f"{runs[0].main_metric or 'metric'} (0-100)",
                                            groups=[f"{d} (square: one model)" if d == "greedy" else d
                                                    for d in decoders]))
        if charts:
            rows.append(f'<div class="charts">{"".join(charts)}</div>')
    if not rows:
        return ""
    return ("<h2>Metric vs cost</h2><p class=\"how\">Each point a run; ringed points form the Pareto "
            "front (no other run is at least as good for less). Seconds are decode time on the "
            "machine that ran it; forwards count every model call.</p>"
            + "".join(rows))


def section_grid(runs: Sequence[Run]) -> str:
    grid = build_grid(runs)
    if not grid.tasks:
        return ""
    header = ["system", *[f"{t}" for t in grid.tasks], "Avg", "gain vs best single"]
    subs = ["", *[grid.metrics[t] for t in grid.tasks], f"{len(grid.tasks)} tasks", ""]
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
            note = f'<span class="sub">{fmt_gain(gain)}</span>' if gain is not None else ""
            cells.append(f"<td{bold}>{fmt_score(value)}{note}</td>")
        avg = system.average(grid.tasks)
        partial = "" if system.covers(grid.tasks) else "*"
        cells.append(f'<td class="avg">{fmt_score(avg)}{partial}</td>')
        gain = grid.gain(system)
        klass = "" if gain is None else ("pos" if gain > 0 else "neg" if gain < 0 else "")
        cells.append(f'<td class="{klass} gain">{fmt_gain(gain)}</td>')
        best_row = avg is not None and avg == top_avg and not partial
        rows.append(f'<tr class="{"best" if best_row else "single" if system.single else ""}">{"".join(cells)}</tr>')
    notes = [*grid.notes]
    if any(not s.covers(grid.tasks) for s in grid.systems):
        notes.append("* average over the tasks the system was run on")
    return ("<h2>Systems × tasks (Table 1)</h2><p class=\"how\">Main metric of each task on a 0-100 "
            "scale (accuracy and exact match in percent, BLEU and chrF as sacrebleu reports them), the "
            "same grid as RESULTS.md; single models first, then AdaFuse, its ablations and the "
            "baselines. Small print in a cell and the last column: "
            "relative gain over the best single model (on that task; on the average over shared tasks). "
            "Bold: best on the task; highlighted: best average.</p>"
            + f"<table id=\"grid\"><tr>{head}</tr>{''.join(rows)}</table>"
            + ('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>" if notes else ""))


SPAN_BINS = ("1 word", "2 words", "3 words", "4+ words")


def section_spans(tasks: dict[str, list[Run]]) -> str:
    charts = []
    for task, group in tasks.items():
        runs = [r for r in group if r.span_words and not r.is_single]  # one model: no rounds
        if not runs:
            continue
        runs.sort(key=lambda r: (r.decoder, r.theta_delta if r.theta_delta is not None else -1,
                                 r.max_words or 0, r.label))
        share_rows, span_rows = [], []
        for run in runs:
            label = f"{point_label(run)} · {run.decoder}"
            shares = run.uncertain_shares
            if shares:
                mean = sum(shares) / len(shares)
                share_rows.append((label, [mean], f"{mean:.0%}"))
            spans = run.span_words
            counts = [sum(1 for w in spans if min(w, 4) == k) / len(spans) for k in (1, 2, 3, 4)]
            span_rows.append((label, counts, f"mean {sum(spans) / len(spans):.2f}"))
        if share_rows:
            charts.append(svg.bar_chart(share_rows, title=f"{task}: share of uncertain rounds",
                                        x_label="rounds in which some model's margin Δ1 < θ_Δ (mean over items)",
                                        x_max=1.0))
        charts.append(svg.bar_chart(span_rows, title=f"{task}: words per committed span",
                                    x_label="share of committed spans", segments=SPAN_BINS, x_max=1.0))
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


def divergence_html(name: str, d: Divergence) -> str:
    if d.round is None:
        return f"<p>{escape(name)}: no trace (one model, no rounds)</p>"
    margins = ", ".join("—" if m is None else f"{m:.2f}" for m in d.margins)
    rows = [[repr(p.get("text")), ",".join(str(i) for i in p.get("proposers") or []),
             " ".join("—" if n is None else f"{n:.2f}" for n in p.get("nll") or []),
             "—" if p.get("score") is None else f"{p['score']:.3f}",
             "← committed" if p.get("text") == d.committed else ""] for p in d.proposals[:5]]
    return (f"<p>{escape(name)}: round {d.round}, after <code>{escape(repr(d.prefix))}</code>; "
            f"margins Δ1 per model: {margins}; explored: {escape(str(d.explored))}</p>"
            + '<div class="trace">' + html_table(["proposal", "by", "NLL per model", "score", ""], rows, left=1)
            + "</div>")


def item_html(d: Disagreement, names: tuple[str, str]) -> str:
    gold = d.gold if not isinstance(d.gold, list) else " | ".join(map(str, d.gold[:6]))
    return (f'<div class="item"><b>item {escape(d.id)}</b><pre>{escape(d.question)}</pre>'
            f"<p>A: <code>{escape(d.answers[0])}</code> {verdict(d.scores[0])} &nbsp; "
            f"B: <code>{escape(d.answers[1])}</code> {verdict(d.scores[1])} &nbsp; "
            f"gold: <code>{escape(str(gold))}</code></p>"
            + divergence_html(f"A ({names[0]})", d.divergence[0])
            + divergence_html(f"B ({names[1]})", d.divergence[1]) + "</div>")


def model_key(run: Run) -> str:
    return ", ".join(f"{i} = {name}" for i, name in enumerate(run.model_names))


def section_disagreements(pair: tuple[Run, Run] | None, limit: int = 30) -> str:
    if pair is None:
        return ""
    a, b = pair
    head = (f"<h2>Disagreements: A vs B</h2><p class=\"how\">A = {escape(a.system)} "
            f"(<code>{escape(a.label)}</code>), B = {escape(b.system)} (<code>{escape(b.label)}</code>), "
            f"task {escape(a.task)}. Items whose extracted answers differ, those where only one is right "
            "first. For each run: the round that committed the first character where the two "
            "responses part, with that round's proposals (by: proposing models, "
            f"{escape(model_key(a))}; score: the ensemble's mean NLL, lowest wins).</p>")
    if a.task != b.task:
        return head + f"<p>Not comparable: A is a {escape(a.task)} run, B a {escape(b.task)} run.</p>"
    items = disagreements(a, b)
    a_only = sum(1 for d in items if (d.scores[0] or 0) > (d.scores[1] or 0))
    b_only = sum(1 for d in items if (d.scores[1] or 0) > (d.scores[0] or 0))
    summary = (f"<p>{len(items)} of {len(a.samples)} items differ: only A right on {a_only}, "
               f"only B right on {b_only}.</p>")
    shown = "".join(item_html(d, (a.label, b.label)) for d in items[:limit])
    more = f"<p>… and {len(items) - limit} more.</p>" if len(items) > limit else ""
    return head + summary + shown + more
