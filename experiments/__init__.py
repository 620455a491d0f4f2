"""Automation experiments on the sandbox data: a plug-in API, three tasks with ground-truth scorers, isolated runs
and a leaderboard.

    import experiments as ex
    data = ex.prepare("declaratie_controle", seed=42)     # public development data: inputs, and truth for the scorer
    # scored runs use ex.prepare_sealed(task, "data/sealed"): made from a secret no participant has
    for exp in ex.discover():                              # experiments/teams/<team>/*.py, read without importing
        if exp.task == data.task:
            result = ex.run(exp, data)                     # own process, time and memory limit, scored
            ex.record("data/warehouse.duckdb", result)
    print(ex.leaderboard("data/warehouse.duckdb"))

See docs/first-experiment.md. Depends on synthetic_data only (no dagster, no great_expectations).
"""
from .api import Experiment, experiment
from .discover import discover
from .errors import ExperimentError, ExperimentWarning, PredictionError
from .isolation import Limits, RunResult, run
from .leaderboard import leaderboard, record
from .scaffold import scaffold
from .tasks import TASKS, TaskData, prepare, prepare_sealed, score, seal_truth, unseal_truth, validate_predictions

__all__ = ["experiment", "Experiment", "discover", "TASKS", "TaskData", "prepare", "prepare_sealed", "seal_truth",
           "unseal_truth", "run", "Limits", "RunResult", "score", "validate_predictions", "scaffold", "leaderboard",
           "record", "ExperimentError", "PredictionError", "ExperimentWarning"]
