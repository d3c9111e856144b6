"""A session's prompts under different shared prefixes (decoding/session.py, as the server
adds them): each group admitted under its own, each prefix prefilled once, the outputs those
of the prompts decoded with none."""

from __future__ import annotations

from adafuse.decoding import AdaFuse

HEAD = "Translate to French.\n" + "".join(f"English: word {i}\nFrench: mot {i}\n" for i in range(12))


def test_a_session_admits_each_prefix_group_under_its_own_and_answers_as_without(tiny):
    models = [tiny["llama"], tiny["gemma"]]
    other = "Answer the question.\n" * 6
    prompts = [HEAD + "English: cat\nFrench:", other + "Q: sky?\nA:", HEAD + "English: dog\nFrench:",
               other + "Q: sea?\nA:"]
    plain = AdaFuse(models).generate_batch(prompts, max_new_tokens=8, batch_size=4)
    decoder = AdaFuse(models)
    session = decoder.session(max_new_tokens=8, batch_size=4)
    keys = [session.add(p, shared_prefix=HEAD if p.startswith(HEAD) else other) for p in prompts]
    outs = {}
    while session.busy:
        outs.update(session.step())
    assert [outs[k].text for k in keys] == [o.text for o in plain]
    assert all(c.forwards >= 2 for c in decoder.prefix_costs)  # both prefixes prefilled, once each
    fed = sum(m.tokens_fed for k in keys for m in outs[k].stats.models)
    assert fed < sum(m.tokens_fed for o in plain for m in o.stats.models)
