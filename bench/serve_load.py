"""Load test of `python -m adafuse.serve`: concurrent clients against one server, batched
(`batch_size=8`) against one request at a time (`batch_size=1`).

    .venv/bin/python bench/serve_load.py                         # embedded pair, 1/4/8/16 clients, 2 rounds
    .venv/bin/python bench/serve_load.py --requests 16 --clients 1,8 --max-tokens 16

Both servers are started at once, each on a free loopback port (the embedded pair, or
`--models`; arguments the script does not know go to both, e.g. `serve.prefix_min_chars=0`),
then for each client count that many threads send `--requests` completions in all (TriviaQA
questions, few-shot prompt, `stop=["\\n"]`) through the `openai` client, to one server then
the other, in ABBA order over `--repeats` rounds, so that a drift in the machine's load falls
on both alike. Printed per point: requests per minute over the wall time, latency
p50/p90/max; then, per client count, batching's speed-up in each round and their median."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompts(n: int) -> list[str]:
    """TriviaQA's few-shot prompt on its first n questions (the bundled dev file)."""
    head = (REPO / "tasks" / "triviaqa" / "prompt.txt").read_text(encoding="utf-8")
    rows = []
    with open(REPO / "tasks" / "triviaqa" / "data" / "dev.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line)["question"])
            if len(rows) == n:
                break
    return [f"{head}Question: {q}\nAnswer:" for q in rows]


def start(batch_size: int, models: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, "-m", "adafuse.serve", f"models={models}", f"batch_size={batch_size}",
            f"serve.port={port}", *extra]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}: {' '.join(argv)}")
        try:
            urllib.request.urlopen(url + "/health", timeout=5).read()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start in 900 s")


def load(url: str, clients: int, texts: list[str], max_tokens: int) -> dict:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=3600, max_retries=0)
    todo = list(enumerate(texts))
    lock = threading.Lock()
    latencies: list[float] = []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                _, prompt = todo.pop(0)
            began = time.perf_counter()
            client.completions.create(model="x", prompt=prompt, max_tokens=max_tokens, stop=["\n"])
            with lock:
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"requests": len(latencies), "wall_s": round(wall, 1), "rpm": round(60 * len(latencies) / wall, 1),
            "p50_s": round(statistics.median(ordered), 2), "p90_s": round(pick(0.9), 2),
            "max_s": round(ordered[-1], 2)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32, help="requests per point")
    parser.add_argument("--clients", default="1,4,8,16", help="concurrent clients, comma-separated")
    parser.add_argument("--batch-sizes", default="8,1", help="two server batch sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="ABBA rounds of each client count")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--models", default="smol_gemma")
    parser.add_argument("--json", help="also write the results here")
    args, extra = parser.parse_known_args(argv)
    texts = prompts(args.requests)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    servers = {}
    results = []
    try:
        for batch_size in sizes:  # both up at once: their points interleave (A B B A ...)
            servers[batch_size] = start(batch_size, args.models, extra)
        for _, url in servers.values():
            load(url, 1, texts[:2], args.max_tokens)  # warm-up
        for clients in [int(c) for c in args.clients.split(",")]:
            for rep in range(args.repeats):
                for batch_size in (sizes if rep % 2 == 0 else sizes[::-1]):
                    point = {"batch_size": batch_size, "clients": clients, "repeat": rep,
                             **load(servers[batch_size][1], clients, texts, args.max_tokens)}
                    print(json.dumps(point), flush=True)
                    results.append(point)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(120)
    if len(sizes) == 2:
        for clients in sorted({r["clients"] for r in results}):
            pairs = [(r["wall_s"], q["wall_s"]) for r in results for q in results
                     if r["clients"] == q["clients"] == clients and r["repeat"] == q["repeat"]
                     and r["batch_size"] == sizes[1] and q["batch_size"] == sizes[0]]
            ratios = [slow / fast for slow, fast in pairs]
            print(f"{clients} clients: batch {sizes[0]} over batch {sizes[1]}, requests per minute: "
                  + ", ".join(f"{x:.2f}x" for x in ratios) + f" (median {statistics.median(ratios):.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
