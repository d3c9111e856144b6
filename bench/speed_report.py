"""What bench/decode_speed.py prints: the table, where the forwards go, the ratios against
the issue's targets and the host share, from the rows `decode_speed.measure` returns."""

from __future__ import annotations

# the targets (issue 20): AdaFuse at batch 1 against the two greedy decodes summed,
# batched throughput against batch 1 per task, and the host share of a batched decode
ADAFUSE_OVER_GREEDY_MAX = 1.3
BATCH_GAIN_MIN = {"triviaqa": 2.5, "gsm8k": 2.0}
HOST_SHARE_MAX = 0.15
# issue 25's targets, on counts (bench/counts.py): AdaFuse's host reads per word against the
# two greedy decodes' sum, host reads per forward, torch ops per word against the greedy sum
READS_OVER_GREEDY_MAX = 1.5
READS_PER_FORWARD_MAX = 1.0
OPS_OVER_GREEDY_MAX = 1.3

HOST_SHARE_LEGEND = (
    "host share = 1 - (seconds inside model forwards) / (wall seconds of the decode). Forward "
    "seconds are the engine's cost counters (ModelCost.by_kind of the decoder's last_totals, the "
    "shared prefix's prefill included): each Executor call, timed from building the "
    "forward's arguments (ids, mask, positions, the shared-prefix context) through the model's "
    "forward, HF's own Python included, and the LM head over the gathered positions, to the logits "
    "cast to float32. Host: everything else in generate_batch (tokenizer calls, cache stacking and "
    "selection, masks, proposals, decisions). On CUDA the counters do not synchronize, so device "
    "time waited for later counts as host.")


def forward_seconds(row: dict) -> float:
    """Seconds inside model forwards of one measured decode (see HOST_SHARE_LEGEND)."""
    return sum(sec for kinds in row["kind_seconds"].values() for _, sec in kinds.values())


def host_share(row: dict) -> float:
    """1 - forward seconds / wall seconds, in [0, 1] (0 for an empty decode)."""
    if row["seconds"] <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - forward_seconds(row) / row["seconds"]))


def ratio_lines(rows: list[dict], batch: int, recompute_tokens: int) -> list[tuple[str, float, str, bool | None]]:
    """(label, value, target text, met: True/False, or None where there is no target), in the
    order they print: per dtype and task the AdaFuse/greedy ratio and the batch gain, then bf16
    against float32 per system, then the recompute comparison."""
    by = {(r["dtype"], r["task"], r["system"]): r for r in rows}
    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    out = []
    for dtype in dtypes:
        for task in ("triviaqa", "gsm8k"):
            a, b = by.get((dtype, task, "greedy smollm2")), by.get((dtype, task, "greedy gemma3"))
            c = by.get((dtype, task, "adafuse cached"))
            if a and b and c:
                value = c["seconds"] / (a["seconds"] + b["seconds"])
                out.append((f"{dtype} {task}: AdaFuse cached / (greedy A + greedy B) time", value,
                            f"<= {ADAFUSE_OVER_GREEDY_MAX}x", value <= ADAFUSE_OVER_GREEDY_MAX))
            batched = by.get((dtype, task, f"adafuse cached b{batch}"))
            if c and batched:
                value = c["seconds"] / batched["seconds"]
                goal = BATCH_GAIN_MIN[task]
                out.append((f"{dtype} {task}: throughput batch {batch} / batch 1", value,
                            f">= {goal}x", value >= goal))
    if "float32" in dtypes and "bfloat16" in dtypes:
        for (dtype, task, system), r in by.items():
            f32 = by.get(("float32", task, system))
            if dtype == "bfloat16" and f32:
                out.append((f"{task}: {system}: float32 / bfloat16 time", f32["seconds"] / r["seconds"],
                            "", None))
    cap = recompute_tokens
    c, r = by.get(("float32", "gsm8k", f"adafuse cached @{cap}")), by.get(("float32", "gsm8k", f"adafuse recompute @{cap}"))
    if c and r:
        value = r["tok_per_word"] / c["tok_per_word"]
        out.append((f"float32 gsm8k @{cap}: recompute / cached tokens fed per word", value, ">= 50x", value >= 50))
        value = r["s_per_word"] / c["s_per_word"]
        out.append((f"float32 gsm8k @{cap}: recompute / cached seconds per word", value, ">= 10x", value >= 10))
    return out


