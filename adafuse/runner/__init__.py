"""The experiment runner behind `python -m adafuse.run`.

schema.py      the config schema (Hydra ConfigStore) and the resolvers conf/ uses
experiment.py  one run: checks, items, models, the decode loop, scoring, results
items.py       prompt mode, shards, and the sample / trace records of an item
rundir.py      the run folder: append-only samples and trace, results.json, continuing a run
provenance.py  versions, git commit, model file hashes

    from adafuse.runner.experiment import RunContext, run_experiment
"""
