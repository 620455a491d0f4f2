"""What an experiment is, and the decorator that declares one.

    from experiments import experiment

    @experiment(name="alles_goedkeuren", task="declaratie_controle", description="Accept every claim line")
    def predict(tables):               # dict of polars frames: the task's inputs, read-only
        return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"), retourcode=pl.lit(None, pl.String))

The decorator returns an `Experiment`, which can still be called like the function. Files under
`experiments/teams/<team>/` are found by `discover()` without being imported (see discover.py); the isolated runner
imports the file in its own process with `load()`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import keyword
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import polars as pl

from .errors import ExperimentError

PredictFn = Callable[[dict[str, pl.DataFrame]], pl.DataFrame]

# Experiments declared so far in this process, in declaration order (the loader picks out what one file declared).
_REGISTRY: list["Experiment"] = []
_LOADED: dict[str, list["Experiment"]] = {}


@dataclass(frozen=True)
class Experiment:
    name: str
    team: str
    task: str
    description: str
    fn: PredictFn = field(repr=False, compare=False)
    path: Path | None = None     # the file, or the folder of a package experiment; None when defined in a notebook

    def __call__(self, tables) -> pl.DataFrame:
        # hand over fresh frame objects: an experiment that mutates one in place cannot change the caller's data
        return self.fn({k: v.clone() for k, v in dict(tables).items()})

    @property
    def key(self) -> str:
        return f"{self.team}/{self.name}"


def check_name(value: str, what: str) -> str:
    """Names become file names, Dagster asset keys and leaderboard rows: a Python identifier, lower case."""
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value) or value != value.lower():
        raise ExperimentError(f"{what} {value!r} is not allowed; allowed: a lower-case Python identifier "
                              f"(letters, digits and _, not starting with a digit), e.g. 'my_first'")
    return value


def check_task(task: str) -> str:
    from .tasks import TASKS

    if task not in TASKS:
        raise ExperimentError(f"task {task!r} is unknown; allowed: {', '.join(TASKS)}")
    return task


def team_of(path: Path) -> str | None:
    """The folder directly under a `teams` folder that holds `path`, or None."""
    parts = Path(path).resolve().parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "teams":
            return parts[i + 1]
    return None


def experiment(*, task: str, name: str | None = None, description: str = "", team: str | None = None):
    """Declare the decorated function `fn(tables) -> predictions` as an experiment on `task`.

    `name` defaults to the function's name. The team is the folder under teams/ that holds the file; `team` only
    names a function defined elsewhere (a notebook), default "local". Keep the arguments plain strings: discovery
    reads them from the source without running the file."""
    check_task(task)

    def deco(fn: PredictFn) -> Experiment:
        try:
            source = Path(inspect.getfile(fn)).resolve()
            path = source if source.is_file() else None
        except TypeError:
            path = None
        exp = Experiment(name=check_name(name or fn.__name__, "experiment name"),
                         team=check_name((team_of(path) if path else None) or team or "local", "team"),
                         task=task, description=description, fn=fn, path=path)
        _REGISTRY.append(exp)
        return exp

    return deco


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"_zandbak_experiment_{path.stem}_{digest}"


def _import(path: Path) -> list[Experiment]:
    """Import an experiment file or package folder by path; returns the experiments it declared."""
    path = Path(path).resolve()
    if str(path) in _LOADED:
        return _LOADED[str(path)]
    init = path / "__init__.py" if path.is_dir() else path
    if not init.is_file():
        raise ExperimentError(f"{path}: no experiment file; allowed: a .py file or a folder with __init__.py "
                              f"under experiments/teams/<team>/")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(path)] if path.is_dir() else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    before = len(_REGISTRY)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        del _REGISTRY[before:]
        raise
    _LOADED[str(path)] = _REGISTRY[before:]
    return _LOADED[str(path)]


def load(path: str | Path, name: str) -> Experiment:
    """Import the file or folder at `path` and return its experiment called `name` (with path set)."""
    found = [e for e in _import(Path(path)) if e.name == name]
    if not found:
        raise ExperimentError(f"{path}: declares no experiment named {name!r}; a folder experiment's __init__.py "
                              f"must import the module that holds the @experiment function")
    return replace(found[0], path=Path(path).resolve())


class _Deferred:
    """The function of a discovered experiment: imported from its file on the first call, in this process."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    def __call__(self, tables):
        return load(self.path, self.name).fn(tables)

    def __repr__(self) -> str:
        return f"<experiment function {self.name!r} from {self.path}>"
