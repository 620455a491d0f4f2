"""The source `zandbak experiment new` writes: this header, then the task's own STARTER body (experiments/tasks/)."""

HEADER = '''"""{description}

Team {team}. Run it:  .venv/bin/zandbak experiment run {name}
Task {task}: see experiments/tasks/{task}.py for what the tables hold and how it is scored.
"""
import polars as pl

from experiments import experiment


@experiment(name="{name}", task="{task}", description="{description}")
def predict(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
'''


def render(name: str, team: str, task: str, description: str) -> str:
    from .tasks import get

    return HEADER.format(name=name, team=team, task=task, description=description.replace('"', "'")) + get(task).starter
