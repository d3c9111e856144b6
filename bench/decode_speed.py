"""Decoding speed of AdaFuse against single-model greedy, side by side in one process.

    python bench/decode_speed.py                      # the issue's sizes (recompute takes long)
    python bench/decode_speed.py --trivia 5 --gsm8k 3 --recompute 1 --recompute-tokens 24
    python bench/decode_speed.py --dtypes bfloat16 --profile

Systems, on the same prompts with each task's shared few-shot prefix prefilled once per model,
once per dtype of --dtypes (the pair is loaded again in each): greedy SmolLM2, greedy Gemma 3,
AdaFuse cached at batch 1 and at --batch; in float32 only, AdaFuse recompute (re-encodes
everything per call, as the published code does) on the first GSM8K questions with a small
token cap, compared per generated word with cached AdaFuse on the same questions and cap.
Per system: median seconds per question, forwards and tokens fed per generated word, the
host share of AdaFuse's decodes (time outside model forwards) and the peak resident memory
sampled while that system ran. --profile: one batched AdaFuse decode under torch.profiler.
--counts N: on N TriviaQA questions at --counts-tokens, in a separate untimed decode per system
(greedy each model, AdaFuse folded and in phases) at batch 1 and --batch, the torch ops, host
reads and forwards per word (bench/counts.py) and issue 25's ratios on them.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

from adafuse import AdaFuse, Greedy, load_model
from adafuse.tasks import get_task

sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed_report, when imported by a test
from counts import per_word  # noqa: E402
from speed_report import print_counts, print_profile, print_report  # noqa: E402

PAIR = "smollm2-135m-instruct,gemma3-270m"
ADAFUSE = dict(theta_delta=0.7, max_words=3, num_candidates=3)
DTYPES = ("float32", "bfloat16")


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


def measure(name, decoder, task, docs, max_new_tokens, batch_size=1, dtype=""):
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
        "system": name, "task": task.name, "dtype": dtype, "n": len(outs),
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
        # per model: {kind: (forwards, seconds)} as counted, for the host share
        "kind_seconds": {t.name: {kind: (n, sec) for kind, (n, sec) in t.by_kind.items()}
                         for t in decoder.last_totals},
    }


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trivia", type=int, default=20, help="TriviaQA questions")
    ap.add_argument("--gsm8k", type=int, default=10, help="GSM8K questions")
    ap.add_argument("--gsm8k-tokens", type=int, default=256, help="max_new_tokens on GSM8K")
    ap.add_argument("--recompute", type=int, default=3, help="GSM8K questions for recompute mode (float32)")
    ap.add_argument("--recompute-tokens", type=int, default=48, help="token cap of that comparison")
    ap.add_argument("--batch", type=int, default=8, help="batch size of the batched AdaFuse row")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated, each measured in turn")
    ap.add_argument("--models", default=PAIR, help="the pair, two comma-separated model specs")
    ap.add_argument("--profile", action="store_true",
                    help="profile one batched AdaFuse TriviaQA decode (bfloat16 if measured) and print "
                         "its top operators")
    ap.add_argument("--counts", type=int, default=8, help="TriviaQA questions of the counts table (0: none)")
    ap.add_argument("--counts-tokens", type=int, default=32, help="max_new_tokens of the counted decodes")
    ap.add_argument("--profile-tokens", type=int, default=0,
                    help="token cap of the profiled decode (0: the task's; the profiler's parse of a "
                         "long decode takes minutes)")
    args = ap.parse_args(argv)
    args.dtype_list = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in args.dtype_list if d not in DTYPES]
    if bad or not args.dtype_list:
        ap.error(f"--dtypes {args.dtypes!r}; allowed: a comma-separated list of {', '.join(DTYPES)}")
    args.pair = [m.strip() for m in args.models.split(",")]
    if len(args.pair) != 2 or not all(args.pair):
        ap.error(f"--models {args.models!r}; allowed: two model specs separated by a comma")
    return args


def measure_dtype(args, dtype: str):
    """Every system on the same questions with the pair loaded in `dtype`; the rows, and the
    profile (printed at the end) where --profile asks for it in this dtype."""
    pair = [load_model(n, device=args.device, dtype=dtype) for n in args.pair]
    rows = []
    for task_name, n, budget in (("triviaqa", args.trivia, None), ("gsm8k", args.gsm8k, args.gsm8k_tokens)):
        if n <= 0:
            continue
        task = get_task(task_name)
        docs = task.docs(limit=n)
        budget = budget or task.max_new_tokens
        rows.append(measure("greedy smollm2", Greedy(pair, model_index=0), task, docs, budget, dtype=dtype))
        rows.append(measure("greedy gemma3", Greedy(pair, model_index=1), task, docs, budget, dtype=dtype))
        rows.append(measure("adafuse cached", AdaFuse(pair, **ADAFUSE), task, docs, budget, dtype=dtype))
        if args.batch > 1:
            rows.append(measure(f"adafuse cached b{args.batch}", AdaFuse(pair, **ADAFUSE), task, docs,
                                budget, batch_size=args.batch, dtype=dtype))
    if args.recompute > 0 and dtype == "float32":  # the oracle: float32 only, and slow
        task = get_task("gsm8k")
        docs = task.docs(limit=args.recompute)
        cap = args.recompute_tokens
        rows.append(measure(f"adafuse cached @{cap}", AdaFuse(pair, **ADAFUSE), task, docs, cap, dtype=dtype))
        rows.append(measure(f"adafuse recompute @{cap}", AdaFuse(pair, mode="recompute", **ADAFUSE),
                            task, docs, cap, dtype=dtype))
    prof = profile(args, pair) if args.profile and dtype == profiled_dtype(args) else None
    counted = count_systems(args, pair) if args.counts > 0 and dtype == args.dtype_list[0] else []
    return rows, prof, counted


def count_systems(args, pair) -> list[dict]:
    """Ops, host reads and forwards per word of each system at batch 1 and --batch."""
    task = get_task("triviaqa")
    prompts = [task.prompt(d) for d in task.docs(limit=args.counts)]
    systems = [("greedy smollm2", lambda: Greedy(pair, model_index=0)),
               ("greedy gemma3", lambda: Greedy(pair, model_index=1)),
               ("adafuse folded", lambda: AdaFuse(pair, engine={"fold_scoring": True}, **ADAFUSE)),
               ("adafuse phases", lambda: AdaFuse(pair, engine={"fold_scoring": False}, **ADAFUSE))]
    out = []
    for batch in sorted({1, args.batch}):
        for name, make in systems:
            counted = per_word(make(), prompts, max_new_tokens=args.counts_tokens, stop=task.stop,
                               shared_prefix=task.shared_prefix, batch_size=batch)
            out.append({"system": name, "batch": batch, **counted})
    return out


def release_memory() -> None:
    """Free what the last pair held and hand it back to the OS, so that the next dtype's peak
    RSS does not include it (glibc keeps freed heap otherwise: 1.7 GB after the float32 pair)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def profiled_dtype(args) -> str:
    return "bfloat16" if "bfloat16" in args.dtype_list else args.dtype_list[-1]


