"""Finding task cards: `list_tasks()` and `get_task(name)`.

The cards live in a directory with one folder a task (`<dir>/<name>/task.yaml`). Which
directory: the `tasks_dir` argument, else the `ADAFUSE_TASKS_DIR` environment variable, else
`tasks/` at the root of this repository (adafuse is installed editable).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import adafuse
from adafuse.tasks.card import read_card
from adafuse.tasks.errors import TaskError
from adafuse.tasks.task import Task

ENV_VAR = "ADAFUSE_TASKS_DIR"
CARD_FILE = "task.yaml"

PathLike = Union[str, os.PathLike]


def find_tasks_dir(explicit: Optional[PathLike] = None) -> Path:
    if explicit is not None:
        where, how = Path(explicit), "argument tasks_dir"
    elif os.environ.get(ENV_VAR):
        where, how = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        where, how = Path(adafuse.__file__).resolve().parent.parent / "tasks", "default"
    if not where.is_dir():
        raise TaskError(f"tasks directory not found: {where} (from {how}; set {ENV_VAR} to the folder of task cards)")
    return where


def list_tasks(tasks_dir: Optional[PathLike] = None) -> list[str]:
    """Names of the tasks with a card, sorted."""
    root = find_tasks_dir(tasks_dir)
    return sorted(p.parent.name for p in root.glob(f"*/{CARD_FILE}"))


def get_task(name: str, source: Optional[str] = None, tasks_dir: Optional[PathLike] = None) -> Task:
    """The task `name`, reading items from `source`: a source named in its card ("bundled",
    "hf"), or a path to a JSONL file; the card's default when None."""
    known = list_tasks(tasks_dir)
    if name not in known:
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(known) or 'none'}")
    return Task(read_card(find_tasks_dir(tasks_dir) / name / CARD_FILE), source=source)
