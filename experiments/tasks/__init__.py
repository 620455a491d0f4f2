"""The tasks, found the way experiments are: every public module of this package is one task.

A task module has NAME (its module name), DESCRIPTION, SCORE (what the leaderboard number means),
PREDICTION_SCHEMA, DEFAULTS (its parameters), HANDED_OVER (the tables an experiment gets), STARTER (the body of
the function `zandbak experiment new` writes), `prepare(seed, fault_seed, **params) -> TaskData`,
`validate_predictions(df)` and `score(predictions, truth) -> dict`. Every score is "higher is better"; the module
docstring says precisely what is handed over, what is hidden and how it is scored. A new task is one file here plus
its reference baseline under experiments/teams/reference/.

Two kinds of data: `prepare(task, seed=S)` gives public development data anyone can regenerate (never for scores);
`prepare(task, secret=...)` or `prepare_sealed(task, folder)` gives the scored data, made from a secret that stays
in the sealed folder (synthetic_data.sealing), with the fault seed derived apart from the data seed.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import polars as pl

from synthetic_data.dataset import read_truth
from synthetic_data.sealing import derive_seed, project_secret, write_truth

from ..errors import ExperimentError
from ._common import TaskData

__all__ = ["Task", "TASKS", "TaskData", "prepare", "prepare_sealed", "score", "validate_predictions"]

REQUIRED = ("NAME", "DESCRIPTION", "SCORE", "PREDICTION_SCHEMA", "DEFAULTS", "HANDED_OVER", "STARTER", "prepare",
            "validate_predictions", "score")


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    score_meaning: str
    prediction_schema: dict[str, pl.DataType]
    defaults: dict
    handed_over: tuple[str, ...]
    starter: str
    module: ModuleType

    @property
    def doc(self) -> str:
        return self.module.__doc__ or ""


def _discover() -> dict[str, Task]:
    tasks = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        m = importlib.import_module(f"{__name__}.{info.name}")
        missing = [a for a in REQUIRED if not hasattr(m, a)]
        if missing or m.NAME != info.name:
            # a broken task file is the project's bug, not a participant's: fail loudly
            raise ImportError(f"experiments/tasks/{info.name}.py is not a task: missing {', '.join(missing)}"
                              if missing else f"experiments/tasks/{info.name}.py: NAME must be {info.name!r}")
        tasks[m.NAME] = Task(m.NAME, m.DESCRIPTION, m.SCORE, m.PREDICTION_SCHEMA, m.DEFAULTS,
                             tuple(m.HANDED_OVER), m.STARTER, m)
    return tasks


TASKS: dict[str, Task] = _discover()


def get(task: str) -> Task:
    if task not in TASKS:
        raise ExperimentError(f"task {task!r} is unknown; allowed: {', '.join(TASKS)}")
    return TASKS[task]


def prepare(task: str, seed: int | None = 42, secret: str | None = None, **params) -> TaskData:
    """The task's data: inputs for the experiment, truth for the scorer. `params` override the task's defaults
    (region, scale, years ...; see TASKS[task].defaults).

    With `secret` (scored data) the data and fault seeds are derived from it and `seed` is ignored: the TaskData
    then carries seed None. Without, `seed` is a public seed: development data, reproducible by anyone."""
    t = get(task)
    unknown = set(params) - set(t.defaults)
    if unknown:
        raise ExperimentError(f"task {task}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                              f"allowed: {', '.join(t.defaults)}")
    if secret is not None:
        data = t.module.prepare(seed=derive_seed(secret, f"task:{task}:data"),
                                fault_seed=derive_seed(secret, f"task:{task}:faults"), **params)
        return dataclasses.replace(data, seed=None)
    return t.module.prepare(seed=seed, fault_seed=seed, **params)


def prepare_sealed(task: str, sealed: str | Path, **params) -> TaskData:
    """The scored data of `task`, from the secret of the sealed folder `sealed`/tasks (created on first use): every
    scored run of a project sees the same data, and no public seed regenerates it."""
    return prepare(task, secret=project_secret(Path(sealed) / "tasks"), **params)


def _truth_path(sealed: str | Path, data: TaskData) -> Path:
    return Path(sealed) / "tasks" / data.task / f"{data.dataset_hash}.truth.parquet"


def seal_truth(data: TaskData, sealed: str | Path) -> TaskData:
    """`data` without its truth, which goes to the sealed folder: what may be stored where experiments could look."""
    write_truth(_truth_path(sealed, data), data.truth)
    return dataclasses.replace(data, truth=data.truth.clear())


def unseal_truth(data: TaskData, sealed: str | Path) -> TaskData:
    """`data` with the truth that seal_truth put away."""
    path = _truth_path(sealed, data)
    if not path.exists():
        raise ExperimentError(f"task {data.task}: no sealed truth for dataset {data.dataset_hash[:12]} in "
                              f"{path.parent}; prepare the task data again")
    return dataclasses.replace(data, truth=read_truth(path))


def validate_predictions(task: str, predictions) -> pl.DataFrame:
    return get(task).module.validate_predictions(predictions)


def score(task: str, predictions, truth: pl.DataFrame) -> dict:
    """Score predictions against the truth of `prepare(task, ...)`: a dict with `score` (the leaderboard number,
    higher is better) and the task's detailed metrics. Raises PredictionError when the predictions have the wrong
    shape."""
    return get(task).module.score(predictions, truth)
