"""The three tasks: what each hands to an experiment, what it hides, and how predictions are scored.

Each task module has NAME, DESCRIPTION, SCORE (what the leaderboard number means), PREDICTION_SCHEMA,
`prepare(seed, ...) -> TaskData`, `validate_predictions(df)` and `score(predictions, truth) -> dict`. Every score is
"higher is better"; the module docstrings say precisely what is handed over, what is hidden and how it is scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import polars as pl

from ..errors import ExperimentError
from . import declaratie_controle, verzoek_triage, zorgvraag_forecast
from ._common import TaskData

__all__ = ["Task", "TASKS", "TaskData", "prepare", "score", "validate_predictions"]


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    score_meaning: str
    prediction_schema: dict[str, pl.DataType]
    defaults: dict
    module: ModuleType

    @property
    def doc(self) -> str:
        return self.module.__doc__ or ""


TASKS: dict[str, Task] = {
    m.NAME: Task(m.NAME, m.DESCRIPTION, m.SCORE, m.PREDICTION_SCHEMA, m.DEFAULTS, m)
    for m in (declaratie_controle, verzoek_triage, zorgvraag_forecast)
}


def get(task: str) -> Task:
    if task not in TASKS:
        raise ExperimentError(f"task {task!r} is unknown; allowed: {', '.join(TASKS)}")
    return TASKS[task]


def prepare(task: str, seed: int = 42, **params) -> TaskData:
    """Generate the task's data: inputs for the experiment, truth for the scorer. `params` override the task's
    defaults (region, scale, years ...; see TASKS[task].defaults)."""
    t = get(task)
    unknown = set(params) - set(t.defaults)
    if unknown:
        raise ExperimentError(f"task {task}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(t.defaults)}")
    return t.module.prepare(seed=seed, **params)


def validate_predictions(task: str, predictions) -> pl.DataFrame:
    return get(task).module.validate_predictions(predictions)


def score(task: str, predictions, truth: pl.DataFrame) -> dict:
    """Score predictions against the truth of `prepare(task, ...)`: a dict with `score` (the leaderboard number,
    higher is better) and the task's detailed metrics. Raises PredictionError when the predictions have the wrong
    shape."""
    return get(task).module.score(predictions, truth)
