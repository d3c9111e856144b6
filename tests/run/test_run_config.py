"""Every config of conf/ composes and resolves, and the schema rejects typos and wrong types
at compose time: a broken YAML fails here, not on a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import adafuse.runner.schema  # noqa: F401  (registers the schemas and resolvers)
from adafuse.tasks import list_tasks

CONF = Path(__file__).resolve().parents[2] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(*overrides: str, hydra: bool = False):
    with initialize_config_dir(str(CONF), version_base=None):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def resolved(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def test_every_task_card_has_a_config_and_back():
    assert options("task") == list_tasks()


@pytest.mark.parametrize("group", ["models", "task", "decoder", "logger"])
def test_every_option_of_a_group_composes(group):
    for name in options(group):
        cfg = resolved(composed(f"{group}={name}"))
        node = cfg[group]
        if group == "models":
            assert node and all(m["name"] and m["device"] == "auto" for m in node)
        elif group == "task":
            assert node["name"] == name
        else:
            assert node["name"] == name


def test_sweep_presets_compose_with_their_parameters():
    assert options("sweep") == ["baselines", "decoders", "shards4", "theta_ends", "theta_grid"]
    for name in options("sweep"):
        cfg = composed(f"+sweep={name}", hydra=True)
        assert cfg.hydra.sweeper.params, name
    cfg = composed("+sweep=theta_grid", hydra=True)
    assert dict(cfg.hydra.sweeper.params) == {"theta_delta": "0.3,0.5,0.7", "max_words": "2,3"}
    assert composed("+sweep=shards4").num_shards == 4
    assert composed("+sweep=baselines").decoder.name == "greedy"


@pytest.mark.filterwarnings(r"ignore:(?s).*is validated against ConfigStore schema")
@pytest.mark.parametrize("launcher", ["submitit_slurm", "submitit_local"])
def test_launchers_compose(launcher):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra")
    cfg = composed(f"hydra/launcher={launcher}", "hydra.launcher.timeout_min=5", hydra=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher" if "slurm" in launcher else "LocalLauncher")
    assert cfg.hydra.launcher.timeout_min == 5
    if launcher == "submitit_slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1 and "partition" in cfg.hydra.launcher


def test_shortcuts_reach_their_nodes():
    cfg = resolved(composed("task=gsm8k", "theta_delta=0.5", "max_words=2", "num_candidates=4",
                            "limit=7", "batch_size=3", "seed=11", "device=cpu", "max_new_tokens=64"))
    assert cfg["decoder"] | {} == {**cfg["decoder"], "theta_delta": 0.5, "max_words": 2,
                                   "num_candidates": 4, "batch_size": 3}
    assert (cfg["task"]["limit"], cfg["task"]["shuffle_seed"], cfg["task"]["max_new_tokens"]) == (7, 11, 64)
    assert {m["device"] for m in cfg["models"]} == {"cpu"}
    greedy = resolved(composed("decoder=greedy", "decoder.model_index=1", "batch_size=2"))["decoder"]
    assert greedy == {"name": "greedy", "model_index": 1, "mode": greedy["mode"], "batch_size": 2}


def test_default_is_prompt_mode():
    cfg = resolved(composed())
    assert cfg["task"] is None and "Mary of Teck" in cfg["prompt"]
    assert cfg["models"][0]["name"] == "smollm2-135m-instruct"
    assert cfg["decoder"]["name"] == "adafuse" and cfg["logger"]["name"] == "wandb"


def test_run_and_sweep_folders():
    cfg = composed("task=triviaqa", "runs_dir=/tmp/r", hydra=True)
    sweep = cfg.hydra.sweep.dir
    assert sweep.startswith("/tmp/r/triviaqa/") and len(Path(sweep).name) == len("2026-01-01_00-00-00")
    assert composed(hydra=True).hydra.sweep.dir.startswith("runs/prompt/")


@pytest.mark.parametrize("override, words", [
    ("theta_dlta=0.5", "theta_dlta"),                 # a typo'd key
    ("decoder.max_wrds=2", "max_wrds"),               # inside a group
    ("models.0.devcie=cpu", "devcie"),                # inside a model spec
    ("theta_delta=high", "high"),                     # a wrong type
    ("decoder.max_words=2.5", "2.5"),
    ("limit=some", "some"),
])
def test_schema_rejects_at_compose_time(override, words):
    with pytest.raises(ConfigCompositionException) as info:
        composed(override)
    assert words in str(info.value) + str(info.value.__cause__)
