"""Fixtures for the lm-evaluation-harness tests: two tiny random-init models saved to a folder
(so that adafuse and lm-eval's own `hf` model load the same weights), a quiet offline
environment, and lm-eval task YAMLs over local JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import tiny_hf

pytest.importorskip("lm_eval", reason="lm-eval is an optional extra: pip install 'adafuse[lm-eval]'")

QUESTIONS = [
    ("Who wrote Emma?", "Jane Austen", ["Jane Austen", "Charles Dickens", "Mark Twain"], 0),
    ("Which British king married Mary of Teck?", "George V", ["Edward VII", "George V", "Henry VIII"], 1),
    ("What is the capital of France?", "Paris", ["Rome", "Madrid", "Paris"], 2),
]
# the few-shot split: same columns as the items (datasets reads both files as one table)
SHOTS = [("What is two plus two?", "4", ["3", "4", "5"], 1),
         ("Who painted the Mona Lisa?", "Leonardo da Vinci", ["Leonardo da Vinci", "Picasso", "Monet"], 0)]

GENERATE_TASK = """\
task: tiny_generate
dataset_path: json
dataset_kwargs:
  data_files:
    train: {shots}
    test: {items}
training_split: train
fewshot_split: train
test_split: test
num_fewshot: 2
fewshot_config:
  sampler: first_n
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: " {{{{answer}}}}"
target_delimiter: ""
fewshot_delimiter: "\\n\\n"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""

CHOICE_TASK = """\
task: tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps({"question": q, "answer": a, "choices": c, "label": k}) + "\n"
                            for q, a, c, k in rows), encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lm-eval-tiny")
    return {"llama": tiny_hf.build("llama", root / "llama", seed=0),
            "gemma": tiny_hf.build("gemma", root / "gemma", seed=1)}


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory) -> Path:
    """Two lm-eval tasks: `tiny_generate` (generate_until, 2-shot) and `tiny_choice`
    (multiple_choice), both on JSONL files beside their YAMLs."""
    root = tmp_path_factory.mktemp("lm-eval-tasks")
    items = root / "items.jsonl"
    write_jsonl(items, QUESTIONS)
    shots = root / "shots.jsonl"
    write_jsonl(shots, SHOTS)
    (root / "tiny_generate.yaml").write_text(GENERATE_TASK.format(shots=shots, items=items), encoding="utf-8")
    (root / "tiny_choice.yaml").write_text(CHOICE_TASK.format(items=items), encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def quiet_env(monkeypatch, tmp_path_factory):
    """Offline, a private datasets cache, one torch thread (the matrices are tiny)."""
    import torch

    base = tmp_path_factory.getbasetemp()
    for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                       "HF_DATASETS_CACHE": str(base / "datasets-cache"), "OMP_NUM_THREADS": "1",
                       "TOKENIZERS_PARALLELISM": "false",
                       "ADAFUSE_CACHE": str(base / "adafuse-cache")}.items():
        monkeypatch.setenv(key, value)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
