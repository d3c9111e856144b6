"""The LM head on CPU, three ways side by side: `F.linear`, `head_matmul` (weight @ hidden.T)
and oneDNN's product over a weight packed once (`packed_weight`).

    python bench/head_matmul.py            # the embedded pair's head shapes, 1-96 rows

A decoding step sends 1-12 positions per prompt through the head (a batch of 8 prompts, up
to about 100). With so few rows MKL takes slow skinny-matrix paths in `F.linear`;
`head_matmul` computes the same dot products with the weight as the left operand, and the
packed oneDNN product avoids re-packing the weight on every call. `cpu_head_logits`, which
the engine uses, takes the packed product from `PACKED_MIN_ROWS` rows on. Random weights of
the real shapes (the values do not change the time); median of 7 interleaved repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F

from adafuse.decoding.engine.cpu_linear import _linear_packed, head_matmul, packed_weight

SHAPES = {"smollm2-135m head": (49152, 576), "gemma3-270m head": (262144, 640)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1,2,3,4,6,8,12,24,48,96")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{'head':<20} {'rows':>4} {'F.linear ms':>12} {'head_matmul ms':>15} {'packed ms':>10} "
          f"{'linear/packed':>14} {'matmul/packed':>14} {'max |diff|':>11}")
    for name, (vocab, hidden) in SHAPES.items():
        head = torch.nn.Linear(hidden, vocab, bias=False)
        with torch.no_grad():
            head.weight.copy_(torch.randn(vocab, hidden) / hidden**0.5)
        weight = head.weight.detach()
        packed = packed_weight(head)
        if packed is None:
            print(f"{name}: no oneDNN packed product in this torch")
            continue
        fns = {"linear": F.linear, "matmul": head_matmul,
               "packed": lambda x, _w: _linear_packed(x, packed, None)}
        for rows in (int(r) for r in args.rows.split(",")):
            x = torch.randn(rows, hidden)
            times = {k: [] for k in fns}
            with torch.inference_mode():
                ref = F.linear(x, weight)
                diff = max(float((fn(x, weight) - ref).abs().max()) for fn in fns.values())
                for _ in range(args.repeats):  # interleaved, so drifting load hits all alike
                    for label, fn in fns.items():
                        started = time.perf_counter()
                        fn(x, weight)
                        times[label].append(1000 * (time.perf_counter() - started))
            a, b, c = (sorted(times[k])[len(times[k]) // 2] for k in fns)
            print(f"{name:<20} {rows:>4} {a:>12.1f} {b:>15.1f} {c:>10.1f} {a / c:>13.2f}x {b / c:>13.2f}x "
                  f"{diff:>11.1e}", flush=True)

if __name__ == "__main__":
    main()
