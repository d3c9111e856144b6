"""Load test of `python -m adafuse.serve`: concurrent clients against one server, batched
(`batch_size=8`) against one request at a time (`batch_size=1`).

    .venv/bin/python bench/serve_load.py                         # embedded pair, 1/4/16 clients
    .venv/bin/python bench/serve_load.py --requests 16 --clients 1,8 --max-tokens 16

For each batch size a server is started on a free loopback port (the embedded pair, or
`--models`), then for each client count that many threads send `--requests` completions in
all (TriviaQA questions, few-shot prompt, `stop=["\\n"]`) through the `openai` client. Printed
per point: requests per minute over the wall time, latency p50/p90/max, and the speed-up of
batching at each client count. Nothing else should run on the machine meanwhile."""

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
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients, comma-separated")
    parser.add_argument("--batch-sizes", default="8,1", help="server batch sizes, comma-separated")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--models", default="smol_gemma")
    parser.add_argument("--json", help="also write the results here")
    args, extra = parser.parse_known_args(argv)
    texts = prompts(args.requests)
    results = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        proc, url = start(batch_size, args.models, extra)
        try:
            load(url, 1, texts[:1], args.max_tokens)  # warm-up
            for clients in [int(c) for c in args.clients.split(",")]:
                point = {"batch_size": batch_size, "clients": clients, **load(url, clients, texts, args.max_tokens)}
                print(json.dumps(point), flush=True)
                results.append(point)
        finally:
            proc.terminate()
            proc.wait(120)
    by = {(r["batch_size"], r["clients"]): r["rpm"] for r in results}
    for clients in sorted({r["clients"] for r in results}):
        sizes = sorted({r["batch_size"] for r in results})
        if len(sizes) == 2 and all((b, clients) in by for b in sizes):
            print(f"{clients} clients: batch {sizes[1]} / batch {sizes[0]} = "
                  f"{by[(sizes[1], clients)] / by[(sizes[0], clients)]:.2f}x requests per minute")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
