"""The server through the official `openai` client: completions, chat, streaming, traces,
concurrent requests; a completion equals the decoder's own `generate` on the same prompt."""

from __future__ import annotations

import json
import threading
import urllib.request

from adafuse.decoding import AdaFuse
from adafuse.serve.chat import ChatPrompt
from tests.tiny_hf import PROMPTS

MESSAGES = [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Which British king married Mary of Teck?"}]


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["tiny-pair"]
    health = server.health()
    assert health["status"] == "ok" and health["batch_size"] == 4


def test_completion_equals_generate(client, local_models):
    for prompt in PROMPTS:
        got = client.completions.create(model="tiny-pair", prompt=prompt, max_tokens=8, stop=["\n"])
        want = AdaFuse(local_models).generate(prompt, max_new_tokens=8, stop=["\n"])
        choice = got.choices[0]
        assert choice.text == want.text
        assert choice.finish_reason == {"eos": "stop", "stop": "stop", "length": "length"}[want.finish_reason]
        assert got.usage.prompt_tokens == len(local_models[0].encode(prompt))
        assert got.usage.completion_tokens == want.stats.new_tokens
        assert got.usage.total_tokens == got.usage.prompt_tokens + got.usage.completion_tokens


def test_prompt_list_gives_one_choice_each(client, local_models):
    got = client.completions.create(model="tiny-pair", prompt=PROMPTS, max_tokens=6)
    want = [AdaFuse(local_models).generate(p, max_new_tokens=6).text for p in PROMPTS]
    assert [c.index for c in got.choices] == [0, 1]
    assert [c.text for c in got.choices] == want


def test_chat_renders_each_models_template(client, local_models):
    got = client.chat.completions.create(model="tiny-pair", messages=MESSAGES, max_tokens=8)
    rendered = [lm.render(MESSAGES) for lm in local_models]
    assert rendered[0].startswith("<|system|>") and rendered[1].startswith("<bos><start_of_turn>system")
    want = AdaFuse(local_models).generate(ChatPrompt(rendered[0], MESSAGES), max_new_tokens=8)
    assert got.choices[0].message.role == "assistant"
    assert got.choices[0].message.content == want.text
    assert got.usage.prompt_tokens == len(local_models[0].tokenizer(rendered[0], add_special_tokens=False)["input_ids"])


def test_chat_template_encodes_one_bos(local_models):
    """A rendered template holds BOS already: it is not added a second time."""
    gemma = local_models[1]
    prompt = ChatPrompt("x", MESSAGES)
    text = gemma.format_prompt(prompt)
    ids = gemma.encode(text)
    assert ids[0] == gemma.tokenizer.bos_token_id and ids[1] != gemma.tokenizer.bos_token_id
    gemma.release(prompt)
    assert id(prompt) not in gemma.rendered
    gemma.rendered.clear()  # other tests' in-process chat decodes registered theirs
    assert gemma.encode(text)[:2] == [gemma.tokenizer.bos_token_id] * 2
    assert gemma.encode("Question:")[0] == gemma.tokenizer.bos_token_id  # a completion prompt: BOS added


def test_streaming_equals_whole(client):
    prompt = "The answer is"  # the tiny pair decodes it in several rounds
    whole = client.completions.create(model="tiny-pair", prompt=prompt, max_tokens=12,
                                      extra_body={"adafuse_trace": True}).choices[0]
    assert len(whole.model_extra["adafuse_trace"]) >= 2
    chunks = list(client.completions.create(model="tiny-pair", prompt=prompt, max_tokens=12, stream=True,
                                            stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == whole.text
    assert len(texts) >= 2  # spans as they were decided, then the last piece
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1

    chat = client.chat.completions.create(model="tiny-pair", messages=MESSAGES, max_tokens=8)
    parts = list(client.chat.completions.create(model="tiny-pair", messages=MESSAGES, max_tokens=8, stream=True))
    assert parts[0].choices[0].delta.role == "assistant"
    assert "".join(p.choices[0].delta.content or "" for p in parts) == chat.choices[0].message.content
    assert parts[-1].choices[0].finish_reason == chat.choices[0].finish_reason


def test_stream_is_server_sent_events(server):
    body = json.dumps({"model": "tiny-pair", "prompt": PROMPTS[0], "max_tokens": 4, "stream": True}).encode()
    request = urllib.request.Request(server.url + "/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.read().decode().split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "text_completion"


def test_trace_on_request(client):
    plain = client.completions.create(model="tiny-pair", prompt=PROMPTS[0], max_tokens=6)
    assert "adafuse_trace" not in (plain.choices[0].model_extra or {})
    got = client.completions.create(model="tiny-pair", prompt=PROMPTS[0], max_tokens=6,
                                    extra_body={"adafuse_trace": True})
    rounds = got.choices[0].model_extra["adafuse_trace"]
    assert rounds and rounds[0]["line"].startswith("round  0:")
    first = rounds[0]
    assert len(first["models"]) == 2 and all("margins" in m for m in first["models"])
    winners = [p for p in first["proposals"] if p["winner"]]
    assert len(winners) == 1 and set(winners[0]["nll"]) == {m["label"] for m in first["models"]}
    assert "".join(next(p["text"] for p in r["proposals"] if p["winner"]) for r in rounds).startswith(
        got.choices[0].text)


def test_concurrent_requests_from_threads(client, server):
    prompts = [PROMPTS[i % 2] + " " * (i // 2) for i in range(6)]  # different prompts, some alike
    alone = [client.completions.create(model="tiny-pair", prompt=p, max_tokens=8).choices[0].text
             for p in prompts]
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        out = client.completions.create(model="tiny-pair", prompt=prompts[i], max_tokens=8)
        results[i] = out.choices[0].text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [results.get(i) for i in range(len(prompts))] == alone
    assert server.health()["in_flight"] == 0
    assert server.text().count("POST /v1/completions 200") >= 2 * len(prompts)


HEADER = "".join(f"Question: what is {a} plus {a}?\nAnswer: {2 * a}\n\n" for a in range(1, 9))  # few-shot, 8 lines


def test_a_shared_few_shot_header_is_reused_and_changes_no_answer(client, server, local_models):
    """Requests that start alike get the start prefilled once (serve.prefix_min_chars) and answer
    as `generate` does on each prompt alone, when they come one by one and at once."""
    prompts = [HEADER + f"Question: {q}\nAnswer:" for q in ("who wrote Hamlet?", "what is 9 plus 9?",
                                                              "where is Paris?", "who painted the Mona Lisa?")]
    want = [AdaFuse(local_models).generate(p, max_new_tokens=8, stop=["\n"]).text for p in prompts]
    before = server.health()["shared_prefix_requests"]
    first = [client.completions.create(model="tiny-pair", prompt=p, max_tokens=8, stop=["\n"]).choices[0].text
             for p in prompts[:2]]
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        results[i] = client.completions.create(model="tiny-pair", prompt=prompts[i], max_tokens=8,
                                               stop=["\n"]).choices[0].text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert first == want[:2] and [results.get(i) for i in range(len(prompts))] == want
    assert server.health()["shared_prefix_requests"] - before >= len(prompts)  # all but the very first
