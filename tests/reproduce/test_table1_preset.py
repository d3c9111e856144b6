"""The Table-1 preset (conf/experiment/table1_embedded.yaml): it composes to 7 tasks × 11
systems, each the decoder it names; it runs end to end on tiny models into
<runs_dir>/table1_embedded/<task>/<system>/, a rerun skips what is done, and the RESULTS writer
reads the folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests import tiny_hf

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
TASKS = ["triviaqa", "nq", "squad", "flores_en_de", "flores_de_en", "flores_en_ro", "gsm8k"]
SYSTEMS = {  # system -> the decoder settings it must compose to
    "greedy_smol": {"name": "greedy", "model_index": 0},
    "greedy_gemma": {"name": "greedy", "model_index": 1},
    "adafuse": {"name": "adafuse", "theta_delta": 0.7, "max_words": 3, "num_candidates": 3},
    "adafuse_theta0": {"name": "adafuse", "theta_delta": 0.0, "max_words": 3, "num_candidates": 3},
    "adafuse_theta1": {"name": "adafuse", "theta_delta": 1.0, "max_words": 3, "num_candidates": 3},
    "adafuse_words1": {"name": "adafuse", "theta_delta": 0.7, "max_words": 1, "num_candidates": 3},
    "adafuse_b1": {"name": "adafuse", "theta_delta": 0.7, "max_words": 3, "num_candidates": 1},
    "fixed_span_1": {"name": "fixed_span", "span_words": 1},
    "fixed_span_3": {"name": "fixed_span", "span_words": 3},
    "union_topk": {"name": "union_topk", "top_k": 10},
    "rerank": {"name": "rerank"},
}


@pytest.fixture
def compose():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    import adafuse.runner.schema  # noqa: F401 - stores the schemas and resolvers

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        def run(*overrides: str, hydra: bool = False) -> dict:
            cfg = hydra_compose("config", ["+experiment=table1_embedded", *overrides], return_hydra_config=hydra)
            if hydra:
                return OmegaConf.to_container(cfg.hydra, resolve=False)
            return OmegaConf.to_container(cfg, resolve=True)

        yield run


def test_the_preset_sweeps_seven_tasks_by_eleven_systems(compose):
    hydra = compose(hydra=True)
    params = hydra["sweeper"]["params"]
    assert params["experiment/table1_tasks"].split(",") == TASKS
    assert params["system"].split(",") == list(SYSTEMS)
    assert {p.stem for p in (CONF / "system").glob("*.yaml")} == set(SYSTEMS)  # none left out
    assert hydra["sweep"]["dir"] == "${runs_dir}/table1_embedded"  # fixed: a rerun resumes it
    assert hydra["sweep"]["subdir"] == "${task.name}/${hydra:runtime.choices.system}"


def test_every_task_and_system_composes_to_what_it_names(compose):
    limits = {}
    for task in TASKS:
        cfg = compose(f"experiment/table1_tasks={task}", "system=adafuse")
        assert cfg["task"]["name"] == task and cfg["logger"]["name"] == "none"
        limits[task] = cfg["task"]["limit"]
        assert cfg["models"][0]["name"] == "smollm2-135m-instruct" and cfg["models"][1]["name"] == "gemma3-270m"
    assert all(isinstance(n, int) and n > 0 for n in limits.values()), limits
    seen = set()
    for name, expected in SYSTEMS.items():
        # a stray shortcut on the command line must not turn one system into another
        cfg = compose("experiment/table1_tasks=gsm8k", f"system={name}", "theta_delta=0.3", "max_words=2")
        decoder = cfg["decoder"]
        assert {k: decoder.get(k) for k in expected} == expected, name
        key = json.dumps({k: v for k, v in decoder.items() if k not in ("mode", "batch_size")}, sort_keys=True)
        assert key not in seen, f"{name} composes to the same decoder as another system"
        seen.add(key)
        assert cfg["task"]["limit"] == limits["gsm8k"]
    assert compose("experiment/table1_tasks=nq", "limit=1")["task"]["limit"] == 1  # limit=1 wins


@pytest.fixture(scope="module")
def tiny_conf(tmp_path_factory) -> Path:
    """conf/models/tiny.yaml naming two tiny random-init models (a Llama and a Gemma 3)."""
    return tiny_hf.tiny_conf(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def run_preset(tiny_conf, monkeypatch, tmp_path_factory):
    """`python -m adafuse.run -m +experiment=table1_embedded ...` in this process, on the tiny models."""
    import torch

    import adafuse.run

    for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                       "ADAFUSE_CACHE": str(tmp_path_factory.getbasetemp() / "adafuse-cache")}.items():
        monkeypatch.setenv(key, value)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: a second thread only contends

    def run(*overrides: str) -> int:
        monkeypatch.setattr(sys, "argv", ["adafuse.run", "-m", "+experiment=table1_embedded",
                                          f"hydra.searchpath=[file://{tiny_conf}]", "models=tiny",
                                          "device=cpu", "max_new_tokens=6", "progress=false", *overrides])
        try:
            adafuse.run.main()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        return 0

    yield run
    torch.set_num_threads(threads)


def test_the_preset_runs_resumes_and_reports(run_preset, tmp_path, capsys):
    from adafuse.compare.results import main as write_results

    tasks, systems = ["triviaqa", "flores_en_de"], ["greedy_smol", "greedy_gemma", "adafuse", "fixed_span_3"]
    args = ("limit=1", f"runs_dir={tmp_path}", f"experiment/table1_tasks={','.join(tasks)}", f"system={','.join(systems)}")
    assert run_preset(*args) == 0, capsys.readouterr().err
    sweep = tmp_path / "table1_embedded"
    folders = sorted(str(p.parent.relative_to(sweep)) for p in sweep.glob("*/*/results.json"))
    assert folders == sorted(f"{t}/{s}" for t in tasks for s in systems)
    stamps = {}
    for folder in folders:
        results = json.loads((sweep / folder / "results.json").read_text())
        assert results["status"] == "complete" and results["n_items"] == 1 and results["resumed_items"] == 0
        stamps[folder] = [(sweep / folder / name).read_bytes() for name in ("samples.jsonl", "results.json")]

    # the same command again: every run is complete, so each is left as it was (a finished run
    # rerun is a no-op: nothing decoded, nothing rewritten)
    assert run_preset(*args) == 0, capsys.readouterr().err
    for folder in folders:
        assert [(sweep / folder / name).read_bytes() for name in ("samples.jsonl", "results.json")] == stamps[folder]

    out = tmp_path / "report" / "RESULTS.md"
    assert write_results([str(sweep), "--out", str(out), "--resamples", "50", "--no-png", "--no-html"]) == 0
    text = out.read_text()
    assert "| system | triviaqa<br>" in text and "flores_en_de<br>" in text
    assert "| **AdaFuse** |" in text and "fixed_span k=3" in text
    # folders the runner writes today load with every cost field compare reads, and no note
    from adafuse.compare import load_runs

    runs, notes = load_runs([sweep])
    assert notes == [] and len(runs) == len(folders)
    assert all(r.forwards_per_word is not None and r.seconds_per_item is not None for r in runs)
