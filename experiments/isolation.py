"""Run one experiment in its own process, with a wall-clock and a memory limit, and score what it returns.

The inputs go to the child as Parquet files in a temporary folder and the predictions come back the same way, so
the experiment cannot reach the truth or the caller's frames. A crash, a hang (killed at the time limit, with every
process it started) or a memory hog (RLIMIT_DATA in the child) ends as a RunResult with status failed, timeout or
memory and a one-line error; the caller goes on with the next experiment.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .api import Experiment
from .errors import ExperimentError, PredictionError
from .tasks import TaskData, score

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STATUSES = ("ok", "failed", "timeout", "memory")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 120.0
    memory_mb: int | None = 2048    # None: no memory limit


@dataclass(frozen=True)
class RunResult:
    team: str
    experiment: str
    task: str
    status: str                      # ok, failed, timeout or memory
    error: str | None
    runtime_s: float                 # the experiment function's own time when ok, else the wall time until it ended
    seed: int
    dataset_hash: str
    score: float | None = None
    metrics: dict | None = None
    predictions: pl.DataFrame | None = field(default=None, repr=False)
    log: str = field(default="", repr=False)   # the tail of what the experiment printed
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _last_line(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _execute(exp: Experiment, data: TaskData, limits: Limits,
             work: Path) -> tuple[str, str | None, float, pl.DataFrame | None, str]:
    """(status, error, runtime, predictions, log tail) of one child process."""
    (work / "inputs").mkdir()
    for name, df in data.inputs.items():
        df.write_parquet(work / "inputs" / f"{name}.parquet", compression="lz4")
    (work / "job.json").write_text(json.dumps({"path": str(exp.path), "name": exp.name,
                                               "memory_mb": limits.memory_mb}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                                       os.environ.get("PYTHONPATH")]))}
    log_path = work / "output.log"
    start = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "experiments._runner", str(work)], cwd=work, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=limits.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc.pid)       # also whatever the experiment started
            rc = proc.wait()
    wall = time.perf_counter() - start
    full = _tail(log_path, 200_000)
    log = full[-4000:]
    if timed_out:
        return "timeout", f"killed after the wall-clock limit of {limits.timeout_s:g} s", wall, None, log
    try:
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {}
    kind = result.get("kind")
    if kind == "ok" and (work / "predictions.parquet").exists():
        return "ok", None, float(result.get("runtime_s", wall)), pl.read_parquet(work / "predictions.parquet"), log
    if kind in ("failed", "memory"):
        return kind, result.get("error"), wall, None, log
    oom = [ln.strip() for ln in full.splitlines() if "memory allocation of" in ln or "MemoryError" in ln]
    if oom:   # polars (Rust) aborts the process when an allocation fails
        return "memory", f"the {limits.memory_mb} MB memory limit was reached ({oom[-1][:200]})", wall, None, log
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return "failed", f"the process was killed by signal {name} ({_last_line(log)})", wall, None, log
    return "failed", f"the process exited with code {rc} ({_last_line(log)})", wall, None, log


def run(experiment: Experiment, data: TaskData, limits: Limits | None = None) -> RunResult:
    """Run `experiment` on `data` in a child process within `limits`, validate and score its predictions.

    Never raises for what the experiment does: a crash, hang, memory hog or invalid predictions give a RunResult
    with status failed/timeout/memory and a one-line error. Raises ExperimentError only when the run cannot start
    (the experiment has no file, or is for another task)."""
    limits = limits or Limits()
    if experiment.task != data.task:
        raise ExperimentError(f"experiment {experiment.name!r} is for task {experiment.task}, the data for "
                              f"{data.task}; prepare its own task's data")
    if experiment.path is None or not Path(experiment.path).exists():
        raise ExperimentError(f"experiment {experiment.name!r} has no file to run in its own process; save it "
                              f"under experiments/teams/<team>/, or call it in-process: "
                              f"score(task, exp(data.inputs), data.truth)")
    work = Path(tempfile.mkdtemp(prefix=f"zandbak-run-{experiment.name}-"))
    try:
        status, error, runtime, predictions, log = _execute(experiment, data, limits, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    metrics = None
    if status == "ok":
        try:
            metrics = score(data.task, predictions, data.truth)
        except PredictionError as e:
            status, error = "failed", f"invalid predictions: {e}"
    return RunResult(team=experiment.team, experiment=experiment.name, task=data.task, status=status, error=error,
                     runtime_s=round(runtime, 3), seed=data.seed, dataset_hash=data.dataset_hash,
                     score=metrics["score"] if metrics else None, metrics=metrics, predictions=predictions, log=log)
