"""The shared prompt starts the server finds among requests (adafuse/serve/prefixes.py)."""

from __future__ import annotations

from adafuse.serve.chat import ChatPrompt
from adafuse.serve.prefixes import PrefixFinder

HEAD = "Translate to French.\n" + "".join(f"English: word {i}\nFrench: mot {i}\n" for i in range(12))


def test_the_start_shared_with_a_recent_prompt_up_to_a_line_break():
    find = PrefixFinder(min_chars=50)
    assert find(HEAD + "English: cat\nFrench:") is None  # nothing seen yet
    assert find(HEAD + "English: car\nFrench:") == HEAD  # "English: ca" is shared too: cut at the line
    assert find("Something else entirely, " * 10) is None
    assert find(HEAD[:40] + "\nshort") is None  # shared, but shorter than min_chars
    assert find(HEAD + "English: dog\nFrench:") == HEAD


def test_chat_prompts_and_zero_get_none():
    find = PrefixFinder(min_chars=50)
    find(HEAD + "a")
    assert find(ChatPrompt(HEAD + "b", [{"role": "user", "content": HEAD + "b"}])) is None
    off = PrefixFinder(min_chars=0)
    off(HEAD + "a")
    assert off(HEAD + "b") is None


def test_a_found_prefix_is_kept_for_repeats_and_longer_shared_starts():
    """Once a header is found, prompts that start with it get it, also a prompt sent again
    (whose start shared with its first sending is the whole prompt) and two prompts that share
    more than the header: one prefill serves them all."""
    find = PrefixFinder(min_chars=50)
    q1, q2 = HEAD + "English: cat\nFrench:", HEAD + "English: car\nFrench:"
    assert find(q1) is None and find(q2) == HEAD
    assert find(q1) == HEAD and find(q1) == HEAD  # sent again
    longer = HEAD + "English: the same line\nFrench: la même\n"
    assert find(longer + "English: a\nFrench:") == HEAD and find(longer + "English: b\nFrench:") == HEAD
    other = "A different header.\n" * 5
    assert find(other + "x") is None and find(other + "y") == other and find(q2) == HEAD
