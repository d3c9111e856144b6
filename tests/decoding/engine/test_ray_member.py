"""Members as Ray actors (engine/ray_member.py) against the same members in process, on a local
Ray cluster (2 CPUs) with the tiny random models: the same texts, winners, NLLs and cost
counters; a killed actor ends a decode with one AdaFuseError naming the member."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from adafuse import AdaFuse
from adafuse.decoding.engine import EngineOptions
from adafuse.errors import AdaFuseError
from tests import tiny_hf

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

from adafuse.decoding.engine.ray_member import RayEngine, connect, load_member, require_ray  # noqa: E402

PREFIX = "Answer the question, and only return the final answer.\n\n"
PROMPTS = [PREFIX + p for p in tiny_hf.PROMPTS]


@pytest.fixture(scope="module")
def members(tiny):
    """The tiny llama and gemma, each in its own actor (half a CPU each: three fit)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    connect(num_cpus=2)
    try:
        yield [load_member(tiny[k].source, device="cpu", num_cpus=0.5) for k in ("llama", "gemma")]
    finally:
        ray.shutdown()


def _decode(models, mode, batch_size):
    decoder = AdaFuse(models, mode=mode, engine={"fold_scoring": False})
    outs = decoder.generate_batch(PROMPTS, max_new_tokens=10, batch_size=batch_size, shared_prefix=PREFIX)
    return decoder, outs


@pytest.mark.parametrize("mode", ["cached", "recompute"])
@pytest.mark.parametrize("batch_size", [1, 2])
def test_same_as_in_process(tiny, members, mode, batch_size):
    local, local_outs = _decode([tiny["llama"], tiny["gemma"]], mode, batch_size)
    remote, remote_outs = _decode(members, mode, batch_size)
    assert isinstance(remote._open().engines[0], RayEngine)
    for a, b in zip(local_outs, remote_outs):
        tiny_hf.assert_same_choices(a, b)
        assert [r.winner for r in a.trace] == [r.winner for r in b.trace]
        assert [(m.forwards, m.tokens_fed) for m in a.stats.models] == \
            [(m.forwards, m.tokens_fed) for m in b.stats.models]
        assert all(m.seconds > 0 for m in b.stats.models)
    for x, y in zip(local.last_totals, remote.last_totals):
        assert (x.forwards, x.tokens_fed) == (y.forwards, y.tokens_fed)
        assert {k: n for k, (n, _) in x.by_kind.items()} == {k: n for k, (n, _) in y.by_kind.items()}
    assert [(c.forwards, c.tokens_fed) for c in local.prefix_costs] == \
        [(c.forwards, c.tokens_fed) for c in remote.prefix_costs]


def test_remote_members_are_not_folded(members):
    assert str(members[0].device) == "ray:cpu"
    assert not EngineOptions().folds([m.device for m in members])


def test_killed_actor_names_the_member(tiny, members):
    victim = load_member(tiny["llama2"].source, device="cpu", num_cpus=0.5, alias="victim")
    decoder = AdaFuse([members[0], victim], engine={"fold_scoring": False})
    assert decoder.generate(PROMPTS[0], max_new_tokens=3).text
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(AdaFuseError, match=r"member 'victim': its Ray actor .* is lost") as caught:
        decoder.generate(PROMPTS[0], max_new_tokens=3)
    assert "\n" not in str(caught.value)


def test_error_in_actor_is_raised_as_itself(members):
    engine = RayEngine(members[0])
    with pytest.raises(KeyError):
        engine.contexts(["never added"])


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(AdaFuseError, match=r"pip install -e '\.\[ray\]'"):
        require_ray()


DROP_AFTER_SHUTDOWN = """
import gc, sys, ray
from adafuse.decoding.engine.ray_member import RayEngine, connect, load_member
connect(num_cpus=1)
lm = load_member(sys.argv[1], device="cpu", num_cpus=0.5)
dropped, kept = RayEngine(lm), RayEngine(lm)  # one freed now, one left for the exit
ray.shutdown()
del dropped
gc.collect()
print("initialized:", ray.is_initialized())
"""


def test_engines_freed_after_ray_shut_down_start_no_new_cluster(tiny):
    """An engine freed after Ray shut down (an error's exit path) must not reach for its actor:
    a call then starts a new local Ray instance, and CI saw the exit that followed segfault."""
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", DROP_AFTER_SHUTDOWN, str(tiny["gemma"].source)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "initialized: False" in done.stdout
    assert done.stderr.count("Started a local Ray instance") == 1, done.stderr[-2000:]
