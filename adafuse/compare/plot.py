"""RESULTS.md's files beside it: the compare report (html.py) and the main plot (average score
against seconds per item, one point a system) as a PNG, drawn by headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from adafuse.compare.bootstrap import Results
from adafuse.compare.load import Run
from adafuse.compare.table import pareto_front

PLOT_SIZE = (900, 500)  # the main plot's drawing area, pixels


def main_plot_svg(res: Results) -> str | None:
    from adafuse.compare import svg

    # averages over different task sets do not compare: only the systems that ran the most tasks
    most = max((len(s.tasks(res.tasks)) for s in res.systems), default=0)
    points, entries = [], []
    colors = svg.colors_for([s.key for s in res.systems])  # the report's colours (html.Look)
    for s in res.systems:
        if len(s.tasks(res.tasks)) < most:
            continue
        avg, cost = s.average(res.tasks), s.seconds_per_item()
        if avg is None or cost is None:
            continue
        points.append(svg.Point(cost, avg, s.label, f"{s.label}: {avg:.1f}, {cost:.2f} s/item",
                                colors[s.key], s.single))
        entries.append(svg.Entry(s.label, colors[s.key], "square" if s.single else "circle"))
    if not points:
        return None
    front = pareto_front([(p.x, p.y) for p in points])
    return svg.scatter_chart(points, front, title=f"Average over {most} tasks vs cost",
                             x_label="seconds per item (all tasks)", y_label="average score (0-100)",
                             legend_entries=entries, width=PLOT_SIZE[0], height=PLOT_SIZE[1])


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome",
                                                "google-chrome-stable")) if p), None)


def screenshot(html: Path, png: Path, width: int, height: int, timeout: float = 120) -> str | None:
    """Headless Chromium's screenshot of a page; an error message, or None when it worked."""
    binary = find_chromium()
    if binary is None:
        return "Chromium is not installed"
    png.unlink(missing_ok=True)
    try:
        subprocess.run([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--no-first-run", f"--user-data-dir={png.parent / '.chromium'}",
                        f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri()],
                       capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Chromium failed ({type(exc).__name__})"
    finally:
        shutil.rmtree(png.parent / ".chromium", ignore_errors=True)
    return None if png.is_file() and png.stat().st_size else "Chromium wrote no screenshot"


def write_assets(res: Results, runs: Sequence[Run], notes: Sequence[str], out: Path, assets: Path,
                 html: bool = True, png: bool = True) -> dict[str, str]:
    """The compare report and the main plot's PNG in `assets`; links relative to `out`."""
    written: dict[str, str] = {}
    assets.mkdir(parents=True, exist_ok=True)

    def link(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), out.resolve().parent)).as_posix()

    if html:
        from adafuse.compare.disagree import default_pair
        from adafuse.compare.html import render_report

        report = assets / "report.html"
        report.write_text(render_report(runs, notes, default_pair(runs), title="Table 1 on the embedded pair",
                                         results=res),
                          encoding="utf-8")
        written["html"] = link(report)
    if png:
        chart = main_plot_svg(res)
        if chart is None:
            written["png_note"] = "No main plot: no system has both an average and a cost."
        else:
            page = assets / "main_plot.html"
            page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:8px;'
                            f'background:#fff}}</style></head><body>{chart}</body></html>\n', encoding="utf-8")
            image = assets / "main_plot.png"
            # the legend hangs below the plot area: the svg's own height holds it
            height = int(re.search(r'height="(\d+)"', chart).group(1))
            problem = screenshot(page, image, PLOT_SIZE[0] + 20, height + 30)
            if problem:
                written["png_note"] = (f"No PNG of the main plot: {problem}; the chart is in "
                                       f"[{link(page)}]({link(page)}).")
            else:
                page.unlink()
                written["png"] = link(image)
    return written
