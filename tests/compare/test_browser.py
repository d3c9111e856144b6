"""The report in a real browser: headless Chromium loads it, draws every chart, logs no error,
fetches nothing but the file itself; a screenshot is saved beside the test's files."""

import pytest
from cdp import Chromium, find_chromium

from adafuse.compare.__main__ import main

CHROMIUM = find_chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")


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
        path_length = page.evaluate("document.querySelector('path.pareto').getTotalLength()")
        page.screenshot(tmp_path / "report.png")
        errors, requests = page.console_errors, page.requests
    assert len(charts) == 10
    assert all(c["width"] > 300 and c["height"] > 150 and c["marks"] > 0 for c in charts), charts
    assert rows > 20 and path_length > 0  # the grid and tables laid out; the front drawn
    assert errors == []
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
        page.screenshot(tmp_path / "table1.png")
        errors = page.console_errors
    assert errors == []
    expected = markdown_grid(out.read_text())
    assert {label.replace(" (best single)", ""): (avg, gain) for label, avg, gain in shown} == expected
    assert len(expected) == 11
