"""`zandbak run` / `make run`: materialise every asset of the configured region through real Dagster runs.

The runs are recorded in $DAGSTER_HOME (default: dagster_home/ in the project), so `make ui` shows them afterwards.
Partitions run as one in-process run each, two at a time (one per core: on 2 cores this
beat the multiprocess executor, 16 s against 73 s for 14 partitions, and a single-run backfill fails all partitions
together); a failing partition is reported and makes the command exit 1 without stopping the others.

Kills (docs/reliability.md, "Runs and kills"): one run at a time per data folder (a flock on `DATA/.zandbak-run.lock`;
a second one refuses with one line); pool workers die with the command (PR_SET_PDEATHSIG, plus a check that the
parent still is theirs); every Dagster run is tagged with the process that executes it, so the next start can mark
the runs of a killed command failed; the lake and the warehouse are only ever replaced whole, so a re-run gives the
same bytes.
"""
from __future__ import annotations

import ctypes
import fcntl
import importlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from synthetic_data.errors import ZandbakError
from synthetic_data.faults.score import metric_text

from .settings import PROJECT, Settings

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


LOCK_FILE = ".zandbak-run.lock"
PROCESS_TAG = "zandbak/process"     # pid@start-time of the process executing the run
PR_SET_PDEATHSIG = 1
_lock_fd: int | None = None         # held (open, flocked) until this process ends, however it ends


class RunBusy(ZandbakError):
    """Another `zandbak run` holds the data folder."""


def hold_run_lock(data_dir: Path) -> None:
    """One `zandbak run` per data folder: two would rewrite the same partitions and warehouse at once. The kernel
    drops the flock when the holder dies, so a killed run never leaves the folder locked."""
    global _lock_fd
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)   # not inherited by child processes
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = "?"
        for _ in range(20):      # the holder writes its pid right after taking the lock
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            if text:
                pid = text
                break
            time.sleep(0.05)
        os.close(fd)
        raise RunBusy(f"another zandbak run (pid {pid}) is using {data_dir}; wait for it or stop it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _lock_fd = fd


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (with the pid, it names one process), None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def process_id(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid}@{_start_time(pid) or 0}"


def _process_alive(tag: str) -> bool:
    pid, _, start = tag.partition("@")
    if not pid.isdigit():
        return True                    # not a tag of ours: not ours to judge
    if not Path("/proc").is_dir():     # no procfs: the pid alone
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return _start_time(int(pid)) == start


UNFINISHED = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")


def fail_orphaned_runs(instance) -> list:
    """Mark failed the unfinished runs of this DAGSTER_HOME whose process is gone (a killed `zandbak run` or worker).

    A run of ours names its process in the `zandbak/process` tag; for another run (an older `zandbak run`, the UI's
    run launcher) the pid of its start event counts, and a run without either (queued for a daemon) is left alone.
    """
    import dagster as dg
    from dagster._core.events import DagsterEventType

    marked = []
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus[s] for s in UNFINISHED]))
    for run in runs:
        tag = run.tags.get(PROCESS_TAG)
        if tag is not None:
            who, gone = f"process {tag}", not _process_alive(tag)
        else:
            starts = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
            pids = [e.dagster_event.pid for e in starts if e.dagster_event and e.dagster_event.pid]
            if not pids:
                continue
            who, gone = f"pid {pids[-1]}", not _same_dagster_home(pids[-1])
        if gone:
            instance.report_run_failed(run, message=f"The process that executed this run ({who}) ended without "
                                                    f"finishing it (killed); marked failed by the next zandbak run.")
            marked.append(run)
    return marked


def _same_dagster_home(pid: int) -> bool:
    """Whether `pid` lives and runs with this DAGSTER_HOME (a pid of a run without our tag may have been reused)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:
        return True                     # alive, but not ours to read: leave its runs alone
    return f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}".encode() in environ


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(1.0)


def die_with_parent(parent: int) -> None:
    """Pool worker initializer: a worker must not outlive the `zandbak run` that started it (else it finishes its
    partition and idles on, holding its memory). The kernel kills it when the parent dies (Linux); the check after
    it covers a parent that died before that line ran, the thread a system without prctl."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()


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


# --- issue 14: Dagster UI. The UI's landing page (Overview > Timeline, /overview/activity/timeline in dagster 1.13)
# draws only runs that carry the origin of a job in a loaded code location (its bundle skips a run without
# `repositoryOrigin`); `execute_job` records none. So each run is created with the origin of the same job in the
# code location of workspace.yaml (`pipelines.definitions`), as the UI's own launches are.
LOCATION = "pipelines.definitions"
RUN_TAG = "zandbak/run"             # region/years/seed of the `zandbak run` a Dagster run belongs to


def ui_origin(job_name: str):
    """The remote origin of `job_name` in the workspace's code location (what a run launched from the UI has)."""
    from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=LOCATION,
                                  working_directory=str(PROJECT))
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, LOCATION)
    return RemoteRepositoryOrigin(location, "__repository__").get_job_origin(job_name)


