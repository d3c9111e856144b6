"""The one thread that drives the decoder's `Session`; the HTTP handlers talk to it through
a thread-safe inbox and get their events back on their own asyncio loop.

A request is a `Job`. `submit(job)` queues it; the scheduler thread admits it (each model
renders and encodes its prompt, `fit` checks it and its budget against each member's
context), `session.add`s it with the start it shares with recent prompts (prefixes.py), and runs `session.step()` while any job is in
flight: a job joins the batch between rounds (AdaFuse; chunk decoders between chunks) and
leaves it when it finishes. After each round every streaming job gets the text it committed
since the last round; a finished job gets its `Output`. `cancel(job)` (a client that went
away) drops it from the session: its place is refilled at the next step.

The session, the models and their tokenizers are touched by this thread only."""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from adafuse.errors import AdaFuseError
from adafuse.serve.prefixes import PrefixFinder
from adafuse.serve.requests import BadRequest

log = logging.getLogger("adafuse.serve")


@dataclass
class Job:
    prompt: str  # or chat.ChatPrompt
    max_new_tokens: int
    stop: list[str]
    stream: bool
    loop: asyncio.AbstractEventLoop
    budget_field: Optional[str] = None  # the request field that set max_new_tokens (None: default)
    events: asyncio.Queue = field(default_factory=asyncio.Queue)  # ("delta", str) ("done", Output) ("error", exc)
    key: Any = None
    prompt_tokens: int = 0  # in the first model's tokenizer
    sent: str = ""  # the text streamed so far

    def emit(self, kind: str, value: Any) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))


def streamable(partial: str, stop: list[str]) -> str:
    """The part of a partial response that no stop string can take back: cut at the first stop
    string (the response ends there), less a tail that may be the start of one."""
    for s in stop:
        at = partial.find(s)
        if at >= 0:
            partial = partial[:at]
    hold = 0
    for s in stop:
        for n in range(min(len(s) - 1, len(partial)), hold, -1):
            if partial.endswith(s[:n]):
                hold = n
                break
    return partial[: len(partial) - hold]


def fit(job: Job, name: str, prompt_tokens: int, limit: Optional[int]) -> None:
    """The prompt and the response's budget fit a member's context (the rule of a run's
    `plan.check_context`: the budget counts the first model's tokens and is held against each
    member's prompt in its own tokens), else a 400 naming the member and its limit: `prompt`
    (or `messages`) when the prompt alone leaves no room, the budget's field when it asks for
    more than the room left. A budget the request did not set (the server's `max_new_tokens`)
    is cut to the room left instead."""
    if limit is None:
        return
    room = limit - prompt_tokens
    if room < 1:
        raise BadRequest(f"the prompt is {prompt_tokens} tokens for model {name!r}, whose context is "
                         f"{limit} tokens (the response needs at least one more); shorten the prompt",
                         "messages" if hasattr(job.prompt, "messages") else "prompt")
    if job.max_new_tokens <= room:
        return
    if job.budget_field is None:
        log.info("request %s: its budget is cut from %d to %d tokens to fit model %r's context of %d",
                 job.key[1] if job.key else "-", job.max_new_tokens, room, name, limit)
        job.max_new_tokens = room
        return
    raise BadRequest(f"{job.budget_field}={job.max_new_tokens} with a prompt of {prompt_tokens} tokens "
                     f"for model {name!r} is {prompt_tokens + job.max_new_tokens} tokens, past its "
                     f"context of {limit} tokens; ask for at most {room} or shorten the prompt",
                     job.budget_field)


class Scheduler:
    def __init__(self, decoder, batch_size: int, max_new_tokens: int, prefix_min_chars: int):
        self.decoder, self.batch_size, self.max_new_tokens = decoder, batch_size, max_new_tokens
        self.prefix_of = PrefixFinder(prefix_min_chars)  # shared prompt starts, prefilled once
        self.shared_prefix_requests = 0  # requests admitted with one (GET /health)
        self.inbox: queue.Queue = queue.Queue()
        self.jobs: dict[Any, Job] = {}  # in the session (queued or running)
        self.keys = itertools.count()
        self.session = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="adafuse-scheduler", daemon=True)
        self.rounds = 0

    # --- called from the HTTP handlers (any thread) -------------------------------------

    def start(self) -> None:
        self.session = self.decoder.session(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        self.thread.start()

    def submit(self, job: Job) -> None:
        job.key = ("http", next(self.keys))
        self.inbox.put(("add", job))

    def cancel(self, job: Job) -> None:
        self.inbox.put(("cancel", job))

    def stop(self, timeout: Optional[float] = None) -> None:
        """Cancel what is left and end the thread."""
        self.stopping.set()
        self.inbox.put(("wake", None))
        self.thread.join(timeout)

    @property
    def in_flight(self) -> int:
        return len(self.jobs)

    # --- the scheduler thread -----------------------------------------------------------

    def loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.take(block=not self.session.busy)
                if self.session.busy:
                    self.step()
            except Exception as exc:  # a bug must not take the server down with it
                log.exception("scheduler: %s", exc)
                self.fail_all(exc)
        self.fail_all(AdaFuseError("the server is shutting down; the request was cancelled"))

    def take(self, block: bool) -> None:
        """Handle what is in the inbox; with `block`, wait for the first message."""
        while True:
            try:
                kind, job = self.inbox.get(block=block, timeout=0.5 if block else None)
            except queue.Empty:
                return
            block = False
            if kind == "add":
                self.admit(job)
            elif kind == "cancel" and job.key in self.jobs:
                self.session.cancel(job.key)
                self.leave(job)
                log.info("request %s cancelled (client gone), %d in flight", job.key[1], len(self.jobs))

    def admit(self, job: Job) -> None:
        try:
            for index, lm in enumerate(self.decoder.models):
                ids = lm.encode(lm.format_prompt(job.prompt))
                if index == 0:
                    job.prompt_tokens = len(ids)
                fit(job, lm.name, len(ids), lm.context_length)
            prefix = self.prefix_of(job.prompt)
            self.session.add(job.prompt, key=job.key, max_new_tokens=job.max_new_tokens, stop=job.stop,
                             shared_prefix=prefix)
            self.shared_prefix_requests += prefix is not None
        except (BadRequest, AdaFuseError) as exc:
            self.release(job)
            job.emit("error", exc if isinstance(exc, BadRequest) else BadRequest(str(exc)))
            return
        self.jobs[job.key] = job

    def step(self) -> None:
        finished = self.session.step()
        self.rounds += 1
        done = {key for key, _ in finished}
        for key, job in self.jobs.items():
            if job.stream and key not in done:
                text = streamable(self.session.partial(key), job.stop)
                if len(text) > len(job.sent) and text.startswith(job.sent):
                    job.emit("delta", text[len(job.sent):])
                    job.sent = text
        for key, output in finished:
            job = self.jobs.get(key)
            if job is not None:
                self.leave(job)
                job.emit("done", output)

    def leave(self, job: Job) -> None:
        self.jobs.pop(job.key, None)
        self.release(job)

    def release(self, job: Job) -> None:
        for lm in self.decoder.models:
            if hasattr(lm, "release"):
                lm.release(job.prompt)

    def fail_all(self, exc: Exception) -> None:
        """Every job in flight ends with `exc`; a fresh session replaces the old one."""
        for job in list(self.jobs.values()):
            self.leave(job)
            job.emit("error", exc)
        while True:
            try:
                kind, job = self.inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "add":
                job.emit("error", exc)
        if not self.stopping.is_set():
            self.session = self.decoder.session(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
