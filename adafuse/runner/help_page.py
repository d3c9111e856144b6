"""The --help pages of the Hydra entry points, `python -m adafuse.run` and `python -m adafuse.serve`:
the one page shape of every entry point (`adafuse.cli.Command`, rendered by `cli.render`), whose
arguments are read from the config: the config groups (the folders of conf/, with the options
each holds and the default of the app's config file) and the top-level shortcuts (the fields of
the app's schema, shown with this invocation's values).

conf/hydra/help/adafuse.yaml's template is `${adafuse.help:run}` (adafuse_serve.yaml's,
`${adafuse.help:serve}`), the resolver adafuse.runner.schema registers: Hydra resolves the
template in the composed config, then fills its `$NAME` placeholders, so the page's `$` are
doubled here (`page`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Optional

from omegaconf import OmegaConf

from adafuse import cli
from adafuse.safe_read import printable

HELP_SKIP = {"hydra/help"}  # groups that are no choice of a user's
PLUS = ("sweep", "experiment", "system")  # groups not in the defaults list: `+sweep=NAME`
CLIP = 32  # a longer value (the prompt) is shown cut, its default written in full in conf/

# what a group holds; a group not named here (experiment/table1_sized, ...) says its folder
GROUPS = {
    "models": ("SET", "the model set (one model's field: models.N.KEY=...)"),
    "task": ("NAME", "the task card, tasks/NAME/task.yaml (none: decode prompt= alone)"),
    "decoder": ("NAME", "the decoder (its parameters: decoder.KEY=...)"),
    "logger": ("NAME", "where metrics go besides the run folder (wandb: offline without an API key)"),
    "hydra/launcher": ("NAME", "how the jobs of -m run: basic one after another here, submitit_slurm "
                               "one cluster job each"),
    "experiment": ("NAME", "an experiment preset, with -m (Table 1's grid)"),
    "sweep": ("NAME", "a sweep preset, with -m"),
    "system": ("NAME", "one system of Table 1's grid (a decoder and its settings)"),
}

# what a top-level key means, as `key=PLACEHOLDER`; SERVE_KEYS: the server's own readings
KEYS = {
    "prompt": ("TEXT", "prompt mode (no task=): decode this one prompt, print the answer and the "
                       "rounds; \\n and \\t in it are read as newline and tab"),
    "max_new_tokens": ("N", "the most tokens an answer may have; null: the task card's (prompt mode: 32)"),
    "stop": ("[S,...]", "the strings that end an answer; null: the task card's (prompt mode: [\"\\n\"])"),
    "theta_delta": ("X", "confidence threshold θ on the top-1 margin, in [0, 1]"),
    "max_words": ("N", "the most words one proposal may hold"),
    "num_candidates": ("B", "one-word proposals per uncertain model"),
    "limit": ("N", "the first N items of the task; null: all"),
    "batch_size": ("N", "prompts decoded together"),
    "seed": ("N", "shuffle the items with this seed before limit; null: the file's order"),
    "device": ("D", "cpu, cuda, cuda:N or auto, for every model (one model: models.0.device=cuda:0)"),
    "dtype": ("T", "the models' dtype (float32, bfloat16, ...); auto: bfloat16 on CUDA and on CPUs "
                   "with AMX or AVX512-BF16, else float32"),
    "runs_dir": ("DIR", "run folders go to DIR/<task>/<date>_<time>/ (prompt mode: DIR/prompt/...)"),
    "resume": ("RUN_DIR", "continue this run folder (its finished items are kept, not redone; a complete "
                             "run given a larger limit decodes only the new items)"),
    "shard": ("K", "data parallel: this job decodes slice K of num_shards (python -m adafuse.merge "
                   "joins them)"),
    "num_shards": ("N", "data parallel: the number of slices"),
    "progress": ("BOOL", "the progress bar"),
    "threads": ("N", "CPU threads: auto (the usable cores less their load; OMP_NUM_THREADS wins) or N"),
}
SERVE_KEYS = {
    "max_new_tokens": ("N", "a request's budget when it names none (max_tokens), in the first model's "
                            "tokens"),
    "batch_size": ("N", "requests decoded together; others wait in the queue"),
    "host": ("ADDR", "the address to listen on (0.0.0.0: every interface)"),
    "port": ("N", "the port to listen on"),
    "model_id": ("ID", "the id clients name the ensemble by; null: <decoder>:<model>+<model>"),
    "grace_seconds": ("S", "on SIGTERM, how long in-flight requests may still run before they are "
                           "cancelled"),
    "prefix_min_chars": ("N", "a prompt start (to a line break) this long, shared with recent requests, "
                              "is prefilled once per model and reused; 0: off"),
}
SKIP = {"models", "task", "decoder", "logger", "engine", "ray", "serve"}  # nodes, not shortcuts


def groups(config_name: str, only: Optional[set[str]] = None) -> list[tuple[str, list[str], Optional[str]]]:
    """(the group as typed, its options, its default) for each folder of conf/ that holds
    options (hydra/launcher among them), or each of `only`: the groups of conf/<config_name>.yaml's
    defaults list first, in its order (a null default is `none`), then the others by name."""
    from adafuse.runner.schema import CONF

    defaults: dict[str, Optional[str]] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(CONF / f"{config_name}.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                defaults[key.replace("override ", "").strip()] = "none" if value is None else str(value)
    found = {}
    for folder in sorted(p for p in CONF.rglob("*") if p.is_dir()):
        group = folder.relative_to(CONF).as_posix()
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        if options and group not in HELP_SKIP and (only is None or group in only):
            found[group] = options
    order = [g for g in defaults if g in found] + [g for g in found if g not in defaults]
    return [(("+" if g in PLUS else "") + g, found[g], defaults.get(g)) for g in order]


def shown(value: Any) -> str:
    """A value as it is typed on the command line: null, true, [a,b], text (control characters
    escaped, a long one cut)."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, (list, tuple)):
        text = "[" + ",".join(shown(v) for v in value) + "]"
    else:
        text = printable(str(value), keep_newlines=False)
    return text if len(text) <= CLIP else text[:CLIP - 1] + "…"


