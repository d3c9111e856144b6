"""The LM head on CPU, three ways side by side: `F.linear`, `head_matmul` (weight @ hidden.T)
and oneDNN's product over a weight packed once (`packed_weight`).

    python bench/head_matmul.py            # the embedded pair's head shapes, 1-96 rows
    python bench/head_matmul.py --dtype float32,bfloat16 --shapes all --rows 1,3,12,64 --threads 2

A decoding step sends 1-12 positions per prompt through the head (a batch of 8 prompts, up
to about 100). With so few rows MKL takes slow skinny-matrix paths in `F.linear`;
`head_matmul` computes the same dot products with the weight as the left operand, and the
packed oneDNN product avoids re-packing the weight on every call. `head_logits`, which
the engine uses, takes the packed product from `PACKED_MIN_ROWS` rows on. Random weights of
the real shapes (the values do not change the time); median of 7 interleaved repeats.
`--shapes all` adds SmolLM2's MLP layers (up/gate 1536x576, down 576x1536); `--dtype
bfloat16` packs the bf16 weight the same way (the engine packs only the head of a bf16 model), and `max |diff|`
is then against the float32 product of the same weights, relative to its largest value.
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
MLP_SHAPES = {"smollm2-135m mlp up": (1536, 576), "smollm2-135m mlp down": (576, 1536)}


def pack(head: torch.nn.Linear, dtype: torch.dtype) -> torch.Tensor | None:
    """The engine's packed copy in float32; in bfloat16 the same oneDNN reorder, done here
    (None where this torch's oneDNN refuses it)."""
    if dtype == torch.float32:
        return packed_weight(head)
    try:
        with torch.inference_mode():
            return torch.ops.mkldnn._reorder_linear_weight(head.weight.detach(), 32)
    except (RuntimeError, NotImplementedError, AttributeError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="1,2,3,4,6,8,12,24,48,96")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", default="float32", help="comma-separated: float32, bfloat16")
    ap.add_argument("--shapes", default="heads", choices=("heads", "all"), help="all: MLP layers too")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in ("float32", "bfloat16")]
    if bad or not dtypes:
        ap.error(f"--dtype {args.dtype!r}; allowed: float32, bfloat16 (comma-separated)")
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = {**SHAPES, **(MLP_SHAPES if args.shapes == "all" else {})}
    torch.manual_seed(0)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), load {os.getloadavg()[0]:.2f}")
    print(f"{'layer':<22} {'dtype':<8} {'rows':>4} {'F.linear ms':>12} {'head_matmul ms':>15} {'packed ms':>10} "
          f"{'linear/packed':>14} {'matmul/packed':>14} {'max |diff|':>11}")
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for name, (vocab, hidden) in shapes.items():
            head = torch.nn.Linear(hidden, vocab, bias=False)
            with torch.no_grad():
                head.weight.copy_(torch.randn(vocab, hidden) / hidden**0.5)
            exact = head.weight.detach().clone()
            head = head.to(dtype)
            weight = head.weight.detach()
            packed = pack(head, dtype)
            if packed is None:
                print(f"{name} {dtype_name}: no oneDNN packed product in this torch")
                continue
            fns = {"linear": F.linear, "matmul": head_matmul,
                   "packed": lambda x, _w, p=packed: _linear_packed(x, p, None)}
            for rows in (int(r) for r in args.rows.split(",")):
                x = torch.randn(rows, hidden).to(dtype)
                times = {k: [] for k in fns}
                with torch.inference_mode():
                    ref = F.linear(x.float(), exact.to(dtype).float())
                    scale = float(ref.abs().max()) if dtype != torch.float32 else 1.0
                    diff = max(float((fn(x, weight).float() - ref).abs().max()) for fn in fns.values()) / scale
                    for _ in range(args.repeats):  # interleaved, so drifting load hits all alike
                        for label, fn in fns.items():
                            started = time.perf_counter()
                            fn(x, weight)
                            times[label].append(1000 * (time.perf_counter() - started))
                a, b, c = (sorted(times[k])[len(times[k]) // 2] for k in fns)
                print(f"{name:<22} {dtype_name:<8} {rows:>4} {a:>12.2f} {b:>15.2f} {c:>10.2f} {a / c:>13.2f}x "
                      f"{b / c:>13.2f}x {diff:>11.1e}", flush=True)


if __name__ == "__main__":
    main()
