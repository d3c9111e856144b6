"""Each metric declares its scale where it is registered (registry.py), and every report puts
numbers on 0-100 from that declaration, never from the metric's name."""

import subprocess
import sys

import pytest

from adafuse.tasks import get_task, list_tasks
from adafuse.tasks.metrics.registry import METRICS, SCALES, percent


def test_every_registered_metric_and_every_cards_main_metric_has_a_declared_scale():
    assert set(METRICS) <= set(SCALES) and set(SCALES.values()) == {1.0, 100.0}
    for name in list_tasks():
        main = get_task(name).main_metric
        assert main in SCALES, (name, main)
        # the offline fallback the FLORES cards report under (bleu_13a, chrf++) too
        assert SCALES[main] == (100.0 if name.startswith("flores") else 1.0)


@pytest.mark.parametrize(("metric", "value", "expected"), [
    ("gsm8k_accuracy", 0.25, 25.0), ("em_lenient_triviaqa", 1 / 3, 100 / 3), ("f1", 0.5, 50.0),
    ("spbleu", 17.5, 17.5), ("bleu_13a", 6.6, 6.6), ("chrf++_published", 40.0, 40.0),
    ("not_a_registered_metric", 0.5, 50.0),  # an older or foreign name: the default, a fraction
    (None, 0.5, 50.0)])
def test_percent_follows_the_declared_scale(metric, value, expected):
    assert percent(metric, value) == pytest.approx(expected)
    assert percent(metric, None) is None


def test_the_scale_is_never_guessed_from_the_name(monkeypatch):
    monkeypatch.setitem(SCALES, "bleurt_share", 1.0)  # declared a fraction though it says "bleu"
    monkeypatch.setitem(SCALES, "judge_points", 100.0)  # declared 0-100 though its name says nothing
    assert percent("bleurt_share", 0.4) == pytest.approx(40.0) and percent("judge_points", 40.0) == 40.0


def test_the_scale_must_be_1_or_100():
    from adafuse.tasks.metrics.registry import register_metric

    with pytest.raises(ValueError, match="scale must be 1 or 100"):
        register_metric("per_mille", scale=1000)


def test_the_registry_is_torch_free():
    code = "import sys, adafuse.tasks.metrics.registry as r; r.percent('spbleu', 1.0); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip() == "False"
