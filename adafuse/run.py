"""Decode with an ensemble (or one model) from the command line, through Hydra.

    python -m adafuse.run                                   # the default pair, default prompt
    python -m adafuse.run prompt="Question: Who wrote Emma?\nAnswer:" theta_delta=0.5
    python -m adafuse.run decoder=greedy decoder.model_index=1

Prints the answer and a one-line-a-round trace summary.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from adafuse.errors import AdaFuseError

log = logging.getLogger("adafuse.run")


def decode_prompt(cfg: DictConfig) -> None:
    from adafuse.decoding import build_decoder
    from adafuse.models import load_model

    specs = OmegaConf.to_container(cfg.models, resolve=True)
    if not specs:
        raise AdaFuseError("models is empty; a run needs at least one model")
    models = []
    for spec in specs:
        lm = load_model(spec)
        print(f"loaded {lm.name} in {lm.load_seconds:.1f} s ({lm.device}, {lm.model.dtype})")
        models.append(lm)
    decoder = build_decoder(OmegaConf.to_container(cfg.decoder, resolve=True), models)
    # a shell cannot easily pass a newline inside prompt="...": read \n and \t escapes
    prompt = cfg.prompt.replace("\\n", "\n").replace("\\t", "\t")
    out = decoder.generate(prompt, max_new_tokens=cfg.max_new_tokens, stop=list(cfg.stop))
    print(f"\nprompt: {prompt!r}")
    print(f"answer: {out.text!r}  ({out.finish_reason})")
    if out.trace:
        print(out.summary([m.name for m in models]))
    s = out.stats
    costs = ", ".join(f"{m.name}: {m.forwards} forwards, {m.tokens_fed} tokens" for m in s.models)
    print(f"{s.rounds} rounds, {s.words} words, {s.seconds:.1f} s; {costs}")


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        decode_prompt(cfg)
    except AdaFuseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