def print_report(rows: list[dict], batch: int, recompute_tokens: int) -> None:
    head = (f"{'dtype':<9} {'task':<9} {'system':<26} {'n':>3} {'s/q (med)':>10} {'s/word':>7} "
            f"{'fwd/word':>9} {'tok/word':>9} {'host':>6} {'peak RSS':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        host = f"{100 * host_share(r):>5.0f}%" if r["system"].startswith("adafuse") else f"{'':>6}"
        print(f"{r['dtype']:<9} {r['task']:<9} {r['system']:<26} {r['n']:>3} {r['s_per_q']:>10.2f} "
              f"{r['s_per_word']:>7.3f} {r['fwd_per_word']:>9.2f} {r['tok_per_word']:>9.1f} {host} "
              f"{r['peak_rss_gb']:>7.2f} GB")
    print(f"\n{HOST_SHARE_LEGEND}\nTarget: host share <= {100 * HOST_SHARE_MAX:.0f}% at batch {batch}.")

    print("\nwhere the forwards go, per model: kind forwards/word @ ms/forward (prefill: a prompt's own "
          "tokens, or a re-encode after a commit; step: one token per row (greedy's step, AdaFuse's "
          "branches); score: proposals of other models; step+score: both in one forward; recompute: "
          "everything re-encoded)")
    for r in rows:
        for model, kinds in r["kinds"].items():
            parts = "  ".join(f"{kind} {n:.2f} @{ms:.0f}" for kind, (n, ms) in kinds.items())
            print(f"  {r['dtype']:<9} {r['task']:<9} {r['system']:<26} {model:<24} {parts}")

    print("\nratios (same questions, same run):")
    for label, value, target, met in ratio_lines(rows, batch, recompute_tokens):
        verdict = "" if met is None else ("  met" if met else "  NOT met")
        print(f"  {label} = {value:.2f}x" + (f"  (target {target}){verdict}" if target else ""))
    for r in rows:
        if r["system"] == f"adafuse cached b{batch}":
            share = host_share(r)
            print(f"  {r['dtype']} {r['task']}: host share of the batch-{batch} decode = {100 * share:.0f}%"
                  f"  (target <= {100 * HOST_SHARE_MAX:.0f}%){'  met' if share <= HOST_SHARE_MAX else '  NOT met'}")
    _print_same_texts(rows, recompute_tokens)


def _print_same_texts(rows: list[dict], cap: int) -> None:
    by = {(r["dtype"], r["task"], r["system"]): r for r in rows}
    c, r = by.get(("float32", "gsm8k", f"adafuse cached @{cap}")), by.get(("float32", "gsm8k", f"adafuse recompute @{cap}"))
    if c and r:
        same = sum(x == y for x, y in zip(c["texts"], r["texts"]))
        print(f"  float32 gsm8k @{cap}: identical texts cached vs recompute: {same}/{len(c['texts'])}")
    for (dtype, task, system), row in by.items():
        f32 = by.get(("float32", task, system))
        if dtype == "bfloat16" and f32:
            same = sum(x == y for x, y in zip(f32["texts"], row["texts"]))
            print(f"  {task}: {system}: identical texts bfloat16 vs float32: {same}/{len(row['texts'])}")


def count_ratio_lines(counts: list[dict]) -> list[tuple[str, float, str, bool]]:
    """Issue 25's ratios per batch size: each AdaFuse row's reads and ops per word against the
    two greedy rows' sum, and its reads per forward."""
    out = []
    for batch in sorted({c["batch"] for c in counts}):
        rows = {c["system"]: c for c in counts if c["batch"] == batch}
        a, b = rows.get("greedy smollm2"), rows.get("greedy gemma3")
        for name, r in rows.items():
            if not name.startswith("adafuse") or not (a and b):
                continue
            reads = r["reads_per_word"] / (a["reads_per_word"] + b["reads_per_word"])
            ops = r["ops_per_word"] / (a["ops_per_word"] + b["ops_per_word"])
            out.append((f"batch {batch}: {name}: host reads / word vs both greedy", reads,
                        f"<= {READS_OVER_GREEDY_MAX}x", reads <= READS_OVER_GREEDY_MAX))
            out.append((f"batch {batch}: {name}: host reads / forward", r["reads_per_forward"],
                        f"<= {READS_PER_FORWARD_MAX}", r["reads_per_forward"] <= READS_PER_FORWARD_MAX))
            out.append((f"batch {batch}: {name}: torch ops / word vs both greedy", ops,
                        f"<= {OPS_OVER_GREEDY_MAX}x", ops <= OPS_OVER_GREEDY_MAX))
    return out


def print_counts(counts: list[dict]) -> None:
    """The counts table (ops, host reads, forwards per word) and issue 25's ratios."""
    print("\ncounts per generated word (bench/counts.py; a separate, untimed decode of the same "
          "questions: ops dispatched to ATen, host reads of tensor values incl. transformers' own)")
    head = f"{'batch':>5} {'system':<26} {'ops/word':>9} {'reads/word':>10} {'fwd/word':>9} {'reads/fwd':>9}"
    print(head)
    print("-" * len(head))
    for c in counts:
        print(f"{c['batch']:>5} {c['system']:<26} {c['ops_per_word']:>9.0f} {c['reads_per_word']:>10.2f} "
              f"{c['fwd_per_word']:>9.2f} {c['reads_per_forward']:>9.2f}")
    for label, value, target, met in count_ratio_lines(counts):
        print(f"  {label} = {value:.2f}  (target {target}){'  met' if met else '  NOT met'}")


def print_profile(prof, row_limit: int = 15) -> None:
    """The profiled decode's top operators by self CPU time (host work and kernels alike)."""
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit,
                                    max_name_column_width=48))
