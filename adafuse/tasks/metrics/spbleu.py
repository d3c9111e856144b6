"""spBLEU for FLORES (metrics.md), and the named offline fallback.

`spbleu`: corpus BLEU from sacrebleu with the FLORES-101 SentencePiece tokenizer on
NFC-normalised, stripped predictions and references; an empty or missing prediction counts as
an empty string. `spbleu_published`: the same, but items with an empty prediction are dropped
from the corpus, as the paper's numbers were computed.

The aggregate is the corpus score. The per-item scores are sentence-level scores with the
same tokenizer (sacrebleu's `effective_order=True`): useful for looking at single items, but
their mean is not the corpus number. Items dropped by a `_published` variant get no per-item
entry for it.

sacrebleu downloads the SentencePiece model on first use. Where it cannot (offline), one
warning line says so and these metrics report chrF++ and BLEU with the `13a` tokenizer as
`chrf++` / `bleu_13a` (and `chrf++_published` / `bleu_13a_published`) instead: a number is
never reported under `spbleu` unless it was computed with the SentencePiece model.

`bleu_statistics` gives each item's sufficient statistics of a corpus BLEU metric (lengths and
n-gram matches and totals, from the same sentence scores as the per-item entries) and
`bleu_from_statistics` the corpus score of their sum: a bootstrap over items rescores each
resample as a corpus from them. chrF has no such public statistics in sacrebleu: None.

The tokenizer is requested as "flores101": in sacrebleu >= 2.2 that is the model and signature
that `tokenize="spm"` names, without the deprecation warning.
"""

from __future__ import annotations

import logging
import socket
import unicodedata
from typing import Optional

from adafuse.tasks.metrics.registry import Golds, MetricOutput, Preds, register_metric

log = logging.getLogger(__name__)

SPM_TOKENIZER = "flores101"
DOWNLOAD_TIMEOUT_S = 20  # sacrebleu's urlopen has no timeout; a silent firewall would hang

_spm_state: dict = {}  # "bleu" / "bleu_sentence" objects, or "reason" they could not be built
_warned = False


def _clean(text: Optional[str]) -> str:
    return unicodedata.normalize("NFC", text or "").strip()


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def _spm_bleus():
    """(corpus BLEU, sentence BLEU) with the SPM tokenizer, or None when its model is missing."""
    if not _spm_state:
        from sacrebleu.metrics import BLEU

        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            _spm_state["bleu"] = BLEU(tokenize=SPM_TOKENIZER)
            _spm_state["bleu_sentence"] = BLEU(tokenize=SPM_TOKENIZER, effective_order=True)
        except (Exception, SystemExit) as e:  # sacrebleu calls sys.exit on some download errors
            _spm_state.clear()
            _spm_state["reason"] = _one_line(e)
        finally:
            socket.setdefaulttimeout(previous)
    if "reason" in _spm_state:
        return None
    return _spm_state["bleu"], _spm_state["bleu_sentence"]


def reset_spm_cache() -> None:
    """Forget whether the SPM model loaded (tests, or after the model was put in place)."""
    global _warned
    _spm_state.clear()
    _warned = False


def _warn_fallback() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "spBLEU unavailable: sacrebleu could not load its FLORES-101 SentencePiece model (%s); "
            "reporting chrF++ and BLEU (tokenize=13a) as 'chrf++' and 'bleu_13a' instead",
            _spm_state.get("reason", "unknown reason"),
        )


def _scorers(warn: bool = True) -> dict:
    """{metric name: (corpus scorer, sentence scorer)}: spBLEU, or offline chrF++ and BLEU-13a."""
    spm = _spm_bleus()
    if spm is not None:
        return {"spbleu": spm}
    if warn:
        _warn_fallback()
    from sacrebleu.metrics import BLEU, CHRF

    chrf = CHRF(word_order=2)
    return {"chrf++": (chrf, chrf),
            "bleu_13a": (BLEU(tokenize="13a"), BLEU(tokenize="13a", effective_order=True))}


