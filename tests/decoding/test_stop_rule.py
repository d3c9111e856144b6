"""One stop-string rule (adafuse/stops.py) for the decoders and the scorer: the stop that
completes first (smallest end), among those ending together the longest. Each case is
decoded by scripted models that write a fixed text, token by token or in one token, and the
decoder's output must be what the scorer's cut of the whole text gives."""

from __future__ import annotations

import pytest

from adafuse.decoding import AdaFuse, FixedSpan, Greedy, UnionTopK
from adafuse.stops import find_stop
from adafuse.tasks.filters import cut_at_stop
from tests.scripted import EOS, ScriptedLM

PROMPT = "Q:"

CASES = [  # text, stops, the output
    ("abc", ["abc", "b"], "a"),  # "b" completes at 2, "abc" at 3
    ("abc", ["b", "abc"], "a"),  # the order of the stops does not matter
    ("abc", ["bc", "abc"], ""),  # both complete at 3: the longer
    ("xabcd", ["cd", "abc"], "x"),  # "abc" completes first though "cd" is no later in the list
    ("hello world", ["lo w", "o"], "hell"),
    ("one two\nthree", ["\n", "two\nthree", "e"], "on"),
    ("plain", ["x", "yz"], "plain"),
]


def writer(text: str, whole: bool) -> ScriptedLM:
    """A model that writes `text` after the prompt, a character a token (whole=False) or all
    of it in one token, then EOS."""
    vocab = [PROMPT] + sorted(set(text)) + ([text] if whole else [])

    def script(context: str) -> dict:
        done = context[context.index(PROMPT) + len(PROMPT):]
        if whole:
            return {text: 1.0} if not done else {EOS: 1.0}
        return {text[len(done)]: 1.0} if text.startswith(done) and len(done) < len(text) else {EOS: 1.0}

    return ScriptedLM(f"writer{int(whole)}", vocab, script)


@pytest.mark.parametrize("text,stops,expected", CASES)
def test_the_scorer_cuts_where_the_rule_says(text, stops, expected):
    assert cut_at_stop(text, stops) == expected
    found = find_stop(text, 0, stops)
    assert (found is None) == (expected == text) and (found is None or text[: found[0]] == expected)


@pytest.mark.parametrize("whole", [False, True], ids=["token_by_token", "one_token"])
@pytest.mark.parametrize("text,stops,expected", CASES)
def test_the_decoders_cut_where_the_scorer_does(text, stops, expected, whole):
    lm = writer(text, whole)
    for decoder in (Greedy([lm]), AdaFuse([lm, lm]), FixedSpan([lm, lm], span_words=1), UnionTopK([lm, lm])):
        out = decoder.generate(PROMPT, max_new_tokens=len(text) + 2, stop=stops)
        assert out.text == expected == cut_at_stop(text, stops), type(decoder).__name__
        assert out.finish_reason == ("stop" if expected != text else "eos"), type(decoder).__name__


def test_a_stop_already_checked_is_not_found_again():
    assert find_stop("a\nb\n", 2, ["\n"]) == (3, 4)
    assert find_stop("ab", 1, ["ab"]) == (0, 2)  # it ends after the offset: new
    assert find_stop("ab", 2, ["ab"]) is None
    assert find_stop("abc", 0, ["", "c"]) == (2, 3)  # an empty stop string is ignored
