"""Comparing runs: `python -m adafuse.compare <run or sweep folders> [--html out.html] [--wandb]`.

load.py        run folders into `Run`s, read as data (partial and damaged ones too, with a note)
costs.py       a run's cost totals from its samples (older folders too: a missing field said)
hydra_config.py .hydra/config.yaml as plain data, no interpolation resolved
grid.py        the Table-1 grid (tasks × systems on 0-100, averages, gain over the best single
               model): the one every view below prints
table.py       runs per task sorted by the main metric, the best marked, Pareto fronts, the
               terminal report
disagree.py    per-item disagreements between two runs and the rounds where they part, the
               default pair (AdaFuse against the best single model)
svg.py         the charts, drawn as inline SVG; layout.py where their marks go (none hidden)
html.py        the self-contained HTML report
wandb_table.py the grid and the runs as W&B tables
bootstrap.py   bootstrap intervals for the grid's cells, paired differences
markdown.py    RESULTS.md's text; facts.py its computed facts; plot.py its report and main plot
results.py     RESULTS.md for Table 1 (`python -m adafuse.compare.results`): the command line
"""

from adafuse.compare.load import Run, load_runs

__all__ = ["Run", "load_runs"]