def _hyps_refs(preds: Preds, golds: Golds, drop_empty: bool) -> tuple[list[str], list[str], list[int]]:
    hyps = [_clean(p) for p in preds]
    refs = [_clean(g[0]) for g in golds]  # FLORES has one reference per sentence
    keep = [i for i, h in enumerate(hyps) if h or not drop_empty]
    return hyps, refs, keep


def bleu_statistics(preds: Preds, golds: Golds, metric: str) -> Optional[list[list[int]]]:
    """Per item, the sufficient statistics of the corpus BLEU metric `metric` ("spbleu",
    "bleu_13a", or their "_published" variants): [hypothesis length, reference length,
    matches of 1..4-grams, totals of 1..4-grams]. An item a `_published` variant drops has a
    row of zeros. None when `metric` is not a BLEU this module reports (chrF, or spBLEU while
    its SentencePiece model is missing)."""
    base = metric.removesuffix("_published")
    if base not in ("spbleu", "bleu_13a"):  # before _scorers, which may try to download
        return None
    scorers = _scorers(warn=False)
    if base not in scorers:
        return None
    _, sentence = scorers[base]
    hyps, refs, keep = _hyps_refs(preds, golds, drop_empty=metric.endswith("_published"))
    kept = set(keep)
    rows = []
    for i, (hyp, ref) in enumerate(zip(hyps, refs)):
        if i not in kept:
            rows.append([0] * (2 + 2 * sentence.max_ngram_order))
            continue
        score = sentence.sentence_score(hyp, [ref])
        rows.append([score.sys_len, score.ref_len, *score.counts, *score.totals])
    return rows


def bleu_from_statistics(total: list[int], metric: str) -> float:
    """The corpus score of `metric` from its statistics summed over a corpus's items (rows of
    `bleu_statistics`); 0.0 for an empty corpus, as the metric reports one."""
    base = metric.removesuffix("_published")
    corpus, _ = _scorers(warn=False)[base]
    total = [int(x) for x in total]
    if not any(total):
        return 0.0
    order = corpus.max_ngram_order
    return corpus.compute_bleu(total[2:2 + order], total[2 + order:2 + 2 * order], total[0], total[1],
                               smooth_method=corpus.smooth_method, smooth_value=corpus.smooth_value,
                               effective_order=corpus.effective_order, max_ngram_order=order).score


def _score_corpus(preds: Preds, golds: Golds, drop_empty: bool, suffix: str) -> MetricOutput:
    hyps, refs, keep = _hyps_refs(preds, golds, drop_empty)
    scorers = _scorers()

    aggregate: dict[str, float] = {}
    per_item: list[dict[str, float]] = [{} for _ in hyps]
    for base, (corpus, sentence) in scorers.items():
        name = base + suffix
        kept_h, kept_r = [hyps[i] for i in keep], [refs[i] for i in keep]
        aggregate[name] = corpus.corpus_score(kept_h, [kept_r]).score if keep else 0.0
        for i in keep:
            per_item[i][name] = sentence.sentence_score(hyps[i], [refs[i]]).score
    return MetricOutput(aggregate, per_item)


@register_metric("spbleu", scale=100, reports=("chrf++", "bleu_13a"))
def spbleu(preds: Preds, golds: Golds) -> MetricOutput:
    """Corpus spBLEU; empty predictions count as empty strings (offline: chrf++, bleu_13a)."""
    return _score_corpus(preds, golds, drop_empty=False, suffix="")


@register_metric("spbleu_published", scale=100, reports=("chrf++_published", "bleu_13a_published"))
def spbleu_published(preds: Preds, golds: Golds) -> MetricOutput:
    """Corpus spBLEU with empty predictions dropped, as published (offline: *_published)."""
    return _score_corpus(preds, golds, drop_empty=True, suffix="_published")