def group_args(config_name: str, only: Optional[set[str]] = None) -> list[cli.Arg]:
    args = []
    for typed, options, default in groups(config_name, only):
        group = typed.lstrip("+")
        placeholder, meaning = GROUPS.get(group, ("NAME", f"a part of the presets of conf/{group}/"))
        args.append(cli.Arg(f"{typed}={placeholder}", f"{meaning}: {', '.join(options)}", default))
    return args


def key_args(root: Any, names: list[str], meanings: dict[str, tuple[str, str]], prefix: str = "") -> list[cli.Arg]:
    """`key=PLACEHOLDER` for each name, its default this invocation's value in `root`."""
    args = []
    for name in names:
        placeholder, meaning = meanings[name]
        value = OmegaConf.select(root, prefix + name, throw_on_resolution_failure=False)
        args.append(cli.Arg(f"{prefix}{name}={placeholder}", meaning, shown(value)))
    return args


OTHER_KEYS = "Any other key: by its path, e.g. decoder.mode=recompute, models.0.device=cuda:0,\n"
HYDRA_FLAGS = "--cfg job prints the composed config; --hydra-help, Hydra's own flags."


def run_command(root: Any) -> cli.Command:
    from adafuse.runner.schema import RunConfig

    names = [f.name for f in fields(RunConfig) if f.name not in SKIP]
    return cli.Command(
        prog="python -m adafuse.run",
        summary="Decode a task (or one prompt) with an ensemble of LMs or one model; each run writes a run "
                "folder (results.json, samples.jsonl, trace.jsonl).",
        usage=("[-m] [group=option ...] [key=value ...]",),
        args=(*group_args("config"), *key_args(root, names, KEYS),
              cli.Arg("-m, --multirun", "one job for each combination of the comma-separated values "
                                        "(theta_delta=0.3,0.5 max_words=2,3) or of a +sweep= preset, each "
                                        "with its own run folder under one sweep folder")),
        examples=(
            'prompt="Question: Who wrote Emma?\\nAnswer:" theta_delta=0.5',
            "task=gsm8k theta_delta=0.5 limit=20",
            "-m +sweep=theta_grid task=triviaqa limit=20",
            "task=triviaqa limit=20 resume=runs/triviaqa/<date>_<time>   # continue a run",
        ),
        notes=f"""\
The groups and their options are read from conf/ (README: Running experiments); a key's
default is its value in this invocation (python -m adafuse.run task=gsm8k --help shows it).
{OTHER_KEYS}task.source=hf, engine.share_prefix=false.
The config is checked against a schema when it is composed: a typo'd key or a wrong type stops
before anything loads. Bad input prints one line, error: ..., and exits with status 2.
{HYDRA_FLAGS}""",
    )


def serve_command(root: Any) -> cli.Command:
    from adafuse.serve.config import ServeConf, ServeConfig

    names = [f.name for f in fields(ServeConfig) if f.name not in SKIP]
    meanings = {**KEYS, **SERVE_KEYS}
    return cli.Command(
        prog="python -m adafuse.serve",
        summary="Serve an ensemble of LMs (or one model) behind an OpenAI-compatible HTTP API: concurrent "
                "requests are decoded together by the decoder, joining the batch between rounds.",
        usage=("[group=option ...] [key=value ...]",),
        args=(*group_args("serve", {"models", "decoder"}), *key_args(root, names, meanings),
              *key_args(root, [f.name for f in fields(ServeConf)], meanings, prefix="serve.")),
        examples=(
            "                                  # the embedded pair on 127.0.0.1:8000",
            "models=smol_gemma serve.port=9000",
            "models=llama31_mistral dtype=bfloat16 serve.host=0.0.0.0 batch_size=16",
            "decoder=greedy decoder.model_index=1 serve.model_id=gemma",
        ),
        notes=f"""\
Endpoints: POST /v1/completions, POST /v1/chat/completions (each model renders the messages with
its chat template), GET /v1/models, GET /health. Sampling, a malformed field or a prompt past a
member's context is a 400 with a one-line reason, and the server stays up.
The models, decoders, shortcuts and checks are python -m adafuse.run's (README: Serve it).
{OTHER_KEYS}engine.share_prefix=false.
Bad input (a typo'd key, an unknown model set, a port in use) prints one line, error: ..., and
exits with status 2 before any model loads.
SIGTERM (or Ctrl-C) stops taking requests, gives those in flight serve.grace_seconds to finish,
cancels the rest and exits 0.
{HYDRA_FLAGS}""",
    )


PAGES = {"run": run_command, "serve": serve_command}


def page(app: str, root: Any) -> str:
    """The resolver's value: the app's page, for Hydra's help template (`$` doubled, since Hydra
    fills `$NAME`s after resolving; no last newline, since Hydra prints it with one)."""
    if app not in PAGES:
        raise ValueError(f"adafuse.help: no page {app!r}; one of {', '.join(PAGES)}")
    return cli.render(PAGES[app](root)).rstrip("\n").replace("$", "$$")
