"""`compare --wandb`: the Table-1 grid and the runs, as W&B tables in one W&B run.

Each table row has the config flattened into columns (decoder, theta_delta, max_words,
num_candidates, model set, sweep), so W&B can group and filter by them. Without an API key
(or with WANDB_MODE=offline) it logs offline into `<dir>/wandb/` and says how to sync; if
W&B fails in any way it says so in one line, and the terminal report stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adafuse.compare.load import Run, first_line
from adafuse.compare.grid import Grid, build_grid, scaled

CONFIG_COLUMNS = ("decoder", "theta_delta", "max_words", "num_candidates", "model_set", "models")


def config_columns(run: Run) -> list:
    return [run.decoder, run.theta_delta, run.max_words, run.num_candidates, run.model_set,
            " + ".join(run.models)]


def other_settings(runs: Sequence[Run]) -> list[str]:
    """Settings of other decoders (span_words, top_k, ...): a column each."""
    return sorted({k for r in runs for k in r.settings} - set(CONFIG_COLUMNS))


def setting_values(run: Run, keys: list[str]) -> list:
    values = [run.settings.get(k) for k in keys]
    return [v if v is None or isinstance(v, (int, float, str, bool)) else str(v) for v in values]


def grid_table(grid: Grid) -> tuple[list[str], list[list]]:
    """Columns and rows of the Table-1 grid (grid.py: 0-100, as RESULTS.md): one row a system,
    one column a task."""
    extra = other_settings([r for s in grid.systems for r in s.runs.values()])
    columns = ["system", *CONFIG_COLUMNS, "sweep", "single_model", *extra, *grid.tasks, "avg",
               "gain_vs_best_single"]
    rows = []
    for system in grid.systems:
        run = next(iter(system.runs.values()))
        sweeps = sorted({r.sweep for r in system.runs.values() if r.sweep})
        rows.append([system.label, *config_columns(run), ", ".join(sweeps) or None, system.single,
                     *setting_values(run, extra),
                     *[system.value(t) for t in grid.tasks], system.average(grid.tasks), grid.gain(system)])
    return columns, rows


def runs_table(runs: Sequence[Run]) -> tuple[list[str], list[list]]:
    """One row a run: task, flattened config, sweep, main metric and costs."""
    extra = other_settings(runs)
    columns = ["run", "task", *CONFIG_COLUMNS, "sweep", *extra, "n_items", "complete", "main_metric",
               "main", "seconds_per_item", "forwards_per_word", "mean_span_words", "mean_uncertain_share"]
    rows = [[str(r.path), r.task, *config_columns(r), r.sweep, *setting_values(r, extra), r.n_done,
             r.complete, r.main_metric, scaled(r), r.seconds_per_item, r.forwards_per_word,
             r.cost.get("mean_span_words"), r.cost.get("mean_uncertain_share")] for r in runs]
    return columns, rows


def log_to_wandb(runs: Sequence[Run], directory: Path, project: str = "adafuse",
                 entity: str | None = None) -> str | None:
    """Log the tables; returns a one-line message saying where they went (or why not)."""
    from adafuse.loggers.wandb_logger import choose_mode

    mode, why = choose_mode(None)
    if mode == "disabled":
        return "wandb: disabled (WANDB_MODE=disabled); nothing logged"
    sweeps = sorted({r.sweep for r in runs if r.sweep})
    group = sweeps[0] if len(sweeps) == 1 else "compare"
    run = None
    try:
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        run = wandb.init(project=project, entity=entity, job_type="compare", group=group,
                         name=f"compare/{group}", dir=str(directory), mode=mode,
                         config={"runs": [str(r.path) for r in runs], "sweeps": sweeps},
                         settings=wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                                 save_code=False, init_timeout=30.0))
        grid_columns, grid_rows = grid_table(build_grid(runs))
        run_columns, run_rows = runs_table(runs)
        run.log({"table1": wandb.Table(columns=grid_columns, data=grid_rows),
                 "runs": wandb.Table(columns=run_columns, data=run_rows)})
        where = (f"offline ({why}); sync later with: wandb sync {Path(run.dir).parent}"
                 if mode == "offline" else getattr(run, "url", None) or mode)
        run.finish()
        return f"wandb: {len(grid_rows)} systems, {len(run_rows)} runs logged, {where}"
    except Exception as exc:  # noqa: BLE001 - wandb raises its own errors, timeouts among them
        if run is not None:
            try:
                run.finish(exit_code=1)
            except Exception:  # noqa: BLE001, S110 - already failing; the message below says so
                pass
        return f"wandb: failed ({first_line(exc)}); nothing logged"
