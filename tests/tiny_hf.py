"""Tiny random-init transformers models with two tokenizer families, built offline.

- `llama`: a Llama-architecture model with a byte-level BPE tokenizer (like SmolLM2: no BOS);
- `gemma`: a Gemma-3 model with sliding-window layers (window 8) and a SentencePiece-style
  (metaspace) BPE tokenizer that adds a BOS (like Gemma 3).
Both tokenizers are trained in seconds on the bundled task data, so they merge across word
boundaries the way real ones do. `build(kind, folder, seed)` saves a loadable model folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def corpus(limit: int = 400) -> list[str]:
    lines = []
    for task in ("triviaqa", "gsm8k"):
        path = ROOT / "tasks" / task / "data" / "dev.jsonl"
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if i >= limit:
                    break
                item = json.loads(line)
                lines.append(item["question"])
                answer = item["answer"]
                lines.append(answer if isinstance(answer, str) else " ".join(answer))
    lines.append((ROOT / "tasks" / "triviaqa" / "prompt.txt").read_text(encoding="utf-8"))
    return lines


def _tokenizer(kind: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = [chr(c) for c in range(32, 127)] + ["\n"]
    if kind == "llama":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        special = ["<|endoftext|>"]
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(corpus(), trainer)
        return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                       bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    tok.decoder = decoders.Metaspace(prepend_scheme="never")
    special = ["<pad>", "<eos>", "<bos>", "<unk>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=alphabet + ["▁"])
    tok.train_from_iterator(corpus(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", bos_token="<bos>",
                                   pad_token="<pad>", unk_token="<unk>")


def build(kind: str, folder: Path, seed: int = 0, vocab_size: int = 600) -> Path:
    """Save a tiny `kind` model ("llama" or "gemma") with its tokenizer into `folder`."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer(kind, vocab_size)
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                  max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                  tie_word_embeddings=True, initializer_range=0.2)
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=2, **common))
    else:
        config = Gemma3TextConfig(num_hidden_layers=3, sliding_window=8,
                                  layer_types=["sliding_attention", "sliding_attention",
                                               "full_attention"], **common)
        model = Gemma3ForCausalLM(config)
    _favour_word_starts(model, tokenizer)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _favour_word_starts(model, tokenizer, strength: float = 1.0) -> None:
    """Make a random model write words: with tied embeddings the last hidden state leans on the
    current token's embedding, so a direction shared by every embedding and by the word-start
    tokens (leading space or newline) raises those tokens' logits after any token."""
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    starts = [i for i, t in enumerate(vocab) if t and t[0] in ("Ġ", "▁", "Ċ", "\n")]
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        u = torch.randn(emb.shape[1], generator=torch.Generator().manual_seed(1))
        u = u / u.norm() * emb.norm(dim=1).mean()
        emb += 0.5 * u
        emb[starts] += strength * u


# prompts for the tiny models: a short one, and one longer than the sliding window many times over
PROMPTS = [
    "Question: Which British king married Mary of Teck?\nAnswer:",
    ("Answer the question, and only return the final answer. Do NOT Analyze.\n\n"
     "Question: Which war veteran, who died in 2009, had the nickname 'The Last Fighting "
     "Tommy'?\nAnswer: Harry Patch.\n\nQuestion: Who was the next British Prime Minister "
     "after Arthur Balfour?\nAnswer:"),
]


def assert_same_choices(a, b):
    """Two decodes (cached and recompute, batched and alone) made the same choices: same winner every round, up to the first near-tie (< 1e-4 nats) of either run."""
    for ra, rb in zip(a.trace, b.trace):
        assert [(p.text, p.terminal) for p in ra.proposals] == [(p.text, p.terminal) for p in rb.proposals]
        if ra.near_tie or rb.near_tie:
            return
        assert ra.winner == rb.winner
        for pa, pb in zip(ra.proposals, rb.proposals):
            assert pa.nll == pytest.approx(pb.nll, abs=1e-3)
    assert a.text == b.text and len(a.trace) == len(b.trace)


def agreement(a, b, tie_nats: float) -> dict:
    """How closely decode `a` follows decode `b` (the oracle) in reduced precision, where every
    NLL moves a little. Rounds are compared until the winners differ (the texts part there):
    `same` rounds with the same winner; `max_dnll` the largest |dNLL| of a proposal both made;
    where the winners differ, a `ties` (b's scores of the two winners < tie_nats apart), a
    `proposals` (one winner was not proposed in the other decode: a proposer's argmax or its
    margin against theta flipped) or a `disagree` (the same proposals scored apart)."""
    out = {"rounds": 0, "same": 0, "max_dnll": 0.0, "ties": 0, "proposals": 0, "disagree": 0,
           "same_text": int(a.text == b.text)}
    for ra, rb in zip(a.trace, b.trace):
        out["rounds"] += 1
        theirs = {p.key: p for p in rb.proposals}
        for pa in ra.proposals:
            pb = theirs.get(pa.key)
            if pb is not None:
                diffs = [abs(x - y) for x, y in zip(pa.nll, pb.nll) if math.isfinite(x) and math.isfinite(y)]
                out["max_dnll"] = max([out["max_dnll"], *diffs])
        wa, wb = ra.proposals[ra.winner].key, rb.proposals[rb.winner].key
        if wa == wb:
            out["same"] += 1
            continue
        if wa not in theirs:
            out["proposals"] += 1
        else:
            gap = theirs[wa].score - rb.proposals[rb.winner].score
            out["ties" if gap < tie_nats else "disagree"] += 1
        break
    return out


def tiny_conf(root: Path) -> Path:
    """A config folder under `root` for Hydra's search path: conf/models/tiny.yaml names two
    tiny random-init models built there (a Llama, seed 0, and a Gemma 3, seed 1), so that
    `models=tiny` decodes with them."""
    paths = [build("llama", root / "tiny-llama", seed=0), build("gemma", root / "tiny-gemma", seed=1)]
    (root / "conf" / "models").mkdir(parents=True)
    entries = [{"name": str(p), "device": "${device}", "dtype": "${dtype}"} for p in paths]
    (root / "conf" / "models" / "tiny.yaml").write_text(json.dumps(entries), encoding="utf-8")  # JSON is YAML
    return root / "conf"
