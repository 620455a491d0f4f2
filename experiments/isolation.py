"""Run one experiment in its own process, with a wall-clock and a memory limit, and score what it returns.

The inputs go to the child as Parquet files in its scratch folder and the predictions come back the same way; the
child runs in the sandbox of sandbox.py, which confines it to that folder (no data folder, warehouse, Dagster
storage or other teams' files, no network, nothing left running afterwards, one memory limit for all its processes)
as far as the platform allows, and RunResult.sandbox names the mechanisms that were in force. A crash, a hang
(killed at the time limit, with every process it started) or a memory hog ends as a RunResult with status failed,
timeout or memory and a one-line error; the caller goes on with the next experiment.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import sandbox as _sandbox
from .api import Experiment, team_of
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
    sandbox: str = ""                # the isolation mechanisms in force, e.g. "landlock-fs,netns,pidns,tree-memory"
    params: dict | None = None       # the task data's parameters (region, years, scale ...): the leaderboard names them

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


def _readable(exp: Experiment) -> list[Path]:
    """What the experiment may read of its own: its team folder (data or model files next to the code), or only
    its file or package folder when it is not in a teams folder."""
    path = Path(exp.path).resolve()
    team = team_of(path)
    if team:
        parts = path.parts
        i = max(i for i in range(len(parts) - 1) if parts[i] == "teams" and parts[i + 1] == team)
        return [Path(*parts[:i + 2])]
    return [path]


def _execute(exp: Experiment, data: TaskData, limits: Limits,
             work: Path) -> tuple[str, str | None, float, pl.DataFrame | None, str, str]:
    """(status, error, runtime, predictions, log tail, sandbox mechanisms) of one sandboxed child process."""
    (work / "inputs").mkdir()
    for name, df in data.inputs.items():
        df.write_parquet(work / "inputs" / f"{name}.parquet", compression="lz4")
    (work / "job.json").write_text(json.dumps({"path": str(exp.path), "name": exp.name,
                                               "memory_mb": limits.memory_mb}), encoding="utf-8")
    log_path = work / "output.log"
    with log_path.open("wb") as log:
        out = _sandbox.run([sys.executable, "-m", "experiments._runner", str(work)], work,
                           readable=_readable(exp), timeout_s=limits.timeout_s, memory_mb=limits.memory_mb, log=log)
    wall, mechanisms, rc = out.wall_s, ",".join(out.mechanisms), out.returncode
    full = _tail(log_path, 200_000)
    log = full[-4000:]
    if out.stopped == "timeout":
        return "timeout", f"killed after the wall-clock limit of {limits.timeout_s:g} s", wall, None, log, mechanisms
    if out.stopped == "memory":
        return "memory", (f"the {limits.memory_mb} MB memory limit was reached by the experiment's "
                          f"{out.processes} processes together ({out.peak_mb:.0f} MB)"), wall, None, log, mechanisms
    try:
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {}
    kind = result.get("kind")
    if kind == "ok" and (work / "predictions.parquet").exists():
        return ("ok", None, float(result.get("runtime_s", wall)), pl.read_parquet(work / "predictions.parquet"), log,
                mechanisms)
    if kind in ("failed", "memory"):
        return kind, result.get("error"), wall, None, log, mechanisms
    oom = [ln.strip() for ln in full.splitlines() if "memory allocation of" in ln or "MemoryError" in ln]
    if oom:   # polars (Rust) aborts the process when an allocation fails
        return ("memory", f"the {limits.memory_mb} MB memory limit was reached ({oom[-1][:200]})", wall, None, log,
                mechanisms)
    if rc is None:
        return "failed", f"the sandbox could not run the experiment ({_last_line(log)})", wall, None, log, mechanisms
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return "failed", f"the process was killed by signal {name} ({_last_line(log)})", wall, None, log, mechanisms
    return "failed", f"the process exited with code {rc} ({_last_line(log)})", wall, None, log, mechanisms


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
        status, error, runtime, predictions, log, mechanisms = _execute(experiment, data, limits, work)
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
                     score=metrics["score"] if metrics else None, metrics=metrics, predictions=predictions, log=log,
                     sandbox=mechanisms, params=dict(data.params))
