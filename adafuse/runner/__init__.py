"""The experiment runner behind `python -m adafuse.run`.

schema.py      the config schema (Hydra ConfigStore) and the resolvers conf/ uses
experiment.py  one run: checks, items, models, the decode loop, scoring, results
items.py       the sample / trace records of a decoded item
provenance.py  model file hashes

The run folder (RunDir) is adafuse.runfolder's; the task and its items adafuse.tasks.selection's.

    from adafuse.runner.experiment import RunContext, run_experiment
"""
