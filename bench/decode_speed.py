"""Decoding speed of AdaFuse against single-model greedy, side by side in one process.

    python bench/decode_speed.py                      # the issue's sizes (recompute takes long)
    python bench/decode_speed.py --trivia 5 --gsm8k 3 --recompute 1 --recompute-tokens 24

Systems, on the same prompts with each task's shared few-shot prefix prefilled once per model:
greedy SmolLM2, greedy Gemma 3, AdaFuse cached; and AdaFuse recompute (re-encodes everything
per call, as the published code does) on the first GSM8K questions with a small token cap,
compared per generated word with cached AdaFuse on the same questions and cap.
Per system: median seconds per question, forwards and tokens fed per generated word, and the
peak resident memory sampled while that system ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time

import torch

from adafuse import AdaFuse, Greedy, load_model
from adafuse.tasks import get_task


class PeakRSS:
    """Peak resident set size of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def measure(name, decoder, task, docs, max_new_tokens, batch_size=1):
    prompts = [task.prompt(d) for d in docs]
    started = time.perf_counter()
    with PeakRSS() as rss:
        outs = decoder.generate_batch(prompts, max_new_tokens=max_new_tokens, stop=task.stop,
                                      shared_prefix=task.shared_prefix, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    words = max(1, sum(o.stats.words for o in outs))
    # real model calls: a batched forward counts once however many prompts it serves
    forwards = sum(t.forwards for t in decoder.last_totals)
    tokens = sum(t.tokens_fed for t in decoder.last_totals)
    return {
        "system": name, "task": task.name, "n": len(outs),
        "s_per_q": statistics.median(o.stats.seconds for o in outs),
        "seconds": elapsed,
        "words": words,
        "fwd_per_word": forwards / words,
        "tok_per_word": tokens / words,
        "s_per_word": elapsed / words,
        "peak_rss_gb": rss.peak / 2**30,
        "texts": [o.text for o in outs],
        # per model: {kind: (forwards per word, ms per forward)}, where the time goes
        "kinds": {t.name: {kind: (n / words, 1000 * sec / n) for kind, (n, sec) in sorted(t.by_kind.items()) if n}
                  for t in decoder.last_totals},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trivia", type=int, default=20, help="TriviaQA questions")
    ap.add_argument("--gsm8k", type=int, default=10, help="GSM8K questions")
    ap.add_argument("--gsm8k-tokens", type=int, default=256, help="max_new_tokens on GSM8K")
    ap.add_argument("--recompute", type=int, default=3, help="GSM8K questions for recompute mode")
    ap.add_argument("--recompute-tokens", type=int, default=48, help="token cap of that comparison")
    ap.add_argument("--batch", type=int, default=8, help="batch size of the batched AdaFuse row")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()

    pair = [load_model(n, device=args.device, dtype=args.dtype)
            for n in ("smollm2-135m-instruct", "gemma3-270m")]
    ada = dict(theta_delta=0.7, max_words=3, num_candidates=3)
    rows = []
    for task_name, n, budget in (("triviaqa", args.trivia, None), ("gsm8k", args.gsm8k, args.gsm8k_tokens)):
        if n <= 0:
            continue
        task = get_task(task_name)
        docs = task.docs(limit=n)
        budget = budget or task.max_new_tokens
        rows.append(measure("greedy smollm2", Greedy(pair, model_index=0), task, docs, budget))
        rows.append(measure("greedy gemma3", Greedy(pair, model_index=1), task, docs, budget))
        rows.append(measure("adafuse cached", AdaFuse(pair, **ada), task, docs, budget))
        if args.batch > 1:
            rows.append(measure(f"adafuse cached b{args.batch}", AdaFuse(pair, **ada), task, docs,
                                budget, batch_size=args.batch))
    if args.recompute > 0:
        task = get_task("gsm8k")
        docs = task.docs(limit=args.recompute)
        cap = args.recompute_tokens
        rows.append(measure(f"adafuse cached @{cap}", AdaFuse(pair, **ada), task, docs, cap))
        rows.append(measure(f"adafuse recompute @{cap}", AdaFuse(pair, mode="recompute", **ada),
                            task, docs, cap))

    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}")
    head = f"{'task':<9} {'system':<26} {'n':>3} {'s/q (med)':>10} {'s/word':>7} {'fwd/word':>9} {'tok/word':>9} {'peak RSS':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['task']:<9} {r['system']:<26} {r['n']:>3} {r['s_per_q']:>10.2f} {r['s_per_word']:>7.3f} "
              f"{r['fwd_per_word']:>9.2f} {r['tok_per_word']:>9.1f} {r['peak_rss_gb']:>7.2f} GB")

    print("\nwhere the forwards go, per model: kind forwards/word @ ms/forward (prefill: a prompt's own "
          "tokens, or a re-encode after a commit; step: one token per row (greedy's step, AdaFuse's "
          "branches); score: proposals of other models; step+score: both in one forward; recompute: "
          "everything re-encoded)")
    for r in rows:
        for model, kinds in r["kinds"].items():
            parts = "  ".join(f"{kind} {n:.2f} @{ms:.0f}" for kind, (n, ms) in kinds.items())
            print(f"  {r['task']:<9} {r['system']:<26} {model:<24} {parts}")

    by = {(r["task"], r["system"]): r for r in rows}
    print("\nratios (same questions, same run):")
    for task_name in ("triviaqa", "gsm8k"):
        a, b = by.get((task_name, "greedy smollm2")), by.get((task_name, "greedy gemma3"))
        c = by.get((task_name, "adafuse cached"))
        if a and b and c:
            ratio = c["seconds"] / (a["seconds"] + b["seconds"])
            print(f"  {task_name}: AdaFuse cached / (greedy A + greedy B) time = {ratio:.2f}x  (target <= 1.5x)")
        b = by.get((task_name, f"adafuse cached b{args.batch}"))
        if c and b:
            print(f"  {task_name}: throughput batch {args.batch} / batch 1 = {c['seconds'] / b['seconds']:.2f}x"
                  "  (target >= 2x)")
    cap = args.recompute_tokens
    c, r = by.get(("gsm8k", f"adafuse cached @{cap}")), by.get(("gsm8k", f"adafuse recompute @{cap}"))
    if c and r:
        print(f"  gsm8k @{cap}: recompute / cached tokens fed per word = "
              f"{r['tok_per_word'] / c['tok_per_word']:.1f}x  (target >= 50x)")
        print(f"  gsm8k @{cap}: recompute / cached seconds per word = "
              f"{r['s_per_word'] / c['s_per_word']:.1f}x  (target >= 10x)")
        same = sum(x == y for x, y in zip(c["texts"], r["texts"]))
        print(f"  gsm8k @{cap}: identical texts cached vs recompute: {same}/{len(c['texts'])}")


if __name__ == "__main__":
    main()
