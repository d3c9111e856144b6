"""Prompt starts the requests share (a few-shot header, a system preamble), found as they
arrive, so that each is prefilled once per model and reused by every request that begins with
it, as `adafuse.run` reuses a task's few-shot prefix.

A completion prompt's prefix is the longest prefix found before that it starts with, so that
the requests of one header keep reusing one prefill; failing that, the longest start it shares
with one of the last `memory` other completion prompts (a prompt sent again is not another),
cut after its last line break (a boundary no tokenizer merges across differently for the
prompts that share it: the engine checks the ids anyway and reads in place only what they
share), when that is at least `min_chars` long. Chat requests get none: each model renders
them with its own template. A prefix changes no response, only what a request's
prefill costs."""

from __future__ import annotations

import os
from collections import deque

from adafuse.serve.chat import ChatPrompt


class PrefixFinder:
    def __init__(self, min_chars: int, memory: int = 32, kept: int = 8):
        self.min_chars = int(min_chars)
        self.recent: deque[str] = deque(maxlen=memory)
        self.known: deque[str] = deque(maxlen=kept)  # prefixes found, the last used last

    def __call__(self, prompt: str) -> str | None:
        """The shared start of `prompt` to reuse, or None (none found, or finding is off)."""
        if self.min_chars <= 0 or isinstance(prompt, ChatPrompt):
            return None
        prompt = str(prompt)
        found = max((k for k in self.known if prompt.startswith(k)), key=len, default=None)
        if found is None:
            best = max((len(os.path.commonprefix([prompt, other])) for other in self.recent if other != prompt),
                       default=0)
            cut = prompt.rfind("\n", 0, best) + 1
            found = prompt[:cut] if cut >= self.min_chars else None
        else:
            self.known.remove(found)
        if prompt not in self.recent:
            self.recent.append(prompt)
        if found is not None:
            self.known.append(found)
        return found
