"""The task registry: the paper's benchmarks as declarative cards (tasks/<name>/task.yaml),
with their prompts, data, answer filters and exact scorers.

    from adafuse.tasks import get_task, list_tasks
    task = get_task("gsm8k")
    prompts = [task.prompt(d) for d in task.docs(limit=8)]
"""

from adafuse.tasks.errors import TaskError
from adafuse.tasks.filters import register_filter
from adafuse.tasks.metrics import MetricOutput, register_item_metric, register_metric
from adafuse.tasks.registry import find_tasks_dir, get_task, list_tasks
from adafuse.tasks.task import ScoreResult, Task

__all__ = [
    "MetricOutput", "ScoreResult", "Task", "TaskError", "find_tasks_dir", "get_task", "list_tasks",
    "register_filter", "register_item_metric", "register_metric",
]
