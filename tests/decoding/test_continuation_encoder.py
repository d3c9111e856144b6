"""Encoding only the tail of a text that continues a known context (`text.ContinuationEncoder`)
gives the ids a whole encode gives, on every tokenizer family the suite loads, or falls back
to whole encodes where its check on the context fails."""

from __future__ import annotations

import random

import pytest

from adafuse.decoding.text import ContinuationEncoder, encode_continuations
from adafuse.tasks import get_task

PIECES = [" x", " 5", "5", " the", "\n", "\n\n", "  so", "12", ".", ",", " é", "é", "😀", " 😀", "\t",
          " Question:", " 1,234", "=", " $", "?\n\nAnswer:", " ", "ab", " tothe"]


def cases(seed: int, n: int):
    """(context, continuations) from both tasks' prompts, the contexts cut at random places
    (inside words and multi-byte characters too) and continued by random pieces."""
    rng = random.Random(seed)
    prompts = [get_task(t).prompt(d) for t in ("triviaqa", "gsm8k") for d in get_task(t).docs(limit=6)]
    for _ in range(n):
        prompt = rng.choice(prompts) + "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 12)))
        context = prompt[: rng.randrange(len(prompt) // 2, len(prompt) + 1)]
        texts = [context + "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 4))) for _ in range(5)]
        yield context, texts


def check_model(lm, seed: int, n: int) -> int:
    contexts = [(c, lm.encode(c), texts) for c, texts in cases(seed, n)]
    assert encode_continuations(lm, contexts) == [[lm.encode(t) for t in texts] for _, _, texts in contexts]
    return sum(ContinuationEncoder(lm, c, ids).cut is not None for c, ids, _ in contexts)


@pytest.mark.parametrize("name", ["llama", "gemma"])
def test_tails_encode_as_the_whole_texts_do(tiny, name):
    cut = check_model(tiny[name], seed=0, n=60)
    assert cut >= 50  # the tail path ran, not only the fallback


def test_a_tokenizer_that_changes_a_tail_falls_back_to_whole_encodes(tiny):
    """Metaspace with prepend_scheme="always" gives a tail a leading "▁" that the context's
    ids do not have there: the check fails and each text is encoded whole."""
    import copy

    from tokenizers import pre_tokenizers

    lm = copy.copy(tiny["gemma"])
    lm.tokenizer = copy.deepcopy(lm.tokenizer)
    lm.tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
    context = get_task("triviaqa").prompt(get_task("triviaqa").docs(limit=1)[0])
    ids = lm.encode(context)
    enc = ContinuationEncoder(lm, context, ids)
    if enc.cut is not None:
        check = lm.encode_many([context[enc.cut[1]:]], add_special_tokens=False)[0]
        assert check != ids[enc.cut[0]:]
    texts = [context + " Tom", context + "\n"]
    assert encode_continuations(lm, [(context, ids, texts)]) == [[lm.encode(t) for t in texts]]


def test_short_contexts_and_texts_that_leave_the_context_are_encoded_whole(tiny):
    lm = tiny["llama"]
    long = get_task("triviaqa").prompt(get_task("triviaqa").docs(limit=1)[0])
    assert ContinuationEncoder(lm, "Q: hi", lm.encode("Q: hi")).cut is None
    texts = [long + " x", "something else entirely", long[:10]]
    assert encode_continuations(lm, [(long, lm.encode(long), texts), ("Q: hi", lm.encode("Q: hi"), ["Q: hi!"])]) \
        == [[lm.encode(t) for t in texts], [lm.encode("Q: hi!")]]