def profile(args, pair):
    """One batched AdaFuse decode of the TriviaQA questions under torch.profiler (CPU ops)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    task = get_task("triviaqa")
    prompts = [task.prompt(d) for d in task.docs(limit=args.batch)]
    decoder = AdaFuse(pair, **ADAFUSE)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        decoder.generate_batch(prompts, max_new_tokens=args.profile_tokens or task.max_new_tokens, stop=task.stop,
                               shared_prefix=task.shared_prefix, batch_size=args.batch)
    return prof, len(prompts)


def main(argv=None) -> None:
    args = parse_args(argv)
    rows, profiled, counted = [], None, []
    for dtype in args.dtype_list:
        more, prof, counts = measure_dtype(args, dtype)
        rows += more
        counted += counts
        profiled = prof or profiled
        release_memory()  # the pair of this dtype goes before the next one loads
    if args.recompute > 0 and "float32" not in args.dtype_list:
        print("\n(recompute comparison skipped: it runs in float32 only, and --dtypes has no float32)")
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {args.device}, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print_report(rows, args.batch, args.recompute_tokens)
    if counted:
        print(f"\n({args.dtype_list[0]})", end="")
        print_counts(counted)
    if profiled is not None:
        prof, n = profiled
        print(f"\nprofile: one AdaFuse decode of {n} TriviaQA questions at batch {args.batch}, "
              f"{profiled_dtype(args)} (top operators by self CPU time; the profiler's own overhead "
              "inflates small ops)")
        print_profile(prof)


if __name__ == "__main__":
    main()
