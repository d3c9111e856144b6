"""The embedded pair (SmolLM2-135M + Gemma-3-270M) with Gemma in a Ray actor against both in
process: the same texts, per-round winners and NLLs and the same cost counters, at batch 1 and
8, cached and recompute (issue 27's Done-when on a real pair; the tiny pair's version is
test_ray_member.py). slow: loads the real models, here and in the actor; the recompute case is
`long` (make test-long)."""

from __future__ import annotations

import os

import pytest

from adafuse import AdaFuse, load_model
from adafuse.tasks import get_task
from tests import tiny_hf

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

from adafuse.decoding.engine.ray_member import RayEngine, connect, load_member  # noqa: E402

pytestmark = pytest.mark.slow
NAMES = ("smollm2-135m-instruct", "gemma3-270m")


@pytest.fixture(scope="module")
def pairs():
    """(in process, Gemma in an actor): float32, one thread each."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    local = [load_model(n, device="cpu", dtype="float32") for n in NAMES]
    connect(num_cpus=2)
    try:
        yield local, [local[0], load_member(NAMES[1], device="cpu", dtype="float32", num_cpus=1)]
    finally:
        ray.shutdown()


@pytest.mark.parametrize("mode,batch_size,n,tokens", [
    ("cached", 1, 3, 16), ("cached", 8, 8, 16),
    # the oracle re-encodes every prompt per call: ten minutes at one thread, so make test-long
    pytest.param("recompute", 1, 2, 8, marks=pytest.mark.long)])
def test_a_ray_member_decodes_as_in_process(pairs, mode, batch_size, n, tokens):
    task = get_task("triviaqa")
    prompts = [task.prompt(d) for d in task.docs(limit=n)]
    outs, totals = [], []
    for models in pairs:
        dec = AdaFuse(models, mode=mode, theta_delta=0.7, max_words=3, num_candidates=3,
                      engine={"fold_scoring": False})
        outs.append(dec.generate_batch(prompts, max_new_tokens=tokens, stop=task.stop,
                                       shared_prefix=task.shared_prefix, batch_size=batch_size))
        totals.append(dec.last_totals)
    assert isinstance(AdaFuse(pairs[1])._open().engines[1], RayEngine)
    for a, b in zip(*outs):
        tiny_hf.assert_same_choices(a, b)
        assert a.text == b.text and [r.winner for r in a.trace] == [r.winner for r in b.trace]
        assert [(m.forwards, m.tokens_fed) for m in a.stats.models] == \
            [(m.forwards, m.tokens_fed) for m in b.stats.models]
    assert [(t.forwards, t.tokens_fed) for t in totals[0]] == [(t.forwards, t.tokens_fed) for t in totals[1]]
