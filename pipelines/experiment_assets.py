"""Experiments as assets, discovered from experiments/teams/ at load time: dropping a file there adds its assets.

Per task one `task_<task>` asset prepares the scored task data from the project's sealed secret (a public `seed`
only in tests); its truth goes to the sealed folder, so Dagster's storage holds the inputs only. Per experiment
(`<team>__<name>`): `experiment_<team>__<name>` runs it in the sandbox (a crash, hang or memory hog is recorded, not
raised, so the other experiments still run) and scores it against the sealed truth; its predictions are not kept
in Dagster's storage. `score_<team>__<name>` appends the result to the experiment leaderboard (data/leaderboards/).
"""
import dataclasses

import dagster as dg

import experiments as ex

from .assets import GeneratorResource
from .storage import markdown_preview


def _key(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def build_experiment_assets(seed: int | None = None, root=None) -> list:
    assets = []
    exps = ex.discover(root)
    for task in sorted({e.task for e in exps}):
        def make_task(task=task):
            @dg.asset(name=f"task_{task}", group_name="experiments", kinds={"polars"},
                      description=f"Task data of {task}: {ex.TASKS[task].description}")
            def task_data(context: dg.AssetExecutionContext, generator: GeneratorResource) -> dg.Output:
                sealed = generator.settings().sealed
                data = ex.prepare_sealed(task, sealed) if seed is None else ex.prepare(task, seed=seed)
                return dg.Output(ex.seal_truth(data, sealed), metadata={
                    "dataset_hash": data.dataset_hash, "data": "sealed secret" if seed is None else f"public seed {seed}",
                    **{f"rows/{k}": v.height for k, v in data.inputs.items()}})
            return task_data
        assets.append(make_task())

    for e in exps:
        def make(e=e):
            key = _key(f"{e.team}__{e.name}")

            @dg.asset(name=f"experiment_{key}", group_name="experiments",
                      ins={"data": dg.AssetIn(f"task_{e.task}")}, kinds={"python"},
                      tags={"team": _key(e.team)},
                      description=f"{e.team}/{e.name} on {e.task}: {e.description} ({e.path})")
            def predictions(context: dg.AssetExecutionContext, data, generator: GeneratorResource) -> dg.Output:
                result = ex.run(e, ex.unseal_truth(data, generator.settings().sealed))
                preview = markdown_preview(result.predictions) if result.predictions is not None else "none"
                return dg.Output(dataclasses.replace(result, predictions=None), metadata={
                    "status": result.status, "error": result.error or "", "runtime_s": round(result.runtime_s, 3),
                    "predictions": dg.MetadataValue.md(preview)})

            @dg.asset(name=f"score_{key}", group_name="experiments",
                      ins={"result": dg.AssetIn(f"experiment_{key}")}, kinds={"duckdb"},
                      description=f"Score of {e.team}/{e.name} ({ex.TASKS[e.task].score_meaning}); appended to the "
                                  f"experiment leaderboard (data/leaderboards/, a table of the warehouse).")
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
