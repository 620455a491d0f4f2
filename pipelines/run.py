"""`zandbak run` / `make run`: materialise every asset of the configured region through real Dagster runs.

The runs are recorded in $DAGSTER_HOME (default: dagster_home/ in the project), so `make ui` shows them afterwards.
Partitions run as one in-process run each, two at a time (one per core, see the workplace stack notes (shared/STACK_NOTES.md) for the
options measured); a failing partition is reported and makes the command exit 1 without stopping the others.
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from .settings import PROJECT

# One process per run (the partitions are parallel already); the console shows warnings and errors only.
RUN_CONFIG = {"execution": {"config": {"in_process": {}}},
              "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


INSTANCE_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def ensure_dagster_home() -> str:
    """DAGSTER_HOME (default: dagster_home/ in the project) with a dagster.yaml: SQLite storage, no telemetry."""
    home = os.environ.setdefault("DAGSTER_HOME", str(PROJECT / "dagster_home"))
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        with open(config, "w", encoding="utf-8") as f:
            f.write(INSTANCE_YAML)
    return home


def _job(name: str):
    from .definitions import defs

    return defs.resolve_job_def(name)


# Module-level job factories: reconstructable() needs importable functions to rebuild the job in a worker process.
def reference_job():
    return _job("reference_job")


def gemeente_job():
    return _job("gemeente_job")


def warehouse_job():
    return _job("warehouse_job")


def experiments_job():
    return _job("experiments_job")


def execute(job_ref: str, partition: str | None = None) -> tuple[str | None, bool, str]:
    """Run one job (optionally one partition) in this process; returns (partition, success, first error)."""
    import dagster as dg

    module, _, name = job_ref.partition(":")
    fn = getattr(importlib.import_module(module), name)
    tags = {"dagster/partition": partition} if partition else {}
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(fn), instance=instance, tags=tags, run_config=RUN_CONFIG,
                                raise_on_error=False)
        error = ""
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            if failures:
                err = failures[0].step_failure_data.error
                while err.cause is not None and "execution" in err.message.lower():  # the user's error, not the wrapper
                    err = err.cause
                error = f"step {failures[0].step_key}: {err.message.strip().splitlines()[0]}"
            else:
                error = "run failed before any step (see the run in the UI)"
        return partition, result.success, error


def _execute_args(args):
    return execute(*args)


def run_partitions(job_ref: str, partitions: list[str], workers: int = 2):
    """Run a partitioned job once per partition, `workers` at a time; yields (partition, success, error)."""
    jobs = [(job_ref, p) for p in partitions]
    if workers <= 1:
        yield from map(_execute_args, jobs)
        return
    # spawn: polars' and dagster's threads do not survive a fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        yield from pool.map(_execute_args, jobs)


def main(workers: int | None = None) -> int:
    home = ensure_dagster_home()
    from .definitions import GEMEENTEN, SETTINGS
    from .warehouse import build_views

    workers = workers or min(2, os.cpu_count() or 1)
    keys = GEMEENTEN.get_partition_keys()
    t0 = time.perf_counter()
    print(f"zandbak run: region {SETTINGS.region}, years {SETTINGS.years}, seed {SETTINGS.seed}, "
          f"scale {SETTINGS.scale}: {len(keys)} gemeente partitions, {workers} at a time (DAGSTER_HOME={home})")
    failed = []
    _, ok, err = execute("pipelines.run:reference_job")
    print(f"  reference tables {'ok' if ok else 'FAILED: ' + err}")
    if not ok:
        failed.append(("reference", err))
    for i, (key, ok, err) in enumerate(run_partitions("pipelines.run:gemeente_job", keys, workers), 1):
        print(f"  [{i:>3}/{len(keys)}] gemeente {key} {'ok' if ok else 'FAILED: ' + err}", flush=True)
        if not ok:
            failed.append((key, err))
    _, ok, err = execute("pipelines.run:warehouse_job")
    print(f"  warehouse and report {'ok' if ok else 'FAILED: ' + err}")
    if not ok:
        failed.append(("warehouse", err))
    import experiments as ex

    exps = ex.discover(os.environ.get("ZANDBAK_TEAMS"))
    print(f"  running {len(exps)} experiment(s) in the sandbox on the sealed task data: "
          + (", ".join(e.key for e in exps) or "none"), flush=True)
    _, ok, err = execute("pipelines.run:experiments_job")
    print(f"  experiments {'ok' if ok else 'FAILED: ' + err}")
    if not ok:
        failed.append(("experiments", err))
    counts = build_views(SETTINGS.warehouse, SETTINGS.lake)
    print(f"\nrows per table ({time.perf_counter() - t0:.0f} s):")
    for name, n in counts.items():
        print(f"  {name:<24}{n:>12,}")
    card = SETTINGS.lake / "check_scorecard" / "all.parquet"
    if card.exists():
        import polars as pl

        overall = pl.read_parquet(card).filter(pl.col("scope") == "overall").row(0, named=True)
        print(f"\nreference suite on the injected faults ({SETTINGS.fault_profile}, seed {SETTINGS.fault_seed}): "
              f"precision {overall['precision']:.3f}, recall {overall['recall']:.3f} "
              f"(tp {overall['tp']}, fp {overall['fp']}, fn {overall['fn']}; statistical-only types excluded)")

    board = ex.leaderboard(SETTINGS.warehouse)
    if board.height:
        print("\nexperiments (latest run per experiment; higher score is better):")
        for r in board.iter_rows(named=True):
            score = "-" if r["score"] is None else f"{r['score']:.3f}"
            print(f"  {r['task']:<22}{r['team'] + '/' + r['experiment']:<40}{score:>8}  {r['status']}")
    print(f"\nwarehouse: {SETTINGS.warehouse}   (duckdb {SETTINGS.warehouse} -c 'select count(*) from toewijzingen')")
    print(f"report:    {SETTINGS.report}")
    print(f"parquet:   {SETTINGS.lake}/<table>/<gemeente>.parquet")
    print("ui:        make ui   (the runs above are in its Runs tab)")
    if failed:
        print(f"\n{len(failed)} run(s) FAILED: " + ", ".join(k for k, _ in failed), file=sys.stderr)
        return 1
    return 0
