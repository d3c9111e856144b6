"""The GPU check: exactness in bfloat16 and decoding speed at batch 1, 8 and 32, as one table.

    bash bench/gpu_check.sh                     # on a machine with one or more NVIDIA GPUs
    DEVICE=cpu bash bench/gpu_check.sh          # reduced sizes on CPU (what CI runs)

1. Agreement: cached against recompute (the re-encoding oracle) in bfloat16 on the tiny
   random-init pair of the tests and, unless --no-embedded, on the embedded pair
   (SmolLM2-135M + Gemma-3-270M) on the first TriviaQA questions. Reduced precision moves
   every NLL a little, so a round counts as a disagreement only when the winners differ
   although the oracle's two best ensemble scores are at least --tie-nats apart.
2. Speed: greedy with each model and AdaFuse cached, seconds per generated word, tokens per
   second and peak memory, at each batch size, on the embedded pair and on a random-init pair
   of 8B shape (Llama-3.1-8B's layer sizes, one with each embedded tokenizer) built from
   configs alone: nothing is downloaded. With two GPUs each model gets its own.
3. Counts: torch ops, host reads and forwards per word of each system (bench/counts.py), and
   on a GPU the device syncs of one AdaFuse round, counted as the warnings of
   `torch.cuda.set_sync_debug_mode("warn")` (each host read of a device tensor is one).
Exit status 1 when a disagreement is found, so a script can gate on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tiny pair is built by the tests' own helper

from adafuse import AdaFuse, Greedy, load_model  # noqa: E402
from adafuse.models import LoadedModel  # noqa: E402
from adafuse.tasks import get_task  # noqa: E402
from counts import per_word  # noqa: E402
from decode_speed import PeakRSS  # noqa: E402  (bench/, this script's folder, is on sys.path)
from tests.tiny_hf import PROMPTS, agreement  # noqa: E402
from tests.tiny_hf import build as build_tiny  # noqa: E402

ADAFUSE = dict(theta_delta=0.7, max_words=3, num_candidates=3)
# layer sizes of Llama-3.1-8B; DEVICE=cpu shrinks them so CI can run the same code
SHAPE_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=8)
SHAPE_CPU = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2)


def devices(kind: str) -> list[torch.device]:
    """One device per model of a pair: cuda:0 and cuda:1 where there are two GPUs."""
    if kind == "cpu":
        return [torch.device("cpu")] * 2
    count = torch.cuda.device_count()
    return [torch.device("cuda:0"), torch.device(f"cuda:{1 if count > 1 else 0}")]


def sync(devs) -> None:
    for d in set(devs):
        if d.type == "cuda":
            torch.cuda.synchronize(d)


def peak_reset(devs) -> None:
    for d in set(devs):
        if d.type == "cuda":
            torch.cuda.reset_peak_memory_stats(d)


def peak_gb(devs, rss) -> float:
    """Peak memory while the system ran: GPU memory allocated (summed over the pair's GPUs),
    or on CPU the process's peak resident set sampled by decode_speed's PeakRSS."""
    if any(d.type == "cuda" for d in devs):
        return sum(torch.cuda.max_memory_allocated(d) for d in set(devs)) / 2**30
    return rss.peak / 2**30


def check_agreement(label, pair, prompts, max_new_tokens, tie_nats, stop=(), prefix=None):
    cached = AdaFuse(pair, **ADAFUSE).generate_batch(prompts, max_new_tokens=max_new_tokens,
                                                     stop=stop, shared_prefix=prefix)
    oracle = AdaFuse(pair, mode="recompute", **ADAFUSE)
    row = {"pair": label, "prompts": len(prompts), "rounds": 0, "same": 0, "max_dnll": 0.0,
           "ties": 0, "proposals": 0, "disagree": 0, "same_text": 0}
    for prompt, a in zip(prompts, cached):
        b = oracle.generate(prompt, max_new_tokens=max_new_tokens, stop=stop)
        got = agreement(a, b, tie_nats)
        for key in ("rounds", "same", "ties", "proposals", "disagree", "same_text"):
            row[key] += got[key]
        row["max_dnll"] = max(row["max_dnll"], got["max_dnll"])
    return row


def random_pair(tokenizers, shape, devs, dtype) -> list[LoadedModel]:
    """Two random-init Llama models of `shape`, one per tokenizer, straight onto their devices."""
    from transformers import LlamaConfig, LlamaForCausalLM

    pair = []
    for i, (tok, dev) in enumerate(zip(tokenizers, devs)):
        cfg = LlamaConfig(vocab_size=len(tok), max_position_embeddings=8192, rope_theta=500000.0,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, tie_word_embeddings=False, **shape)
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # initialise in the target dtype: an 8B model in fp32 is 32 GB
        try:
            torch.manual_seed(i)
            with torch.device(dev):
                model = LlamaForCausalLM(cfg).eval()
        finally:
            torch.set_default_dtype(default)
        eos = frozenset({tok.eos_token_id} if tok.eos_token_id is not None else ())
        pair.append(LoadedModel(name=f"random-{i}", model=model, tokenizer=tok, device=dev,
                                eos_ids=eos))
    return pair


def time_systems(label, pair, prompts, batches, max_new_tokens, devs, stop=(), prefix=None):
    rows = []
    systems = [("greedy " + pair[0].name, lambda: Greedy(pair, model_index=0)),
               ("greedy " + pair[1].name, lambda: Greedy(pair, model_index=1)),
               ("adafuse cached", lambda: AdaFuse(pair, **ADAFUSE))]
    for batch in batches:
        # batch 1 is slow per prompt: it gets as many prompts as batch 8, the rest all of them
        chosen = prompts[:max(batch, min(8, len(prompts)))]
        for name, make in systems:
            decoder = make()
            peak_reset(devs)
            sync(devs)
            started = time.perf_counter()
            with PeakRSS() as rss:
                outs = decoder.generate_batch(chosen, max_new_tokens=max_new_tokens, stop=stop,
                                              shared_prefix=prefix, batch_size=batch)
                sync(devs)
            seconds = time.perf_counter() - started
            words = max(1, sum(o.stats.words for o in outs))
            tokens = max(1, sum(o.stats.new_tokens for o in outs))
            rows.append({"pair": label, "system": name, "batch": batch, "prompts": len(chosen),
                         "words": words, "ms_per_word": 1000 * seconds / words,
                         "tok_per_s": tokens / seconds, "peak_gb": peak_gb(devs, rss)})
    return rows


def count_systems(label, pair, prompts, max_new_tokens, stop=(), prefix=None) -> list[dict]:
    """Ops, host reads and forwards per word of each system at batch 1 (bench/counts.py)."""
    systems = [("greedy " + pair[0].name, lambda: Greedy(pair, model_index=0)),
               ("greedy " + pair[1].name, lambda: Greedy(pair, model_index=1)),
               ("adafuse cached", lambda: AdaFuse(pair, **ADAFUSE))]
    rows = []
    for name, make in systems:
        counted = per_word(make(), prompts, max_new_tokens=max_new_tokens, stop=stop, shared_prefix=prefix)
        rows.append({"pair": label, "system": name, **counted})
    return rows


def sync_warnings(pair, prompt, stop=()) -> int | None:
    """Device syncs of one AdaFuse round on CUDA (None on CPU): warnings of sync debug mode."""
    import warnings

    if not any(lm.device.type == "cuda" for lm in pair):
        return None
    decoder = AdaFuse(pair, **ADAFUSE)
    decoder.generate(prompt, max_new_tokens=2, stop=stop)  # one-time probes out of the way
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            out = decoder.generate(prompt, max_new_tokens=1, stop=stop)  # one round
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) // max(1, out.stats.rounds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=os.environ.get("DEVICE", "cuda" if torch.cuda.is_available() else "cpu"),
                    choices=["cuda", "cpu"])
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (cuda: 1,8,32; cpu: 1,2)")
    ap.add_argument("--prompts", type=int, default=None, help="TriviaQA questions (cuda: 32; cpu: 2)")
    ap.add_argument("--tokens", type=int, default=None, help="max_new_tokens (cuda: 32; cpu: 6)")
    ap.add_argument("--tie-nats", type=float, default=0.4,
                    help="an oracle gap below this is a near-tie in bf16 (CPU, measured |dNLL|: up to "
                         "0.029 on the tiny pair, 0.137 on the embedded pair; twice a 0.2 bound)")
    ap.add_argument("--no-embedded", action="store_true", help="skip the embedded pair (needs its packages)")
    ap.add_argument("--no-8b", action="store_true", help="skip the random-init pair of 8B shape")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"error: DEVICE=cuda, but this torch ({torch.__version__}) sees no CUDA device; "
              "use DEVICE=cpu", file=sys.stderr)
        return 2
    gpu = args.device == "cuda"
    batches = [int(b) for b in (args.batches or ("1,8,32" if gpu else "1,2")).split(",")]
    n_prompts = args.prompts or (32 if gpu else 2)
    tokens = args.tokens or (32 if gpu else 6)
    devs = devices(args.device)
    dtype = torch.bfloat16

    agree, speed, counted, syncs = [], [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        tiny = [load_model(str(build_tiny(kind, Path(tmp) / kind, seed=i)), device=str(d), dtype="bfloat16")
                for i, (kind, d) in enumerate(zip(("llama", "gemma"), devs))]
    agree.append(check_agreement("tiny", tiny, PROMPTS, 40 if gpu else 16, args.tie_nats))
    tokenizers = [lm.tokenizer for lm in tiny]

    if not args.no_embedded:
        task = get_task("triviaqa")
        prompts = [task.prompt(d) for d in task.docs(limit=n_prompts)]
        pair = [load_model(name, device=str(d), dtype="bfloat16")
                for name, d in zip(("smollm2-135m-instruct", "gemma3-270m"), devs)]
        agree.append(check_agreement("embedded", pair, prompts[:3 if gpu else 1], 24 if gpu else tokens,
                                     args.tie_nats, stop=task.stop, prefix=task.shared_prefix))
        speed += time_systems("embedded", pair, prompts, batches, tokens, devs,
                              stop=task.stop, prefix=task.shared_prefix)
        counted += count_systems("embedded", pair, prompts[:8], tokens, stop=task.stop, prefix=task.shared_prefix)
        syncs = sync_warnings(pair, prompts[0], stop=task.stop)
        tokenizers = [lm.tokenizer for lm in pair]
        del pair
    else:
        prompts = list(PROMPTS) * max(1, n_prompts // len(PROMPTS))
        counted += count_systems("tiny", tiny, list(PROMPTS), tokens)
        syncs = sync_warnings(tiny, PROMPTS[0])
    if not args.no_8b:
        pair = random_pair(tokenizers, SHAPE_8B if gpu else SHAPE_CPU, devs, dtype)
        speed += time_systems("8B-shaped" if gpu else "8B-shaped (reduced)", pair, prompts,
                              batches, tokens, devs)
        del pair

    names = [torch.cuda.get_device_name(d) for d in sorted(set(devs), key=str)] if gpu else [platform.processor() or platform.machine()]
    print(f"\nmachine: {platform.node()}, {', '.join(names)}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; devices {', '.join(str(d) for d in devs)}; bfloat16")
    print(f"\nagreement, cached vs recompute (a disagreement: other winner, oracle gap >= {args.tie_nats} nats)")
    print("(ties: the oracle's scores of the two winners are closer; proposals: a proposer's argmax or "
          "margin gate flipped, so the winners were not both proposed)")
    print(f"{'pair':<10} {'prompts':>7} {'rounds':>6} {'same':>5} {'ties':>5} {'proposals':>9} "
          f"{'disagree':>8} {'max|dNLL|':>9} {'same text':>9}")
    for r in agree:
        print(f"{r['pair']:<10} {r['prompts']:>7} {r['rounds']:>6} {r['same']:>5} {r['ties']:>5} "
              f"{r['proposals']:>9} {r['disagree']:>8} {r['max_dnll']:>9.4f} {r['same_text']:>5}/{r['prompts']}")
    print("\nspeed (same prompts for every system of a batch size)")
    print(f"{'pair':<20} {'system':<30} {'batch':>5} {'prompts':>7} {'words':>6} {'ms/word':>8} "
          f"{'tok/s':>7} {'peak GB':>8}")
    for r in speed:
        print(f"{r['pair']:<20} {r['system'][:30]:<30} {r['batch']:>5} {r['prompts']:>7} {r['words']:>6} "
              f"{r['ms_per_word']:>8.1f} {r['tok_per_s']:>7.1f} {r['peak_gb']:>8.2f}")
    print("\ncounts per word at batch 1 (bench/counts.py: ATen ops, host reads incl. transformers' own)")
    print(f"{'pair':<10} {'system':<30} {'ops/word':>9} {'reads/word':>10} {'fwd/word':>9} {'reads/fwd':>9}")
    for r in counted:
        print(f"{r['pair']:<10} {r['system'][:30]:<30} {r['ops_per_word']:>9.0f} {r['reads_per_word']:>10.2f} "
              f"{r['fwd_per_word']:>9.2f} {r['reads_per_forward']:>9.2f}")
    print("\ndevice syncs in one AdaFuse round (torch.cuda.set_sync_debug_mode('warn')): "
          + ("n/a (no CUDA device)" if syncs is None else str(syncs)))
    return 1 if any(r["disagree"] for r in agree) else 0


if __name__ == "__main__":
    sys.exit(main())
