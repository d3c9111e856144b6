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
    assert html.count('class="ref"') == 1 and "greedy · gemma3-270m (single model)" in html
    assert "b: θ_Δ=0.3" in html and "a: θ_Δ=0.3" not in html


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
    assert theta.count('class="ref"') == 2 and "fixed_span span_words=1" in theta
    cost = section_cost(by_task(runs))
    assert "union_topk top_k=10" in cost and "fixed_span span_words=1" in cost
    columns, rows = grid_table(build_grid(runs))
    assert columns[columns.index("single_model") + 1:][:2] == ["span_words", "top_k"]
    by_system = {row[0].split(" ")[0]: row for row in rows}
    assert by_system["fixed_span"][columns.index("span_words")] == 1
    assert by_system["union_topk"][columns.index("top_k")] == 10
    assert by_system["AdaFuse"][columns.index("top_k")] is None
    assert "top_k" in runs_table(runs)[0]
