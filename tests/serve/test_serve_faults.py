"""Bad requests are 400s naming the field and leave the server up; bad config exits 2 before
any model loads; a client that goes away frees its place; SIGTERM exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest

from adafuse.decoding import AdaFuse
from tests.tiny_hf import PROMPTS

from tests.serve.conftest import ENV, REPO


def post(server, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("extra, field", [
    ({"temperature": 0.7}, "temperature"), ({"top_p": 0.5}, "top_p"), ({"n": 2}, "n"),
    ({"logprobs": 2}, "logprobs"), ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": "x"}, "max_tokens"),
    ({"stop": [""]}, "stop"), ({"prompt": 3}, "prompt"), ({"prompt": "  "}, "prompt"),
    ({"stream": "yes"}, "stream"),
])
def test_bad_completion_is_400_naming_the_field(client, server, extra, field):
    body = {"prompt": PROMPTS[0], "max_tokens": 4, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny-pair", **{k: v for k, v in body.items() if k != "prompt"},
                                  prompt=body["prompt"])
    error = caught.value.body
    assert error["param"] == field and field in error["message"] and "\n" not in error["message"]
    assert server.health()["status"] == "ok"


def test_bad_chat_and_body(client, server):
    for messages, field in (([], "messages"), ([{"role": "robot", "content": "hi"}], "messages[0].role"),
                            ([{"role": "user", "content": 5}], "messages[0].content")):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny-pair", messages=messages)
        assert caught.value.body["param"] == field
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="tiny-pair", messages=[{"role": "user", "content": "hi"}],
                                       temperature=1.0)
    status, body = post(server, "/v1/completions", b"{not json")
    assert status == 400 and body["error"]["param"] == "body"
    status, body = post(server, "/v1/completions", b"[1, 2]")
    assert status == 400 and body["error"]["param"] == "body"
    # unknown fields are ignored; greedy values of the sampling fields pass
    got = client.completions.create(model="tiny-pair", prompt=PROMPTS[0], max_tokens=3, temperature=0,
                                    top_p=1, n=1, seed=3, extra_body={"frobnicate": True})
    assert got.choices[0].finish_reason in ("stop", "length")
    assert server.text().count("400 (") >= 5  # one log line a refusal


def test_prompt_longer_than_a_context_is_400(client, server):
    words = " ".join(f"w{i % 97}x{i % 13}" for i in range(6000))
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny-pair", prompt=words, max_tokens=2)
    message = caught.value.body["message"]
    assert "tiny-llama" in message or "tiny-gemma" in message
    assert "context is 4096 tokens" in message and caught.value.body["param"] == "prompt"
    assert client.completions.create(model="tiny-pair", prompt=PROMPTS[0], max_tokens=2).choices
    assert server.health()["in_flight"] == 0


def near_full_prompt(models, room: int) -> tuple[str, dict]:
    """A prompt that leaves at least `room` tokens of the 4096-token context in every member,
    and fewer than `room` + 8 in the tightest; with each member's room left."""
    def rooms(n):
        text = " ".join(f"w{i % 97}x{i % 13}" for i in range(n))
        return text, {lm.name: lm.context_length - len(lm.encode(lm.format_prompt(text))) for lm in models}

    low, high = 1, 6000
    while low < high:  # the most words that leave `room`
        mid = (low + high + 1) // 2
        low, high = (mid, high) if min(rooms(mid)[1].values()) >= room else (low, mid - 1)
    text, left = rooms(low)
    assert room <= min(left.values()) < room + 8
    return text, left


def test_prompt_and_max_tokens_past_a_context_is_400(client, server, local_models):
    """prompt + max_tokens > a member's context: a 400 naming max_tokens, the member and its
    limit; without max_tokens the server's default budget is cut to the room left."""
    prompt, left = near_full_prompt(local_models, 3)
    tight = min(left.values())
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny-pair", prompt=prompt, max_tokens=tight + 1)
    error = caught.value.body
    over = [name for name, room in left.items() if room < tight + 1]
    assert error["param"] == "max_tokens" and f"model {over[0]!r}" in error["message"]
    assert "context of 4096 tokens" in error["message"] and f"at most {tight}" in error["message"]
    assert "\n" not in error["message"]
    got = client.completions.create(model="tiny-pair", prompt=prompt)  # the server's default: 8
    assert f"budget is cut from 8 to {tight} tokens" in server.text()
    # AdaFuse checks the budget after each round, so a round's span can run past it
    assert got.choices[0].text == AdaFuse(local_models).generate(prompt, max_new_tokens=tight).text
    assert server.health()["in_flight"] == 0


def test_fit_keeps_a_budget_that_fits():
    import asyncio

    from adafuse.serve.scheduler import Job, fit

    job = Job("hi", 5, [], False, asyncio.new_event_loop(), budget_field="max_tokens")
    fit(job, "m", 10, 15)
    fit(job, "m", 10, None)
    assert job.max_new_tokens == 5
    job.budget_field = None
    fit(job, "m", 12, 15)
    assert job.max_new_tokens == 3
    job.loop.close()


def test_client_that_goes_away_frees_its_place(server):
    body = json.dumps({"prompt": "The answer is", "max_tokens": 3000, "stream": True}).encode()
    request = urllib.request.Request(server.url + "/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    response = urllib.request.urlopen(request, timeout=300)
    assert response.readline().startswith(b"data: ")  # decoding has started
    response.close()
    deadline = time.monotonic() + 120
    while server.health()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.health()["in_flight"] == 0
    assert "cancelled (client gone)" in server.text()


@pytest.mark.parametrize("override, words", [
    ("theta_delta=2", "theta_delta"), ("serve.port=70000", "serve.port"), ("serve.prt=1", "'port'"),
    ("batch_size=0", "batch_size"), ("models=nope", "unknown model set"),
    ("serve.prefix_min_chars=-1", "serve.prefix_min_chars=-1 is not allowed"),
])
def test_bad_config_exits_2_before_loading(tiny_conf, override, words):
    argv = [sys.executable, "-m", "adafuse.serve", f"hydra.searchpath=[file://{tiny_conf}]", "models=tiny", override]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, **ENV})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert "loaded" not in proc.stdout


def test_port_in_use_exits_2(start_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        srv = start_server(port=taken.getsockname()[1])
        assert srv.proc.wait(300) == 2
    assert "cannot listen on" in srv.text() and "loaded" not in srv.text()


def test_sigterm_finishes_in_flight_and_exits_0(start_server):
    srv = start_server("serve.grace_seconds=60").wait_ready()
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", timeout=300, max_retries=0)
    got = {}

    def ask():
        got["out"] = client.completions.create(model="tiny-pair", prompt="The answer is", max_tokens=40)

    thread = threading.Thread(target=ask)
    thread.start()
    deadline = time.monotonic() + 120
    while srv.health()["in_flight"] == 0 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(300) == 0
    thread.join(60)
    assert got["out"].choices[0].finish_reason in ("stop", "length")  # finished within the grace period
    assert "stopped; 0 request(s) cancelled" in srv.text()


def test_sigterm_cancels_after_the_grace_period(start_server):
    srv = start_server("serve.grace_seconds=0").wait_ready()
    body = json.dumps({"prompt": "The answer is", "max_tokens": 3000, "stream": True}).encode()
    request = urllib.request.Request(srv.url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    response = urllib.request.urlopen(request, timeout=300)
    assert response.readline().startswith(b"data: ")
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(300) == 0
    response.close()
