"""Reading the Table-1 grid back out of each view (RESULTS.md, the HTML report, the terminal),
so the tests can check that the views agree: {system label: (average, gain)} as printed."""

from __future__ import annotations

import html
import re
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TABLE1_TARBALL = REPO / "results" / "table1_embedded_runs.tar.gz"


def _label(text: str) -> str:
    return text.replace("**", "").replace(" (best single)", "").strip()


def markdown_grid(text: str, intervals: bool = False) -> dict[str, tuple[str, str]]:
    """{system: (average, gain)}; `intervals`: the gain with its interval, `-2.3% [-22.0, +22.3]`."""
    section = text.split("## Systems × tasks", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]  # header, rule
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        if cells[0] == "items":
            continue
        average = cells[-2].split(" [")[0].split(" (")[0]
        out[_label(cells[0])] = (average, cells[-1] if intervals else cells[-1].split(" [")[0])
    return out


def html_grid(page: str) -> dict[str, tuple[str, str]]:
    table = re.search(r'<table id="grid">(.*?)</table>', page, re.S).group(1)
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
        cells = [html.unescape(re.sub(r"<[^>]+>", "", re.sub(r'<span class="sub">.*?</span>', "", c)))
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out[_label(cells[0])] = (cells[-2].rstrip("*"), cells[-1])
    return out


def terminal_grid(text: str) -> dict[str, tuple[str, str]]:
    block = text.split("Table 1: systems × tasks", 1)[1].splitlines()[3:]
    out = {}
    for line in block:
        if not line.strip() or line.startswith("note:"):
            break
        parts = re.split(r"\s{2,}", line.strip())
        out[_label(parts[0])] = (parts[-2].rstrip("*"), parts[-1].split(" [")[0])
    return out


def extract_table1(into: Path) -> Path:
    """The committed Table-1 run folders, extracted below `into`."""
    with tarfile.open(TABLE1_TARBALL) as tar:
        tar.extractall(into, filter="data")
    return into / "table1_embedded"
