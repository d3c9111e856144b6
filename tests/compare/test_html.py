import math
import pytest

from compare_helpers import make_run

from adafuse.compare import svg
from adafuse.compare.html import line_key, line_label, section_theta
from adafuse.compare.load import load_runs
from adafuse.compare.table import by_task


def test_theta_chart_one_line_a_setting_one_point_a_theta_and_single_models_dashed(tmp_path):
    make_run(tmp_path / "a", theta=0.3, max_words=2, main=0.2)
    make_run(tmp_path / "b", theta=0.3, max_words=2, main=0.4, n_items=8)  # a rerun with more items
    make_run(tmp_path / "c", theta=0.7, max_words=2, main=0.5)
    make_run(tmp_path / "d", theta=0.7, max_words=3, main=0.1)
    make_run(tmp_path / "g", decoder="greedy", theta=None, max_words=None, model_index=1, main=0.3)
    html = section_theta(by_task(load_runs([tmp_path])[0]))
    assert html.count('class="series"') == 2 and html.count('class="point"') == 3
    assert html.count('class="ref"') == 1 and ">gemma3-270m</text>" in html  # its legend line
    assert "/b): θ_Δ=0.3" in html and "/a): θ_Δ=0.3" not in html


def test_line_labels_name_only_what_differs(tmp_path):
    make_run(tmp_path / "a", max_words=2)
    make_run(tmp_path / "b", max_words=3, models=[{"name": "x"}, {"name": "y"}])
    make_run(tmp_path / "c", decoder="adafuse_b", max_words=3)  # another decoder with θ_Δ
    keys = [line_key(r) for r in sorted(load_runs([tmp_path])[0], key=lambda r: r.path.name)]
    assert [line_label(k, keys) for k in keys] == [
        "adafuse max_words=2 · smollm2-135m-instruct + gemma3-270m",
        "adafuse max_words=3 · x + y",
        "adafuse_b max_words=3 · smollm2-135m-instruct + gemma3-270m"]
    assert line_label(keys[0], keys[:1]) == "adafuse · smollm2-135m-instruct + gemma3-270m"


def test_ticks_are_round_and_cover_the_data():
    assert svg.nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert svg.nice_ticks(0.12, 0.55) == [0.0, 0.2, 0.4, 0.6]
    assert svg.nice_ticks(3.0, 3.0) == [2.6, 2.8, 3.0, 3.2, 3.4]  # one value: a band around it


def test_other_decoders_are_reference_lines_points_and_wandb_columns(tmp_path):
    from adafuse.compare.html import section_cost
    from adafuse.compare.grid import build_grid
    from adafuse.compare.wandb_table import grid_table, runs_table

    make_run(tmp_path / "a", theta=0.3, main=0.2)
    make_run(tmp_path / "f", decoder="fixed_span", theta=None, max_words=1, main=0.3)
    make_run(tmp_path / "u", decoder="union_topk", theta=None, max_words=None, main=0.1)
    runs = load_runs([tmp_path])[0]
    theta = section_theta(by_task(runs))
    assert theta.count('class="ref"') == 2 and "fixed_span k=1" in theta
    cost = section_cost(by_task(runs))
    assert "union_topk top_k=10" in cost and "fixed_span k=1" in cost
    columns, rows = grid_table(build_grid(runs))
    assert columns[columns.index("single_model") + 1:][:2] == ["span_words", "top_k"]
    by_system = {row[0].split(" ")[0]: row for row in rows}
    assert by_system["fixed_span"][columns.index("span_words")] == 1
    assert by_system["union_topk"][columns.index("top_k")] == 10
    assert by_system["AdaFuse"][columns.index("top_k")] is None
    assert "top_k" in runs_table(runs)[0]


def test_each_system_has_one_colour_on_the_whole_page(sweep):
    import re

    from adafuse.compare.html import render_report

    runs = load_runs([sweep])[0]
    page = render_report(runs)
    marks = re.findall(r'class="(?:point|ref)"[^>]*? (?:fill|stroke)="(#[0-9a-f]{6})"[^>]*><title>([^<(]+) \(', page)
    colours: dict[str, set[str]] = {}
    for colour, system in marks:
        colours.setdefault(system.strip(), set()).add(colour)
    assert len(colours) == 8  # 6 AdaFuse settings and the two models, each in θ and cost charts
    assert all(len(c) == 1 for c in colours.values()), colours
    assert len({c.pop() for c in colours.values()}) == 8  # and no two systems share one


def test_uncertain_rounds_are_na_not_zero_for_decoders_without_theta(tmp_path):
    from adafuse.compare.html import section_spans

    make_run(tmp_path / "a", theta=0.5, main=0.2)
    make_run(tmp_path / "f", decoder="fixed_span", theta=None, max_words=3, main=0.3)  # share 0.5 recorded
    charts = section_spans(by_task(load_runs([tmp_path])[0])).split("<svg")
    share = next(c for c in charts if "share of uncertain rounds" in c)
    assert share.count('class="bar"') == 1 and "AdaFuse θ_Δ=0.5" in share
    assert "fixed_span k=3" in share and ">n/a</text>" in share
    spans = next(c for c in charts if "words per committed span" in c)
    assert "fixed_span k=3" in spans and spans.count('class="bar"') == 8  # 4 segments a run


def test_the_html_grid_shows_items_and_the_terminal_gain_intervals(sweep):
    from html import escape

    from adafuse.compare.bootstrap import build_results
    from adafuse.compare.grid import grid_rows
    from adafuse.compare.html import section_grid

    res = build_results(load_runs([sweep])[0], resamples=50)
    page = section_grid(res)
    assert page.count('<span class="sub">n=4</span>') == 2 * 8  # every cell: 2 tasks, 8 systems
    _, rows = grid_rows(res.grid, res.gain_interval)
    for row in rows:
        gain, _, interval = row[-1].partition(" ")
        assert (f'{gain}<span class="sub">{escape(interval)}</span>' if interval else f">{gain}</td>") in page
    assert sum(" [" in row[-1] for row in rows) == 7  # all but the best single model


def test_labels_and_markers_are_kept_apart():
    from adafuse.compare.layout import overlap, place_labels, spread, spread_levels

    same = spread([(50.0, 50.0)] * 5 + [(200.0, 50.0)], 5)
    assert same[5] == (200.0, 50.0)  # alone: where it was
    assert all(math.dist(a, b) >= 5 for i, a in enumerate(same[:5]) for b in same[i + 1:5])
    assert spread_levels([10.0, 10.0, 10.5, 40.0], 3.0) == pytest.approx([7.1667, 10.1667, 13.1667, 40.0], abs=1e-3)
    points = [(100.0, 100.0), (104.0, 100.0), (100.0, 104.0), (300.0, 100.0)]
    obstacles = [(x - 6, y - 6, 12, 12) for x, y in points]
    boxes = place_labels([(x, y, 5, f"label {i}") for i, (x, y) in enumerate(points)], obstacles,
                         (0, 0, 320, 200))
    placed = [b for b in boxes if b]
    assert boxes[3] is not None and boxes[3][0] + boxes[3][2] <= 320  # at the edge: put to its left
    assert not any(overlap(a, b) for i, a in enumerate(placed) for b in placed[i + 1:])
    assert not any(overlap(a, o) for a in placed for o in obstacles)
