"""Comparing runs: `python -m adafuse.compare <run or sweep folders> [--html out.html] [--wandb]`.

load.py        run folders into `Run`s (partial and damaged ones too, with a note)
table.py       runs per task sorted by the main metric, the best marked, Pareto fronts, the
               Table-1 grid (tasks × systems, averages, gain over the best single model)
disagree.py    per-item disagreements between two runs and the rounds where they part
svg.py         the charts, drawn as inline SVG
html.py        the self-contained HTML report
wandb_table.py the grid and the runs as W&B tables
results.py     RESULTS.md for Table 1 (`python -m adafuse.compare.results`): the grid with
               bootstrap intervals, paired gains, cost, the report and its main plot
"""

from adafuse.compare.load import Run, load_runs

__all__ = ["Run", "load_runs"]
