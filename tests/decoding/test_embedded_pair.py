"""The embedded default pair (SmolLM2-135M-Instruct + Gemma-3-270M) on bundled task data.

slow: loads both real models (seconds from the safetensors cache, about 90 s the first time).
long: the full comparison with the re-encoding oracle (GSM8K's 1,400-token prompts, past
Gemma's 512-token window); tens of minutes on 2 cores, so `make test` leaves it to
`make test-long` and keeps the one-prompt check below.
"""

from __future__ import annotations

import pytest

from adafuse import AdaFuse, load_model
from adafuse.decoding.engine import shares_prefix
from adafuse.tasks import get_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair():
    try:
        # float32: the exactness checks compare against the recompute oracle bit for bit
        # (dtype=auto is bfloat16 on CPUs with native bf16; tests/decoding/test_bf16.py has that)
        return [load_model("smollm2-135m-instruct", device="cpu", dtype="float32"),
                load_model("gemma3-270m", device="cpu", dtype="float32")]
    except Exception as exc:  # noqa: BLE001 - a missing package is a set-up error, say which
        pytest.fail(f"embedded models unavailable: {exc}")


def test_three_triviaqa_questions(pair):
    task = get_task("triviaqa")
    docs = task.docs(limit=3)
    dec = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3)
    outs = dec.generate_batch([task.prompt(d) for d in docs], max_new_tokens=24,
                              stop=task.stop, shared_prefix=task.shared_prefix)
    for out in outs:
        assert out.text.strip(), out.summary()
        for r in out.trace:
            proposers = {m for p in r.proposals for m in p.proposers}
            assert proposers == {0, 1}
            for p in r.proposals:
                assert len(p.text.split()) <= 3
                assert len(p.nll) == 2


def _same_rounds(a, other) -> bool:
    """Every round the same proposals and winner, and the same text; False where a near-tie
    (< 1e-4 nats) ends the comparison early."""
    for ra, rb in zip(a.trace, other.trace):
        assert [(p.text, p.terminal) for p in ra.proposals] == [
            (p.text, p.terminal) for p in rb.proposals]
        if ra.near_tie or rb.near_tie:
            return False
        assert ra.winner == rb.winner
    assert a.text == other.text
    return True


def test_cached_in_a_batch_follows_recompute_on_one_prompt(pair):
    """The reduced exactness check `make test` runs: one TriviaQA prompt (12 new tokens), cached
    with the few-shot prefix read in place, alone and in a batch with two other prompts,
    against the re-encoding oracle."""
    task = get_task("triviaqa")
    prompts = [task.prompt(d) for d in task.docs(limit=3)]
    cached = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3)
    kw = dict(max_new_tokens=12, stop=task.stop, shared_prefix=task.shared_prefix)
    one = cached.generate_batch(prompts[:1], **kw)[0]
    many = cached.generate_batch(prompts, batch_size=3, **kw)
    assert all(shares_prefix(lm) for lm in pair), "both models should read the shared prefix in place"
    oracle = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3, mode="recompute")
    b = oracle.generate(prompts[0], max_new_tokens=12, stop=task.stop)
    assert len(one.trace) >= 2
    _same_rounds(one, b)
    _same_rounds(one, many[0])
    assert one.stats.tokens_fed * 5 < b.stats.tokens_fed


@pytest.mark.long
def test_cached_and_recompute_choose_the_same_winners(pair):
    """Exactness on real models, the way the runner decodes: 3 TriviaQA and 3 GSM8K prompts
    (24 new tokens), cached with each task's few-shot prefix prefilled once and read in place,
    at batch 1 and with all prompts in one batch, against recompute one prompt at a time.
    Every round the same winner (up to near-ties < 1e-4 nats), identical text; GSM8K's prompt
    is ~1,400 Gemma tokens, past its 512-token window."""
    near_ties = set()  # prompts with a near-tie round: compared up to it
    for task in (get_task("triviaqa"), get_task("gsm8k")):
        prompts = [task.prompt(d) for d in task.docs(limit=3)]
        cached = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3)
        one = cached.generate_batch(prompts, max_new_tokens=24, stop=task.stop,
                                    shared_prefix=task.shared_prefix)
        many = cached.generate_batch(prompts, max_new_tokens=24, stop=task.stop,
                                     shared_prefix=task.shared_prefix, batch_size=8)
        assert all(shares_prefix(lm) for lm in pair), \
            "both models should read the shared prefix in place"
        recompute = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3, mode="recompute")
        for prompt, a, c in zip(prompts, one, many):
            b = recompute.generate(prompt, max_new_tokens=24, stop=task.stop)
            for other in (b, c):
                if not _same_rounds(a, other):
                    near_ties.add(prompt)
            assert a.stats.tokens_fed * 5 < b.stats.tokens_fed
    assert len(near_ties) <= 1


def test_tails_encode_as_the_whole_texts_do_on_the_real_tokenizers(pair):
    """`text.ContinuationEncoder` on SmolLM2's byte-level BPE and Gemma 3's SentencePiece BPE."""
    from tests.decoding.test_continuation_encoder import check_model

    for lm in pair:
        assert check_model(lm, seed=1, n=150) >= 120, lm.name
