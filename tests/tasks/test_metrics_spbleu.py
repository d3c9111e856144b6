"""spbleu / spbleu_published, and the named chrF++ / BLEU-13a fallback when offline."""

import logging
import unicodedata

import pytest
import sacrebleu

from adafuse.tasks.metrics import get_metric

REFS = ["Der Hund schläft im Garten.", "Wir haben jetzt vier Monate alte Mäuse."]


def test_offline_falls_back_under_other_names(offline_spm, caplog):
    golds = [[r] for r in REFS]
    with caplog.at_level(logging.WARNING):
        out = get_metric("spbleu")(REFS, golds)
        get_metric("spbleu")(REFS, golds)
    assert set(out.aggregate) == {"chrf++", "bleu_13a"}  # never under "spbleu"
    assert out.aggregate["bleu_13a"] == pytest.approx(100.0)
    assert out.aggregate["chrf++"] == pytest.approx(100.0)
    warnings = [r for r in caplog.records if "spBLEU unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()


def test_offline_published_drops_empty_predictions(offline_spm):
    preds, golds = [REFS[0], ""], [[r] for r in REFS]
    counted = get_metric("spbleu")(preds, golds)
    published = get_metric("spbleu_published")(preds, golds)
    assert counted.aggregate["bleu_13a"] < 100.0
    assert published.aggregate == pytest.approx({"chrf++_published": 100.0, "bleu_13a_published": 100.0})
    assert counted.per_item[1] == {"chrf++": 0.0, "bleu_13a": 0.0}
    assert published.per_item[1] == {}  # dropped from the corpus: no per-item score


def test_spm_path_with_a_local_model(tiny_spm):
    decomposed = [unicodedata.normalize("NFD", r) + "  " for r in REFS]  # NFC + strip applied
    out = get_metric("spbleu")(decomposed, [[r] for r in REFS])
    assert set(out.aggregate) == {"spbleu"}
    assert out.aggregate["spbleu"] == pytest.approx(100.0)

    preds = ["Der Hund schläft.", None]  # a missing prediction is an empty string
    out = get_metric("spbleu")(preds, [[r] for r in REFS])
    expected = sacrebleu.corpus_bleu(["Der Hund schläft.", ""], [REFS], tokenize="flores101").score
    assert out.aggregate["spbleu"] == pytest.approx(expected)
    published = get_metric("spbleu_published")(preds, [[r] for r in REFS])
    expected = sacrebleu.corpus_bleu(["Der Hund schläft."], [REFS[:1]], tokenize="flores101").score
    assert published.aggregate["spbleu_published"] == pytest.approx(expected)
    assert set(published.per_item[0]) == {"spbleu_published"} and published.per_item[1] == {}


def test_all_empty_published_is_zero(offline_spm):
    out = get_metric("spbleu_published")(["", " "], [[r] for r in REFS])
    assert out.aggregate == {"chrf++_published": 0.0, "bleu_13a_published": 0.0}
