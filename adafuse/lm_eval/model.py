"""The `adafuse` model of lm-evaluation-harness: an ensemble of adafuse models as one `LM`.

    python -m adafuse.lm_eval run --model adafuse \\
        --model_args models=smol_gemma,theta_delta=0.7 --tasks <task> --include_path <dir>

- `generate_until`: the configured decoder (AdaFuse by default; greedy and the baselines by
  name) through `generate_batch`, one call per distinct (`until`, `max_gen_toks`), with the
  contexts' common text as the shared prefix (few-shot examples are encoded once per model).
  `max_gen_toks` counts the first model's tokens, as `max_new_tokens` does.
- `loglikelihood(context, continuation)`: each model scores the continuation in its own
  tokenizer as the decoders score a span (`scoring.proposal_rows`: the tokens of
  encode(prompt_m + continuation) after the longest common prefix with encode(prompt_m), so a
  merge across the boundary is scored too), through the decoder's engine (`Engine.score`); its total
  log-probability is -mean NLL x tokens. The ensemble value is the weighted mean over models
  of these totals (the decoder's `weights`; with `decoder=greedy`, its `model_index` model
  alone). A total, not a mean: lm-eval's `acc` compares totals and its `acc_norm` divides by
  the continuation's length in characters itself, and a mean over each model's tokens would reward
  the vocabulary that splits a choice into more tokens. A weighted mean of log-probabilities
  is the log of a weighted geometric mean of the models' probabilities (a product of
  experts), the rule the decoders' ensemble score applies per token.
- `is_greedy`: true when the continuation's tokens are every scoring model's argmax at each
  position (teacher-forced, in that model's tokens); one model is enough to make it false.
- `loglikelihood_rolling(text)`: the same value for the whole text after the model's BOS
  (after its EOS where it has no BOS), in one window: no sliding windows, so a text longer
  than a model's context length is not supported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os.path import commonprefix

import lm_eval.models  # noqa: F401  lm-eval's own models first: get_model imports them only while its registry is empty
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from adafuse.decoding import Greedy, ModelCost, Proposal, build_decoder
from adafuse.decoding.base import ensemble_weights
from adafuse.decoding.scoring import proposal_rows
from adafuse.errors import AdaFuseError
from adafuse.lm_eval import args as model_args

log = logging.getLogger(__name__)

# most continuation tokens one context's rows score in one chunk (a longer row goes alone)
SCORED_POSITIONS = 1024


@register_model("adafuse")
class AdaFuseLM(LM):
    """An adafuse ensemble (or one model) behind lm-eval's three request types."""

    def __init__(self, **kwargs):
        super().__init__()
        loaded = kwargs.pop("models", "smol_gemma")
        if isinstance(loaded, (list, tuple)) and loaded and not isinstance(loaded[0], (str, dict)):
            _, config, self.batch_size = model_args.parse(kwargs)  # models already loaded
            self.models = list(loaded)
        else:
            specs, config, self.batch_size = model_args.parse({**kwargs, "models": loaded})
            from adafuse.models import load_model

            self.models = [load_model(spec) for spec in specs]
        self.decoder = build_decoder(config, self.models)
        if isinstance(self.decoder, Greedy):
            self.weights = [float(m == self.decoder.model_index) for m in range(len(self.models))]
        else:
            self.weights = ensemble_weights(config.get("weights"), self.models)
        self._warned: set[str] = set()

    @classmethod
    def create_from_arg_string(cls, arg_string, additional_config=None):
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict, additional_config=None):
        # lm-eval's own --batch_size / --device come here too; a key in --model_args wins.
        # Its --device defaults to cuda:0: without CUDA that means `auto`, as for its `hf` model
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None and k not in arg_dict}
        if str(extra.get("device", "")).startswith("cuda") and not torch.cuda.is_available():
            extra.pop("device")
        return cls(**arg_dict, **extra)

    @property
    def tokenizer_name(self) -> str:
        return "+".join(m.name for m in self.models)

    # --- generate_until --------------------------------------------------------------------

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            context, gen_kwargs = request.args
            groups.setdefault(self._generation(gen_kwargs), []).append(i)
        texts: list[str] = [""] * len(requests)
        bar = tqdm(total=len(requests), desc="adafuse generate_until", disable=disable_tqdm)
        for (stop, budget), members in groups.items():
            prompts = [requests[i].args[0] for i in members]

            def finished(j, out, members=members):
                texts[members[j]] = out.text
                self.cache_hook.add_partial("generate_until", requests[members[j]].args, out.text)
                bar.update(1)

            self.decoder.generate_batch(prompts, max_new_tokens=budget, stop=list(stop),
                                        batch_size=self.batch_size,
                                        shared_prefix=shared_text(prompts), on_output=finished)
        bar.close()
        return texts

    def _generation(self, gen_kwargs) -> tuple[tuple[str, ...], int]:
        """(stop strings, budget) of a request's generation arguments: `until` and
        `max_gen_toks` are honoured, sampling is refused, anything else is ignored (one warning
        per key)."""
        kwargs = dict(gen_kwargs or {})
        until = kwargs.pop("until", None) or ()
        until = (until,) if isinstance(until, str) else tuple(until)
        budget = kwargs.pop("max_gen_toks", 256)
        if kwargs.pop("do_sample", False) or float(kwargs.pop("temperature", 0.0) or 0.0) > 0:
            raise AdaFuseError("gen_kwargs do_sample=true / temperature > 0 is not supported: adafuse "
                               "decoders are deterministic; use do_sample=false")
        for key in sorted(set(kwargs) - self._warned):
            log.warning("adafuse ignores the generation argument %r", key)
            self._warned.add(key)
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise AdaFuseError(f"max_gen_toks={budget!r} is not allowed; it must be an integer >= 1")
        return until, budget

    # --- loglikelihood ---------------------------------------------------------------------

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [tuple(r.args) for r in requests]
        results = self._ensemble(pairs, greedy=True, desc="adafuse loglikelihood", disable_tqdm=disable_tqdm)
        for request, result in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", request.args, result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        pairs = [("", r.args[0]) for r in requests]
        results = [total for total, _ in self._ensemble(pairs, greedy=False, desc="adafuse loglikelihood_rolling",
                                                          disable_tqdm=disable_tqdm)]
        for request, result in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, result)
        return results

    def _ensemble(self, pairs, greedy: bool, desc: str, disable_tqdm: bool) -> list[tuple[float, bool]]:
        """(weighted mean of the models' total log-probs, every model greedy) per pair."""
        used = [m for m, w in enumerate(self.weights) if w > 0]
        total_weight = sum(self.weights[m] for m in used)
        scored = {}
        with torch.inference_mode():
            for m in used:
                engine = self.decoder.open_engine(m, ModelCost(self.models[m].name))
                scored[m] = score_continuations(engine, pairs, greedy, self.batch_size,
                                                desc=f"{desc} ({self.models[m].name})", disable_tqdm=disable_tqdm)
        return [(sum(self.weights[m] * scored[m][i][0] for m in used) / total_weight,
                 all(scored[m][i][1] for m in used)) for i in range(len(pairs))]


