"""The report in a real browser: headless Chromium loads it, draws every chart, logs no error,
fetches nothing but the file itself; a screenshot is saved beside the test's files. Its
charts are measured as laid out: no two texts overlap, no text sits on a point, no marker is
hidden under another, nothing is cut at a chart's edge."""

import pytest
from cdp import Chromium, find_chromium

from adafuse.compare.__main__ import main

CHROMIUM = find_chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")


# every chart's texts and markers (points, reference lines), as Chromium laid them out
GEOMETRY = """Array.from(document.querySelectorAll('svg.chart')).map(s => {
    const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const tip = e => { const t = e.querySelector('title'); return t ? t.textContent : e.outerHTML.slice(0, 80); };
    return {title: s.querySelector('text').childNodes[0].textContent, box: box(s),
            texts: Array.from(s.querySelectorAll('text')).filter(t => t.textContent.trim())
                        .map(t => [t.textContent, box(t)]),
            points: Array.from(s.querySelectorAll('.point')).map(e => [tip(e), box(e)]),
            markers: Array.from(s.querySelectorAll('.point, .ref')).map(e => [tip(e), box(e)])};
})"""


def intersect(a, b, slack=0.5) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def inside(a, b, slack=0.5) -> bool:
    return a[0] >= b[0] - slack and a[1] >= b[1] - slack and a[2] <= b[2] + slack and a[3] <= b[3] + slack


def layout_problems(charts: list[dict]) -> list[str]:
    """What a reader could not read: texts on each other or on a point, a marker whose box
    lies wholly inside another's (a series hidden under another), text cut at the chart's edge."""
    out = []
    for chart in charts:
        where = chart["title"]
        texts, points, markers = chart["texts"], chart["points"], chart["markers"]
        for i, (text, box) in enumerate(texts):
            if not inside(box, chart["box"]):
                out.append(f"{where}: {text!r} is cut at the chart's edge")
            out += [f"{where}: {text!r} overlaps {other!r}" for other, b in texts[i + 1:] if intersect(box, b)]
            out += [f"{where}: {text!r} sits on the point {tip!r}" for tip, b in points if intersect(box, b)]
        for i, (tip, box) in enumerate(markers):
            out += [f"{where}: {tip!r} is hidden under {other!r}"
                    for j, (other, b) in enumerate(markers) if j != i and inside(box, b)]
    return out


def test_the_report_renders_in_chromium(sweep, tmp_path, capsys):
    report = tmp_path / "report.html"
    assert main([str(sweep), "--html", str(report)]) == 0
    with Chromium(CHROMIUM, tmp_path / "profile") as page:
        page.open(report.as_uri())
        charts = page.evaluate("""Array.from(document.querySelectorAll('svg.chart')).map(s => {
            const box = s.getBoundingClientRect();
            return {width: box.width, height: box.height, marks: s.querySelectorAll('.point, .bar, .series').length};
        })""")
        rows = page.evaluate("document.querySelectorAll('table tr').length")
        geometry = page.evaluate(GEOMETRY)
        path_length = page.evaluate("document.querySelector('path.pareto').getTotalLength()")
        page.screenshot(tmp_path / "report.png")
        errors, requests = page.console_errors, page.requests
    assert len(charts) == 10
    assert all(c["width"] > 300 and c["height"] > 150 and c["marks"] > 0 for c in charts), charts
    assert rows > 20 and path_length > 0  # the grid and tables laid out; the front drawn
    assert errors == []
    assert layout_problems(geometry) == []
    assert requests == [report.as_uri()]
    png = (tmp_path / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_the_table1_report_in_chromium_shows_results_md_averages(tmp_path, capsys):
    """The committed Table-1 runs: what Chromium lays out in the report's grid is what RESULTS.md
    prints, both written here from the same runs."""
    from grid_views import extract_table1, markdown_grid

    from adafuse.compare.results import main as results_main

    root = extract_table1(tmp_path / "runs")
    out = tmp_path / "RESULTS.md"
    assert results_main([str(root), "--out", str(out), "--resamples", "20", "--no-png"]) == 0
    report = tmp_path / "results" / "report.html"
    with Chromium(CHROMIUM, tmp_path / "profile") as page:
        page.open(report.as_uri())
        shown = page.evaluate("""Array.from(document.querySelectorAll('#grid tr')).slice(1).map(tr => {
            const cells = tr.querySelectorAll('td');
            return [cells[0].innerText, cells[cells.length - 2].innerText, cells[cells.length - 1].innerText];
        })""")
        geometry = page.evaluate(GEOMETRY)
        page.screenshot(tmp_path / "table1.png")
        errors = page.console_errors
    assert errors == []
    assert layout_problems(geometry) == []  # 11 systems, 7 tasks: gsm8k's all score 0
    # the gain cell: the gain, its interval in small print below it (the best single: none)
    expected = markdown_grid(out.read_text(), intervals=True)
    assert {label.replace(" (best single)", ""): (avg, gain.replace("\n", " ")) for label, avg, gain in shown} == expected
    assert len(expected) == 11 and sum("[" in gain for _, gain in expected.values()) == 10
