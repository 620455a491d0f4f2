"""`zandbak experiment new NAME`: write a working experiment from the template into teams/<team>/NAME.py."""
from __future__ import annotations

from pathlib import Path

from synthetic_data.atomic import atomic_write

from .api import check_name, check_task
from .discover import DEFAULT_ROOT, discover
from .errors import ExperimentError
from .template import render


def scaffold(name: str, team: str, task: str = "declaratie_controle", description: str | None = None,
             root: str | Path | None = None) -> Path:
    """Create `<root>/<team>/<name>.py` (root: experiments/teams) and return its path. Refuses to overwrite a file
    or to reuse the name of an experiment that exists already."""
    check_name(name, "experiment name")
    check_name(team, "team")
    check_task(task)
    root = Path(root) if root is not None else DEFAULT_ROOT
    target = root / team / f"{name}.py"
    if target.exists() or (root / team / name).exists():
        raise ExperimentError(f"{target}: exists already; allowed: a new name (nothing was overwritten)")
    clash = [e for e in discover(root) if e.name == name]
    if clash:
        raise ExperimentError(f"experiment name {name!r} is already used by {clash[0].path}; allowed: a new name")
    text = render(name, team, task, description or f"My first experiment on {task}")
    with atomic_write(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
