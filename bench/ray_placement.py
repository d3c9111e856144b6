"""Members in process against members as Ray actors (engine/ray_member.py), on the tiny pair.

    python bench/ray_placement.py                     # 200 calls, 16 questions, batch 1 and 8
    python bench/ray_placement.py --calls 50 --questions 8 --reps 1

1. Per-call overhead: the median time of one protocol round trip on the tiny Llama, in process
   and in a Ray actor: `contexts` of one prompt (no forward), and `open_rows` + one `step`
   of one row (one forward of one token).
2. AdaFuse seconds per generated word on TriviaQA questions, batch 1 and --batch: in process
   (fold auto, i.e. folded on CPU; and unfolded) and Ray members (unfolded), the median of
   --reps interleaved repetitions; the texts must be the same in every placement.
The driver and each actor run --threads torch threads. Prints the CPU and the load first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tiny pair is built by the tests' own helper

from adafuse import AdaFuse, load_model  # noqa: E402
from adafuse.decoding.engine import open_engine  # noqa: E402
from adafuse.decoding.engine.ray_member import connect, load_member  # noqa: E402
from adafuse.decoding.output import ModelCost  # noqa: E402
from tests.tiny_hf import build as build_tiny  # noqa: E402


def machine() -> str:
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout
    return f"{cpu.split(':', 1)[-1].strip()}, {os.cpu_count()} logical CPUs; uptime: {load.strip()}"


def call_overhead(lm, calls: int) -> dict:
    """Median milliseconds of a `contexts` and of an `open_rows` + `step` round trip."""
    engine = open_engine(lm, ModelCost(lm.name), "cached")
    engine.add(0, lm.encode("Question: Who was the next British Prime Minister?\nAnswer:"), ModelCost(lm.name))
    token = engine.contexts([0])[0].ids[0]
    out = {}
    for name, run in (("contexts", lambda: engine.contexts([0])),
                      ("open_rows+step", lambda: engine.open_rows([0]).step([0], [token]))):
        run()  # warm
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        out[name] = 1000 * statistics.median(times)
    return out


def decode(models, prompts, batch: int, max_new_tokens: int, fold) -> tuple[float, int, list[str]]:
    decoder = AdaFuse(models, engine={"fold_scoring": fold})
    started = time.perf_counter()
    outs = decoder.generate_batch(prompts, max_new_tokens=max_new_tokens, stop=["\n"], batch_size=batch)
    return time.perf_counter() - started, sum(o.stats.words for o in outs), [o.text for o in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    root = Path(tempfile.mkdtemp(prefix="ray-placement-"))
    folders = [str(build_tiny(kind, root / kind, seed=0)) for kind in ("llama", "gemma")]
    local = [load_model(f, device="cpu") for f in folders]
    connect(num_cpus=os.cpu_count())
    remote = [load_member(f, device="cpu", threads=args.threads, num_cpus=0.5) for f in folders]

    overhead = {"in-process": call_overhead(local[0], args.calls), "ray": call_overhead(remote[0], args.calls)}
    print(f"\nper-call round trip, tiny llama, median of {args.calls} (ms):")
    for name in overhead["in-process"]:
        a, b = overhead["in-process"][name], overhead["ray"][name]
        print(f"  {name:15s} in-process {a:8.3f}  ray {b:8.3f}  added {b - a:8.3f}")

    with open(ROOT / "tasks" / "triviaqa" / "data" / "dev.jsonl", encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for _, line in zip(range(args.questions), fh)]
    prompts = [f"Question: {q}\nAnswer:" for q in questions]
    systems = {"in-process (folded)": (local, None), "in-process (unfolded)": (local, False),
               "ray (unfolded)": (remote, None)}
    print(f"\nAdaFuse on {len(prompts)} questions, up to {args.max_new_tokens} tokens, "
          f"median of {args.reps} interleaved reps (ms per word):")
    for batch in (1, args.batch):
        per_word: dict[str, list[float]] = {name: [] for name in systems}
        texts = {}
        for _ in range(args.reps):
            for name, (models, fold) in systems.items():
                seconds, words, texts[name] = decode(models, prompts, batch, args.max_new_tokens, fold)
                per_word[name].append(1000 * seconds / max(words, 1))
        assert len({tuple(t) for t in texts.values()}) == 1, "the placements wrote different texts"
        base = statistics.median(per_word["in-process (unfolded)"])
        for name, values in per_word.items():
            value = statistics.median(values)
            print(f"  batch {batch:2d}  {name:22s} {value:8.2f}  ({value / base:.2f}x in-process unfolded)")
    print(f"\nload after: {machine().split('uptime: ')[-1]}")


if __name__ == "__main__":
    main()