def execute(job_ref: str, partition: str | None = None) -> tuple[str | None, bool, str]:
    """Run one job (optionally one partition) in this process; returns (partition, success, first error)."""
    import dagster as dg
    from dagster._core.execution.api import execute_run

    module, _, name = job_ref.partition(":")
    fn = getattr(importlib.import_module(module), name)
    s = Settings.from_env()
    tags = {PROCESS_TAG: process_id(), RUN_TAG: f"{s.region} {s.years} seed {s.seed}",
            **({"dagster/partition": partition} if partition else {})}
    with dg.DagsterInstance.get() as instance:
        job = dg.reconstructable(fn)
        # what execute_job does, plus the job's origin in the code location (above)
        run = instance.create_run_for_job(job_def=job.get_definition(), run_config=RUN_CONFIG, tags=tags,
                                          job_code_origin=job.get_python_origin(),
                                          remote_job_origin=ui_origin(job.get_definition().name))
        result = execute_run(job, run, instance, raise_on_error=False)
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
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield from pool.map(_execute_args, jobs)
    except BaseException:
        # interrupted (SIGINT/SIGTERM to this process only): leaving the `with` would wait for the workers to finish
        # their partitions; kill them instead (Python 3.11 has no public terminate_workers)
        for proc in list((pool._processes or {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()




def _interrupt(signum, frame):
    raise KeyboardInterrupt   # `kill PID` ends the run as Ctrl-C does: workers stopped, one line, exit 130


def main(workers: int | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    hold_run_lock(Path(Settings.from_env().data_dir))
    home = ensure_dagster_home()
    import dagster as dg

    from .definitions import GEMEENTEN, SETTINGS
    from .warehouse import build_views, refresh_leaderboards, table_counts

    workers = workers or min(2, os.cpu_count() or 1)
    keys = GEMEENTEN.get_partition_keys()
    t0 = time.perf_counter()
    print(f"zandbak run: region {SETTINGS.region}, years {SETTINGS.years}, seed {SETTINGS.seed}, "
          f"scale {SETTINGS.scale}: {len(keys)} gemeente partitions, {workers} at a time (DAGSTER_HOME={home})",
          flush=True)
    with dg.DagsterInstance.get() as instance:
        orphans = fail_orphaned_runs(instance)
    if orphans:
        print(f"  marked {len(orphans)} run(s) of an earlier, interrupted zandbak run as failed: "
              + ", ".join(f"{r.job_name} {r.tags.get('dagster/partition', '')}".strip() for r in orphans), flush=True)
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
    # the warehouse holds copies now (issue 14): after a good warehouse_job only the leaderboards need catching up
    if "warehouse" in {k for k, _ in failed} or not refresh_leaderboards(SETTINGS.warehouse):
        build_views(SETTINGS.warehouse, SETTINGS.lake)
    counts = table_counts(SETTINGS.warehouse)
    print(f"\nrows per table ({time.perf_counter() - t0:.0f} s):")
    for name, n in counts.items():
        print(f"  {name:<24}{n:>12,}")
    card = SETTINGS.lake / "check_scorecard" / "all.parquet"
    if card.exists():
        import polars as pl

        overall = pl.read_parquet(card).filter(pl.col("scope") == "overall").row(0, named=True)
        print(f"\nreference suite on the injected faults ({SETTINGS.fault_profile}, seed {SETTINGS.fault_seed}): "
              f"precision {metric_text(overall['precision'])}, recall {metric_text(overall['recall'])} "
              f"(tp {overall['tp']}, fp {overall['fp']}, fn {overall['fn']}; statistical-only types excluded)")

    board = ex.leaderboard(SETTINGS.warehouse)
    if board.height:
        from experiments.leaderboard import boards

        print("\nexperiments (latest run per experiment, ranked per task and dataset; higher score is better):")
        for task, digest, label, rows in boards(board):
            print(f"  {task} on dataset {digest[:12]} ({label}):")
            for r in rows.iter_rows(named=True):
                score = "-" if r["score"] is None else f"{r['score']:.3f}"
                print(f"    {r['rank']:>3}. {r['team'] + '/' + r['experiment']:<40}{score:>8}  {r['status']}")
    cli = Path(sys.executable).with_name("duckdb")      # duckdb-cli of the dev extra (DuckDB 1.4 or later opens it)
    print(f"\nwarehouse: {SETTINGS.warehouse}   ({cli if cli.exists() else 'duckdb'} {SETTINGS.warehouse} "
          f"-c 'select count(*) from toewijzingen')")
    print(f"report:    {SETTINGS.report}")
    print(f"parquet:   {SETTINGS.lake}/<table>/<gemeente>.parquet")
    print("ui:        make ui   (the runs above are on its landing page, Overview > Timeline, tagged "
          f"{RUN_TAG}={SETTINGS.region} {SETTINGS.years} seed {SETTINGS.seed}; the asset graph of one group: "
          f"/locations/{LOCATION}/asset-groups/lifecycle)")
    if failed:
        print(f"\n{len(failed)} run(s) FAILED: " + ", ".join(k for k, _ in failed), file=sys.stderr)
        return 1
    return 0
