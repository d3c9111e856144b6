"""spbleu.py's sufficient statistics (issue 16, item 8): summed over a corpus they give back the
metric's own corpus score, for any subset of items, so a bootstrap needs no sacrebleu internals."""

import numpy as np
import pytest

from adafuse.tasks.metrics import spbleu

PREDS = ["the cat sat on the mat", "", "a dog barks at night", "hello there world", "  Guten Tag  "]
GOLDS = [["the cat sat on a mat"], ["x y z"], ["the dog barks at night"], ["hello world there"], ["Guten Tag"]]


def corpus_metrics():
    """The corpus metrics this machine reports (spBLEU online, BLEU-13a and chrF++ offline)."""
    return list(spbleu.spbleu(PREDS, GOLDS).aggregate) + list(spbleu.spbleu_published(PREDS, GOLDS).aggregate)


@pytest.mark.parametrize("subset", [[0, 1, 2, 3, 4], [0, 0, 2], [1], [3, 4, 4, 0]])
def test_summed_statistics_give_back_the_corpus_score(subset):
    preds, golds = [PREDS[i] for i in subset], [GOLDS[i] for i in subset]
    for metric in corpus_metrics():
        scorer = spbleu.spbleu_published if metric.endswith("_published") else spbleu.spbleu
        expected = scorer(preds, golds).aggregate[metric]
        rows = spbleu.bleu_statistics(preds, golds, metric)
        if metric.startswith("chrf"):
            assert rows is None  # sacrebleu keeps chrF's statistics private
            continue
        assert len(rows) == len(subset) and all(len(r) == 10 for r in rows)
        assert spbleu.bleu_from_statistics(np.sum(rows, axis=0).tolist(), metric) == pytest.approx(expected, abs=1e-9)


def test_an_item_a_published_variant_drops_has_zero_statistics():
    metric = next(m for m in corpus_metrics() if m.endswith("_published") and not m.startswith("chrf"))
    rows = spbleu.bleu_statistics(PREDS, GOLDS, metric)
    assert rows[1] == [0] * 10 and any(rows[0])
    assert spbleu.bleu_from_statistics([0] * 10, metric) == 0.0


def test_the_per_item_and_corpus_results_are_unchanged():
    out = spbleu.spbleu(PREDS, GOLDS)
    name = next(m for m in out.aggregate if not m.startswith("chrf"))
    # item 0's sentence score is the sentence BLEU of its own statistics (effective order)
    from sacrebleu.metrics import BLEU

    tokenize = spbleu.SPM_TOKENIZER if name == "spbleu" else "13a"
    sentence = BLEU(tokenize=tokenize, effective_order=True).sentence_score(PREDS[0], GOLDS[0])
    assert out.per_item[0][name] == pytest.approx(sentence.score)
    assert out.aggregate[name] == pytest.approx(BLEU(tokenize=tokenize).corpus_score(
        [p.strip() for p in PREDS], [[g[0] for g in GOLDS]]).score)


def test_compare_calls_no_private_sacrebleu_function():
    from pathlib import Path

    import adafuse.compare

    for source in Path(adafuse.compare.__file__).parent.glob("*.py"):
        text = source.read_text()
        assert "_extract_corpus_statistics" not in text and "_compute_score_from_stats" not in text, source
