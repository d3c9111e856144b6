"""Driving a decoder round by round: prompts join while others are in flight (vLLM's
`add_request` / `step()` shape).

    session = decoder.session(max_new_tokens=64, stop=["\\n"], batch_size=8)
    session.add("Question: ...\\nAnswer:", key="q1")
    while session.busy:
        for key, output in session.step():   # one round for every prompt in the batch
            ...                               # finished outputs, with their costs

`step()` first fills the batch from the queue (up to `batch_size`: a finished prompt's place
is refilled), then runs one round for every prompt in it; `partial(key)` is the text a prompt
has committed so far (what a server streams), `cancel(key)` drops a prompt wherever it is.
`generate_batch` is this loop; the runner and the server consume it directly.

A decoder provides the hooks: `_open()` (its engines, once per session), `_admit(run,
requests)`, `_round(run)` -> finished keys, `_output(run, key)`, `_partial(run, key)`,
`_drop(run, key)`, `_charge(run, keys, seconds)`. Every decoder admits between rounds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from adafuse.decoding.output import Output
from adafuse.errors import AdaFuseError


@dataclass
class Request:
    key: Hashable
    prompt: str
    max_new_tokens: int
    stop: list[str]
    prefix: str | None = None  # the text whose prefill it shares with others (see `add`)


class Session:
    def __init__(self, decoder, *, max_new_tokens: int = 256, stop: Sequence[str] = (),
                 batch_size: int = 1, shared_prefix: str | None = None):
        from adafuse.decoding.base import check_range, check_stop

        check_range("max_new_tokens", max_new_tokens, 1, integer=True)
        check_range("batch_size", batch_size, 1, integer=True)
        if shared_prefix is not None and not isinstance(shared_prefix, str):
            raise AdaFuseError(f"shared_prefix={shared_prefix!r} is not allowed; it must be a string")
        self.decoder = decoder
        self.max_new_tokens, self.stop = int(max_new_tokens), check_stop(stop)
        self.batch_size, self.shared_prefix = int(batch_size), shared_prefix
        self.queue: deque[Request] = deque()
        self.active: dict[Hashable, Request] = {}
        self._next_key = 0
        with torch.inference_mode():
            self.run = decoder._open()

    @property
    def busy(self) -> bool:
        """Whether any prompt is queued or in flight."""
        return bool(self.queue or self.active)

    @property
    def totals(self):
        """Real forwards per model over the session (a batched forward counts once)."""
        return self.run.totals

    def add(self, prompt: str, *, key: Hashable = None, max_new_tokens: int | None = None,
            stop: Sequence[str] | None = None, shared_prefix: str | None = None) -> Hashable:
        """Queue a prompt; returns its key (a new integer where none is given). Its own
        `max_new_tokens`, `stop` and `shared_prefix` (a text it starts with, prefilled once per
        model and reused by every prompt that names it) replace the session's."""
        from adafuse.decoding.base import check_prompt, check_range, check_stop

        check_prompt(prompt)
        if max_new_tokens is not None:
            check_range("max_new_tokens", max_new_tokens, 1, integer=True)
        if key is None:
            key, self._next_key = ("request", self._next_key), self._next_key + 1
        if key in self.active or any(r.key == key for r in self.queue):
            raise AdaFuseError(f"key {key!r} is already in this session")
        prefix = self.shared_prefix if shared_prefix is None else shared_prefix
        if not isinstance(prefix, (str, type(None))):
            raise AdaFuseError(f"shared_prefix={prefix!r} is not allowed; it must be a string")
        if prefix is not None and not prompt.startswith(prefix):
            raise AdaFuseError("shared_prefix is not a prefix of every prompt")
        self.queue.append(Request(key, prompt, int(max_new_tokens or self.max_new_tokens),
                                  self.stop if stop is None else check_stop(stop), prefix))
        return key

    def cancel(self, key: Hashable) -> bool:
        """Drop a queued or running prompt (its place is refilled at the next step)."""
        for request in list(self.queue):
            if request.key == key:
                self.queue.remove(request)
                return True
        if key in self.active:
            del self.active[key]
            self.decoder._drop(self.run, key)
            return True
        return False

    def partial(self, key: Hashable) -> str:
        """The response a running prompt has committed so far ("" while queued)."""
        return self.decoder._partial(self.run, key) if key in self.active else ""

    def step(self) -> list[tuple[Hashable, Output]]:
        """Admit queued prompts where there is room, run one round for every prompt in the
        batch; returns (key, output) of those that finished, in the order they finished."""
        decoder = self.decoder
        with torch.inference_mode():
            room = self.batch_size - len(self.active)
            if self.queue and room > 0:
                joining = [self.queue.popleft() for _ in range(min(room, len(self.queue)))]
                for prefix in dict.fromkeys(r.prefix for r in joining):  # those of one prefix together
                    group = [r for r in joining if r.prefix == prefix]
                    started = time.perf_counter()
                    with decoder._sharing(prefix):
                        decoder._admit(self.run, group)
                    self.active.update((r.key, r) for r in group)
                    decoder._charge(self.run, [r.key for r in group], time.perf_counter() - started)
            if not self.active:
                return []
            started = time.perf_counter()
            done = decoder._round(self.run)
            decoder._charge(self.run, list(self.active), time.perf_counter() - started)
            out = []
            for key in done:
                request = self.active.pop(key)
                output = decoder._output(self.run, key)
                output.prompt = request.prompt
                out.append((key, output))
        return out
