"""A request body as decoding parameters, or a `BadRequest` naming the field.

Fields the OpenAI API defines and a deterministic decoder cannot honour are refused
(`sampling.sampling_refusal`); fields it does not know are ignored, as OpenAI-compatible
servers do (clients send `seed`, `user`, `frequency_penalty`, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from adafuse.serve.sampling import sampling_refusal

ROLES = ("system", "user", "assistant")


class BadRequest(Exception):
    """A 400: `message` is one line; `param` the field it is about."""

    def __init__(self, message: str, param: Optional[str] = None, status: int = 400):
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


@dataclass
class Params:
    """What one request asks for: its prompts (one per choice), budget, stop, streaming."""

    prompts: list  # str, or chat.ChatPrompt
    max_new_tokens: int
    budget_field: Optional[str]  # the field that set max_new_tokens; None: the server's default
    stop: list[str]
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with usage
    trace: bool = False  # adafuse_trace: the rounds, in the response


def _budget(body: dict, names: tuple[str, ...], default: int) -> tuple[int, Optional[str]]:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"{name}={value!r} is not allowed; it must be an integer >= 1", name)
        return value, name
    return default, None


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise BadRequest(f"stop={stop!r} is not allowed; it must be a non-empty string or a list "
                         "of non-empty strings", "stop")
    return stop


def _flag(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{name}={value!r} is not allowed; it must be true or false", name)
    return value


def common(body: Any, default_budget: int, budget_names: tuple[str, ...]) -> Params:
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(body).__name__}", "body")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest(f"model={model!r} is not allowed; it must be a string", "model")
    refused = sampling_refusal(body)
    if refused is not None:
        raise BadRequest(refused[1], refused[0])
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest(f"stream_options={options!r} is not allowed; it must be an object", "stream_options")
    usage = bool(options and options.get("include_usage"))
    return Params([], *_budget(body, budget_names, default_budget), _stop(body), stream,
                  stream and usage, _flag(body, "adafuse_trace"))


def completion(body: Any, default_budget: int) -> Params:
    """POST /v1/completions: `prompt` is a string or a list of strings (one choice each)."""
    params = common(body, default_budget, ("max_tokens",))
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BadRequest(f"prompt={str(prompt)[:60]!r} is not allowed; it must be a string or a "
                         "non-empty list of strings (token ids are not accepted)", "prompt")
    for i, text in enumerate(prompts):
        if not text.strip():
            where = "prompt" if isinstance(prompt, str) else f"prompt[{i}]"
            raise BadRequest(f"{where} is empty; give the text to continue", where)
    if params.stream and len(prompts) > 1:
        raise BadRequest(f"stream=true takes one prompt, got a list of {len(prompts)}", "prompt")
    params.prompts = prompts
    return params


def chat(body: Any, default_budget: int) -> tuple[Params, list[dict]]:
    """POST /v1/chat/completions: `messages`, each {role, content}; content a string or a list
    of text parts. Returns the params (no prompts yet: each model renders the messages with its
    own template) and the messages as plain {role, content: str}."""
    params = common(body, default_budget, ("max_completion_tokens", "max_tokens"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(f"messages={str(messages)[:60]!r} is not allowed; it must be a non-empty "
                         "list of {role, content} objects", "messages")
    plain = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"messages[{i}] must be an object with role and content", f"messages[{i}]")
        role, content = message.get("role"), message.get("content")
        if role == "developer":  # the OpenAI API's newer name for system
            role = "system"
        if role not in ROLES:
            raise BadRequest(f"messages[{i}].role={role!r} is not allowed; allowed: {', '.join(ROLES)}",
                             f"messages[{i}].role")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise BadRequest(f"messages[{i}].content: only text parts ({{type: text, text}}) "
                                 "are supported", f"messages[{i}].content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise BadRequest(f"messages[{i}].content={content!r} is not allowed; it must be a string",
                             f"messages[{i}].content")
        plain.append({"role": role, "content": content})
    if plain[-1]["role"] == "assistant":
        raise BadRequest("the last message is the assistant's; the response continues a user or "
                         "system turn", f"messages[{len(plain) - 1}].role")
    return params, plain
