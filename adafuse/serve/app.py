"""The FastAPI application: the OpenAI routes over a `Scheduler`.

    POST /v1/completions       prompt (a string or a list), max_tokens, stop, stream
    POST /v1/chat/completions  messages (each model renders them with its chat template)
    GET  /v1/models            the ensemble as one model
    GET  /health

Each request is logged in one line (its route, status, tokens, finish reason, seconds), each
refusal in one line naming the field."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from adafuse.serve import requests as parse
from adafuse.serve.chat import ChatPrompt
from adafuse.serve.requests import BadRequest
from adafuse.serve.scheduler import Job, Scheduler

log = logging.getLogger("adafuse.serve")

class ClientGone(Exception):
    """The client closed the connection before its response was ready."""


FINISH = {"eos": "stop", "stop": "stop", "length": "length"}  # OpenAI knows these two


def finite(value):
    """JSON without inf/nan (a proposal a model could not score has score inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def trace_of(output, decoder) -> list[dict]:
    """The rounds as `python -m adafuse.show` shows them: every model's margins and decision,
    every proposal with its proposers, NLLs and score, the winner; and the one-line summary."""
    from adafuse.traceview import round_line, round_view

    names, gated = decoder.model_names, decoder.name != "fixed_span"
    return [finite({**round_view(r.to_dict(), names, gated), "line": round_line(r.to_dict(), names, gated)})
            for r in output.trace]


def error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, BadRequest):
        body = {"message": exc.message, "type": "invalid_request_error", "param": exc.param, "code": None}
        return JSONResponse({"error": body}, status_code=exc.status)
    return JSONResponse({"error": {"message": str(exc), "type": "server_error", "param": None,
                                   "code": None}}, status_code=500)


