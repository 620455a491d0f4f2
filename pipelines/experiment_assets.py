"""Experiments as assets, discovered from experiments/teams/ at load time: dropping a file there adds its assets.

Per task one `task_<task>` asset prepares the task data (inputs for the experiments, hidden truth for the scorer).
Per experiment: `experiment_<name>` runs it in its own process under time and memory limits (a crash, hang or
memory hog is recorded, not raised, so the other experiments still run) and keeps its predictions;
`score_<name>` scores them against the truth and appends the result to the warehouse leaderboard.
"""
import dagster as dg

import experiments as ex

from .assets import GeneratorResource
from .storage import markdown_preview


def _key(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def build_experiment_assets(seed: int = 42, root=None) -> list:
    assets = []
    exps = ex.discover(root)
    for task in sorted({e.task for e in exps}):
        def make_task(task=task):
            @dg.asset(name=f"task_{task}", group_name="experiments", kinds={"polars"},
                      description=f"Task data of {task}: {ex.TASKS[task].description}")
            def task_data(context: dg.AssetExecutionContext) -> dg.Output:
                data = ex.prepare(task, seed=seed)
                return dg.Output(data, metadata={
                    "dataset_hash": data.dataset_hash, "seed": seed,
                    **{f"rows/{k}": v.height for k, v in data.inputs.items()}})
            return task_data
        assets.append(make_task())

    for e in exps:
        def make(e=e):
            @dg.asset(name=f"experiment_{_key(e.name)}", group_name="experiments",
                      ins={"data": dg.AssetIn(f"task_{e.task}")}, kinds={"python"},
                      tags={"team": _key(e.team)},
                      description=f"{e.team}/{e.name} on {e.task}: {e.description} ({e.path})")
            def predictions(context: dg.AssetExecutionContext, data) -> dg.Output:
                result = ex.run(e, data)
                preview = markdown_preview(result.predictions) if result.predictions is not None else "none"
                return dg.Output(result, metadata={
                    "status": result.status, "error": result.error or "", "runtime_s": round(result.runtime_s, 3),
                    "predictions": dg.MetadataValue.md(preview)})

            @dg.asset(name=f"score_{_key(e.name)}", group_name="experiments",
                      ins={"result": dg.AssetIn(f"experiment_{_key(e.name)}")}, kinds={"duckdb"},
                      description=f"Score of {e.team}/{e.name} ({ex.TASKS[e.task].score_meaning}); appended to the "
                                  f"experiment_leaderboard table of the warehouse.")
            def score(context: dg.AssetExecutionContext, result, generator: GeneratorResource) -> dg.MaterializeResult:
                ex.record(generator.settings().warehouse, result)
                metrics = {k: v for k, v in (result.metrics or {}).items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool)}
                return dg.MaterializeResult(metadata={
                    "status": result.status, "score": result.score if result.score is not None else float("nan"),
                    **{f"metric/{k}": v for k, v in metrics.items()}, "error": result.error or ""})
            return [predictions, score]
        assets.extend(make())
    return assets