def shared_text(prompts: Sequence[str]) -> str | None:
    """The prompts' common text up to its last newline (where few-shot examples end), or
    None when there is one prompt or nothing to share."""
    if len(prompts) < 2:
        return None
    common = commonprefix(list(prompts))
    cut = common.rfind("\n")
    return common[: cut + 1] if cut >= 0 else None


def _condition_id(lm) -> int:
    """What a continuation with nothing before it is conditioned on: BOS, else EOS (lm-eval's
    `hf` model does the same)."""
    bos = lm.tokenizer.bos_token_id
    return int(bos if bos is not None else lm.eos_id)


def score_continuations(engine, pairs, greedy: bool, batch_size: int = 1, desc: str = "",
                         disable_tqdm: bool = True) -> list[tuple[float, bool]]:
    """(total log-prob, greedy) of each (context, continuation) for the engine's model, scored
    as the decoders score a span, in the engine's batched forwards (the decoder's engine: cached,
    or the recompute oracle with `mode=recompute`).

    Each distinct context (the ids before a row's scored tokens) is one engine prompt, so a
    multiple-choice item's continuations share one (up to `SCORED_POSITIONS` tokens of them:
    loglikelihood_rolling's texts all follow the same BOS); `batch_size` are scored together.
    The cached engine encodes the ids all contexts share (a task's few-shot examples) once and
    every prompt reads them in place."""
    lm = engine.lm
    cost = ModelCost(lm.name)
    keys: dict[tuple[int, ...], int] = {}
    rows = []  # (key, row, start) per pair
    for context, continuation in pairs:
        text = lm.format_prompt(context)
        (row,), (start,) = proposal_rows(lm, lm.encode(text), text,
                                         [Proposal(text=continuation, terminal=None, proposers=[], kind="continuation")])
        if start == 0:  # nothing to condition on: an empty context and no BOS, or a merge with all of it
            row, start = [_condition_id(lm), *row], 1
        rows.append((keys.setdefault(tuple(row[:start]), len(keys)), row, start))
    contexts = [list(ids) for ids in keys]
    common = len(commonprefix(contexts)) if len(contexts) > 1 else 0
    prefix = engine.prefill(contexts[0][:common], cost) if common >= 2 and hasattr(engine, "prefill") else None
    by_key: dict[int, list[int]] = {}
    for i, (key, _, _) in enumerate(rows):
        by_key.setdefault(key, []).append(i)
    # units: a context's rows, cut where they would score more than SCORED_POSITIONS tokens
    # together (the scoring forward gathers logits over the whole vocabulary at each)
    units: list[tuple[int, list[int]]] = []
    for key in sorted(by_key, key=lambda k: contexts[k]):  # neighbours share more of their ids
        group, size = [], 0
        for i in by_key[key]:
            n = len(rows[i][1]) - rows[i][2]
            if group and size + n > SCORED_POSITIONS:
                units.append((key, group))
                group, size = [], 0
            group.append(i)
            size += n
        units.append((key, group))
    out: list[tuple[float, bool]] = [(0.0, True)] * len(rows)
    for at in tqdm(range(0, len(units), batch_size), desc=desc, disable=disable_tqdm):
        chunk = range(at, min(at + batch_size, len(units)))  # engine keys: unit indices
        engine.add_many([(u, contexts[units[u][0]], cost, prefix) for u in chunk])
        nlls = engine.score({u: ([rows[i][1] for i in units[u][1]], [rows[i][2] for i in units[u][1]])
                             for u in chunk}).nll
        members = [(u, i) for u in chunk for i in units[u][1]]
        flags = (greedy_flags(engine, [(u, rows[i][1], rows[i][2]) for u, i in members]) if greedy
                 else [False] * len(members))
        for (u, i), flag in zip(members, flags):
            _, row, start = rows[i]
            n = len(row) - start
            out[i] = (-nlls[u][units[u][1].index(i)] * n if n > 0 else 0.0, flag)
        for u in chunk:
            engine.remove(u)
    return out


def greedy_flags(engine, rows) -> list[bool]:
    """Whether each row's tokens from `start` on are the model's argmax at every position,
    teacher-forced: branch rows fed one token a step, a row leaving at its first miss."""
    flags = []
    contexts = engine.contexts(list(dict.fromkeys(key for key, _, _ in rows)))
    for key, row, start in rows:
        n = len(row) - start
        flags.append(n == 0 or contexts[key].ids[0] == row[start])
    follow = [j for j, (_, row, start) in enumerate(rows) if flags[j] and len(row) - start > 1]
    if not follow:
        return flags
    branches = engine.open_rows([rows[j][0] for j in follow])
    live = list(range(len(follow)))
    step = 1
    while live:
        tokens = [rows[follow[b]][1][rows[follow[b]][2] + step - 1] for b in live]
        steps = branches.step(live, tokens)
        still = []
        for b, result in zip(live, steps):
            _, row, start = rows[follow[b]]
            if result.dist.ids[0] != row[start + step]:
                flags[follow[b]] = False
            elif start + step + 1 < len(row):
                still.append(b)
        live, step = still, step + 1
    return flags


__all__ = ["AdaFuseLM", "score_continuations", "shared_text"]