def build_app(decoder, *, model_id: str, batch_size: int, max_new_tokens: int,
              prefix_min_chars: int) -> FastAPI:
    scheduler = Scheduler(decoder, batch_size, max_new_tokens, prefix_min_chars)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(app):
        scheduler.start()
        log.info("serving %s (batch size %d) ", model_id, batch_size)
        yield
        left = scheduler.in_flight
        scheduler.stop(timeout=30)
        log.info("stopped; %d request(s) cancelled", left)

    app = FastAPI(title="adafuse", lifespan=lifespan)
    app.state.scheduler = scheduler

    async def body_of(request: Request):
        try:
            return await request.json()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the request body is not valid JSON", "body") from None

    def refused(request: Request, exc: Exception, started: float) -> JSONResponse:
        if isinstance(exc, BadRequest):
            log.warning("%s %s %d (%s): %s", request.method, request.url.path, exc.status,
                        exc.param or "-", exc.message)
        else:
            log.error("%s %s 500: %s", request.method, request.url.path, exc)
        return error_response(exc)

    def served(request: Request, jobs: list[Job], outputs: list, started: float) -> None:
        finish = ",".join(FINISH[o.finish_reason] for o in outputs)
        log.info("%s %s 200: %d prompt(s), %d prompt + %d completion tokens, finish %s, %.2f s",
                 request.method, request.url.path, len(jobs), sum(j.prompt_tokens for j in jobs),
                 sum(o.stats.new_tokens for o in outputs), finish, time.perf_counter() - started)

    def usage(jobs: list[Job], outputs: list) -> dict:
        prompt = sum(j.prompt_tokens for j in jobs)
        completion = sum(o.stats.new_tokens for o in outputs)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def wait(job: Job):
        """The job's next event; an error event raises."""
        kind, value = await job.events.get()
        if kind == "error":
            raise value
        return kind, value

    async def finish_all(request: Request, jobs: list[Job]) -> list:
        """Outputs of the jobs, in order; a client that goes away cancels them."""

        async def done(job):
            while True:
                kind, value = await wait(job)
                if kind == "done":
                    return value

        task = asyncio.gather(*(done(j) for j in jobs))
        while True:
            finished, _ = await asyncio.wait({task}, timeout=0.5)
            if finished:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                for job in jobs:
                    scheduler.cancel(job)
                raise ClientGone

    def submit(prompt, params: parse.Params) -> Job:
        job = Job(prompt, params.max_new_tokens, params.stop, params.stream, asyncio.get_running_loop(),
                  budget_field=params.budget_field)
        scheduler.submit(job)
        return job

    def choice(kind: str, index: int, text: str, finish, trace=None) -> dict:
        if kind == "chat":
            entry = {"index": index, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish, "logprobs": None}
        else:
            entry = {"index": index, "text": text, "finish_reason": finish, "logprobs": None}
        if trace is not None:
            entry["adafuse_trace"] = trace
        return entry

    async def respond(request: Request, kind: str, params: parse.Params, started: float):
        jobs = [submit(p, params) for p in params.prompts]
        rid = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]
        if params.stream:
            return StreamingResponse(stream(request, kind, rid, jobs[0], params, started),
                                     media_type="text/event-stream")
        outputs = await finish_all(request, jobs)
        served(request, jobs, outputs, started)
        choices = [choice(kind, i, o.text, FINISH[o.finish_reason],
                          trace_of(o, decoder) if params.trace else None) for i, o in enumerate(outputs)]
        return {"id": rid, "object": "chat.completion" if kind == "chat" else "text_completion",
                "created": int(time.time()), "model": model_id, "choices": choices,
                "usage": usage(jobs, outputs)}

    async def stream(request: Request, kind: str, rid: str, job: Job, params: parse.Params, started: float):
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"

        def chunk(text, finish=None, first=False, trace=None, **extra) -> str:
            if kind == "chat":
                delta = {"role": "assistant", "content": text} if first else ({"content": text} if text else {})
                entry = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            else:
                entry = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            if trace is not None:
                entry["adafuse_trace"] = trace
            body = {"id": rid, "object": obj, "created": int(time.time()), "model": model_id,
                    "choices": [entry], **extra}
            return f"data: {json.dumps(body)}\n\n"

        finished = False
        try:
            if kind == "chat":
                yield chunk("", first=True)
            while True:
                try:
                    event, value = await wait(job)
                except Exception as exc:
                    refused(request, exc, started)
                    yield f"data: {json.dumps(json.loads(error_response(exc).body))}\n\n"
                    finished = True
                    return
                if event == "delta":
                    yield chunk(value)
                    continue
                finished = True
                rest = value.text[len(job.sent):] if value.text.startswith(job.sent) else ""
                yield chunk(rest, FINISH[value.finish_reason],
                            trace=trace_of(value, decoder) if params.trace else None)
                if params.include_usage:
                    body = {"id": rid, "object": obj, "created": int(time.time()), "model": model_id,
                            "choices": [], "usage": usage([job], [value])}
                    yield f"data: {json.dumps(body)}\n\n"
                yield "data: [DONE]\n\n"
                served(request, [job], [value], started)
                return
        finally:
            if not finished:  # the client went away (or the server is stopping): free its place
                scheduler.cancel(job)

    async def handle(request: Request, kind: str):
        started = time.perf_counter()
        try:
            body = await body_of(request)
            if kind == "chat":
                params, messages = parse.chat(body, max_new_tokens)
                # every model renders the messages here, so one without a template is a 400 now
                rendered = [lm.render(messages) for lm in decoder.models]
                params.prompts = [ChatPrompt(rendered[0], messages)]
            else:
                params = parse.completion(body, max_new_tokens)
            return await respond(request, kind, params, started)
        except ClientGone:
            log.info("%s %s: client gone after %.2f s; its request was cancelled", request.method,
                     request.url.path, time.perf_counter() - started)
            return JSONResponse({"error": {"message": "client closed the request"}}, status_code=499)
        except Exception as exc:  # a BadRequest is a 400; anything else a 500, and the server stays up
            return refused(request, exc, started)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, "completion")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, "chat")

    @app.get("/v1/models")
    async def models():
        members = [{"name": lm.name, "context_length": lm.context_length} for lm in decoder.models]
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": created,
                                            "owned_by": "adafuse", "decoder": decoder.name,
                                            "members": members}]}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_id, "in_flight": scheduler.in_flight,
                "batch_size": batch_size, "shared_prefix_requests": scheduler.shared_prefix_requests}

    return app
