"""The embedded default pair (SmolLM2-135M-Instruct + Gemma-3-270M) on bundled task data.

slow: loads both real models (seconds from the safetensors cache, about 90 s the first time).
"""

from __future__ import annotations

import pytest

from adafuse import AdaFuse, load_model
from adafuse.tasks import get_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair():
    try:
        return [load_model("smollm2-135m-instruct", device="cpu"),
                load_model("gemma3-270m", device="cpu")]
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


def _cases():
    trivia, gsm = get_task("triviaqa"), get_task("gsm8k")
    return ([(trivia, d, 24) for d in trivia.docs(limit=3)]
            + [(gsm, d, 24) for d in gsm.docs(limit=3)])


def test_cached_and_recompute_choose_the_same_winners(pair):
    """Exactness on real models: every round the same winner (up to near-ties < 1e-4 nats),
    identical text; GSM8K's prompt is ~1,400 Gemma tokens, past its 512-token window."""
    near_ties = 0
    for task, doc, budget in _cases():
        prompt = task.prompt(doc)
        outs = {}
        for mode in ("cached", "recompute"):
            dec = AdaFuse(pair, theta_delta=0.7, max_words=3, num_candidates=3, mode=mode)
            outs[mode] = dec.generate(prompt, max_new_tokens=budget, stop=task.stop)
        a, b = outs["cached"], outs["recompute"]
        for ra, rb in zip(a.trace, b.trace):
            assert [(p.text, p.terminal) for p in ra.proposals] == [
                (p.text, p.terminal) for p in rb.proposals]
            if ra.near_tie or rb.near_tie:
                near_ties += 1
                break
            assert ra.winner == rb.winner
        else:
            assert a.text == b.text
        assert a.stats.tokens_fed * 5 < b.stats.tokens_fed
    assert near_ties <= 1
