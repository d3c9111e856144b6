"""The LM head on CPU: `F.linear` against `head_matmul` (weight @ hidden.T), side by side.

    python bench/head_matmul.py            # the embedded pair's head shapes, 1-24 rows

A decoding step sends 1-12 positions through the head. With so few rows MKL takes slow
skinny-matrix paths in `F.linear`; `adafuse.decoding.backend.head_matmul` computes the same
dot products with the weight as the left operand. Random weights of the real shapes (the
values do not change the time); median of 7 interleaved repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F

from adafuse.decoding.backend import head_matmul

SHAPES = {"smollm2-135m head": (49152, 576), "gemma3-270m head": (262144, 640)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1,2,3,4,6,8,12,24")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{'head':<20} {'rows':>4} {'F.linear ms':>12} {'head_matmul ms':>15} {'speed-up':>9} {'max |diff|':>11}")
    for name, (vocab, hidden) in SHAPES.items():
        weight = torch.randn(vocab, hidden) / hidden**0.5
        for rows in (int(r) for r in args.rows.split(",")):
            x = torch.randn(rows, hidden)
            times = {"linear": [], "mine": []}
            with torch.inference_mode():
                diff = float((F.linear(x, weight) - head_matmul(x, weight)).abs().max())
                for _ in range(args.repeats):  # interleaved, so drifting load hits both alike
                    for label, fn in (("linear", F.linear), ("mine", head_matmul)):
                        started = time.perf_counter()
                        fn(x, weight)
                        times[label].append(1000 * (time.perf_counter() - started))
            a, b = (sorted(times[k])[len(times[k]) // 2] for k in ("linear", "mine"))
            print(f"{name:<20} {rows:>4} {a:>12.1f} {b:>15.1f} {a / b:>8.2f}x {diff:>11.1e}", flush=True)


if __name__ == "__main__":
    main()
