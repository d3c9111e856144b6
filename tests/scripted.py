"""Scripted toy language models: the test decides every next-token distribution.

A `ScriptedLM` has a small vocabulary of strings, a longest-match tokenizer over it and a
`script(text) -> {token: prob}` giving the next-token distribution after the decoded
context text. It quacks like `adafuse.models.LoadedModel`, so the real decoders run on it.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

EOS = "<eos>"


class _Tokenizer:
    def __init__(self, vocab: list[str]):
        self.vocab = vocab
        self.index = {t: i for i, t in enumerate(vocab)}
        self.pad_token_id = 0
        self.eos_token_id = self.index[EOS]
        self.by_length = sorted((t for t in vocab if t != EOS), key=len, reverse=True)

    def encode(self, text: str) -> list[int]:
        ids, i = [], 0
        while i < len(text):
            for tok in self.by_length:
                if text.startswith(tok, i):
                    ids.append(self.index[tok])
                    i += len(tok)
                    break
            else:
                raise ValueError(f"scripted tokenizer cannot encode {text[i]!r}")
        return ids


class _Model:
    """Computes logits from the whole token history; a KV cache, if given, stores token ids
    (as one layer of keys), so the cached engine runs on scripted models too."""

    def __init__(self, lm: "ScriptedLM"):
        self.lm = lm
        self.dtype = torch.float32

    def forward(self, input_ids, logits_to_keep, attention_mask=None, past_key_values=None,
                use_cache=False, **_):
        new = input_ids.tolist()
        past = [[] for _ in new]
        if past_key_values is not None:
            if hasattr(past_key_values, "layers") and past_key_values.layers:
                keys = past_key_values.layers[0].keys
                past = keys[:, 0, :, 0].long().tolist() if keys.numel() else past
            ids = input_ids.to(torch.float32)[:, None, :, None]
            past_key_values.update(ids, ids, 0)
        rows = []
        for r, row in enumerate(new):
            full = past[r] + row
            mask = attention_mask[r].tolist() if attention_mask is not None else [1] * len(full)
            positions = []
            for p in logits_to_keep.tolist():
                at = len(past[r]) + p
                if mask[at]:  # padding (left in a batch cache, right in a chunk) is not context
                    history = [t for t, m in zip(full[: at + 1], mask[: at + 1]) if m]
                    positions.append(self.lm.logits_after(history))
                else:
                    positions.append(torch.zeros(len(self.lm.vocab)))
            rows.append(torch.stack(positions))
        return SimpleNamespace(logits=torch.stack(rows))

    __call__ = forward


class ScriptedLM:
    """A LoadedModel stand-in whose distributions come from `script(context_text)`."""

    def __init__(self, name: str, vocab: list[str], script, bos: str | None = "<s>"):
        extra = [EOS] + ([bos] if bos else [])
        self.vocab = extra + [t for t in vocab if t not in extra]
        self.tokenizer = _Tokenizer(self.vocab)
        self.bos = bos
        self.name = name
        self.script = script
        self.model = _Model(self)
        self.device = torch.device("cpu")
        self.chat_template = False
        self.weight = 1.0
        self.eos_ids = frozenset({self.tokenizer.eos_token_id})
        self.eos_id = self.tokenizer.eos_token_id
        self.calls = 0

    def format_prompt(self, prompt: str) -> str:
        return prompt

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text)
        return ([self.tokenizer.index[self.bos]] if self.bos else []) + ids

    def encode_many(self, texts, add_special_tokens=None) -> list[list[int]]:
        if add_special_tokens is False:
            return [self.tokenizer.encode(t) for t in texts]
        return [self.encode(t) for t in texts]

    def decode(self, ids) -> str:
        return "".join(self.vocab[i] for i in ids)

    def context_text(self, ids) -> str:
        text = self.decode(ids)
        return text[len(self.bos):] if self.bos and text.startswith(self.bos) else text

    def logits_after(self, ids) -> torch.Tensor:
        self.calls += 1
        dist = self.script(self.context_text(ids))
        logits = torch.full((len(self.vocab),), -1e4)
        for tok, p in dist.items():
            logits[self.tokenizer.index[tok]] = math.log(p) if p > 0 else -1e4
        return logits


def peaked(tok: str, p: float = 0.9, runner_up: str | None = None, q: float | None = None):
    """A distribution with top token `tok` at probability p (margin p - q)."""
    dist = {tok: p}
    if runner_up is not None:
        dist[runner_up] = q if q is not None else (1 - p) / 2
    return dist
