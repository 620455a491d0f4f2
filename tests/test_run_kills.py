"""`zandbak run` survives kills: no process outlives a killed run, its Dagster runs end as failed on the next start,
the re-run gives the same Parquet bytes, readers of the warehouse never make a run fail, and a second run at the
same time refuses with one line.

Each scenario runs the real command on one gemeente at scale 0.1 (~20-60 s each on 2 cores) in a temporary data
folder and DAGSTER_HOME; one uninterrupted run per module is the reference for the bytes.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]

SLOW_EXPERIMENT = '''
import time

import polars as pl

from experiments import experiment


@experiment(name="wacht", task="declaratie_controle", description="sleeps, so a test can kill the run meanwhile")
def wacht(tables):
    time.sleep(90)
    return tables["to_predict"].select("regel").with_columns(besluit=pl.lit("accept"),
                                                             retourcode=pl.lit(None, pl.String))
'''


def _env(base: Path, teams: Path) -> dict:
    (base / "home").mkdir(parents=True, exist_ok=True)
    teams.mkdir(parents=True, exist_ok=True)
    return dict(os.environ, DAGSTER_HOME=str(base / "home"), ZANDBAK_DATA=str(base / "data"),
                ZANDBAK_REGION="0147", ZANDBAK_SCALE="0.1", ZANDBAK_SEED="3", ZANDBAK_YEARS="2024",
                ZANDBAK_TEAMS=str(teams), PYTHONUNBUFFERED="1")


def _run(env: dict, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "zandbak"), "run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


class Started:
    """`zandbak run` in its own session, its output collected by a thread."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([str(BIN / "zandbak"), "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def output(self) -> str:
        return "".join(self.lines)


def _processes(marker: str) -> list[tuple[int, str]]:
    """Live processes (not zombies) with `marker` (the test's temp folder) in their command line or environment."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (d / "cmdline").read_bytes()
            environ = (d / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline or marker.encode() in environ:
            found.append((int(d.name), cmdline.replace(b"\0", b" ").decode(errors="replace")[:160]))
    return found


def _tree(root: int) -> dict[int, str]:
    """`root` and every process below it, each with its start time (so a reused pid is not taken for it)."""
    parent, started = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(d.name)], started[int(d.name)] = int(fields[1]), fields[19]
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in started:
            tree[pid] = started[pid]
            todo += [c for c, p in parent.items() if p == pid]
    return tree


def _still_alive(tree: dict[int, str]) -> list[tuple[int, str]]:
    alive = []
    for pid, start in tree.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[19] == start and fields[0] != "Z":
            alive.append((pid, cmdline[:160]))
    return alive


def _left_after_kill(marker: str, tree: dict[int, str], grace: float = 10.0) -> list[tuple[int, str]]:
    """What of the killed run is still alive after `grace` seconds: a process of its tree as it was just before
    the kill (experiments run with a scrubbed environment), or one with the test's folder in its environment."""
    deadline = time.time() + grace
    while (left := sorted(set(_processes(marker) + _still_alive(tree)))) and time.time() < deadline:
        time.sleep(0.25)
    return left


def _kill_leftovers(marker: str, tree: dict[int, str] | None = None) -> None:
    """Clean up after a failing test: what it started must not idle on after it."""
    for pid, _ in _processes(marker) + _still_alive(tree or {}):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _wait_for(what: str, check, timeout: float, started: Started) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        if started.proc.poll() is not None:
            pytest.fail(f"zandbak run ended (exit {started.proc.returncode}) before {what}:\n{started.output()}")
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout:.0f} s:\n{started.output()}")


def _runs(home: Path, **filters) -> list:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(**filters) if filters else None))


def _lake_bytes(data: Path) -> dict[str, str]:
    return {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((data / "lake").rglob("*.parquet"))}


def _stray_files(data: Path) -> list[str]:
    return [str(p.relative_to(data)) for p in data.rglob("*") if ".tmp" in p.name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run: the lake bytes every interrupted-and-rerun folder must equal."""
    base = tmp_path_factory.mktemp("reference")
    r = _run(_env(base, base / "teams"))
    assert r.returncode == 0, r.stdout + r.stderr
    return _lake_bytes(base / "data")


def test_a_second_run_on_the_same_data_refuses_with_one_line(tmp_path):
    env = _env(tmp_path, tmp_path / "teams")
    first = Started(env)
    try:
        _wait_for("first output line", lambda: first.lines, 60, first)
        second = _run(env, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stdout == ""
        assert second.stderr.strip() == (f"zandbak: error: another zandbak run (pid {first.proc.pid}) is using "
                                         f"{tmp_path / 'data'}; wait for it or stop it")
    finally:
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        _kill_leftovers(str(tmp_path))


def test_a_run_killed_while_partitions_run_leaves_nothing_and_reruns_to_the_same_bytes(tmp_path, reference):
    env, home, data = _env(tmp_path, tmp_path / "teams"), tmp_path / "home", tmp_path / "data"
    started, tree = Started(env), {}
    try:
        # the moment: a gemeente partition is running in a pool worker
        _wait_for("partition run STARTED", lambda: _runs(home, job_name="gemeente_job",
                                                         statuses=[dg.DagsterRunStatus.STARTED]), 180, started)
        time.sleep(1.0)
        tree = _tree(started.proc.pid)
        os.kill(started.proc.pid, signal.SIGKILL)        # the main process only, as `kill -9 PID` does
        started.proc.wait()
        left = _left_after_kill(str(tmp_path), tree)
        assert left == [], f"{len(left)} process(es) of the killed run still alive: {left}"
        assert [r.job_name for r in _runs(home, statuses=UNFINISHED)] == ["gemeente_job"]

        r = _run(env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "marked 1 run(s) of an earlier, interrupted zandbak run as failed" in r.stdout
        assert _runs(home, statuses=UNFINISHED) == []
        failed = _runs(home, statuses=[dg.DagsterRunStatus.FAILURE])
        assert [f.job_name for f in failed] == ["gemeente_job"]
        assert _lake_bytes(data) == reference
        assert _stray_files(data) == []
    finally:
        _kill_leftovers(str(tmp_path), tree)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_stopped_by_a_signal_to_its_pid_stops_its_workers_at_once(tmp_path, sig):
    """`kill PID` (or `timeout`, or a supervisor's SIGINT) reaches the main process only: it must stop its pool
    workers and exit, not wait for their partitions to finish."""
    env, home = _env(tmp_path, tmp_path / "teams"), tmp_path / "home"
    started, tree = Started(env), {}
    try:
        _wait_for("partition run STARTED", lambda: _runs(home, job_name="gemeente_job",
                                                         statuses=[dg.DagsterRunStatus.STARTED]), 180, started)
        time.sleep(1.0)
        tree = _tree(started.proc.pid)
        os.kill(started.proc.pid, sig)
        try:
            code = started.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"zandbak run still running 15 s after {sig.name}:\n{started.output()}")
        assert code != 0
        left = _left_after_kill(str(tmp_path), tree, grace=5.0)
        assert left == [], f"{len(left)} process(es) of the stopped run still alive: {left}"
        assert "Traceback" not in started.output(), started.output()
    finally:
        _kill_leftovers(str(tmp_path), tree)


def test_a_run_killed_in_the_experiments_leaves_nothing_and_a_reader_does_not_stop_the_rerun(tmp_path, reference):
    teams = tmp_path / "teams"
    (teams / "slow").mkdir(parents=True)
    (teams / "slow" / "wacht.py").write_text(SLOW_EXPERIMENT)
    env, home, data = _env(tmp_path, teams), tmp_path / "home", tmp_path / "data"
    started, tree = Started(env), {}
    try:
        # the moment: the experiment runs in its sandbox child, a process in a session of its own
        _wait_for("experiment child process", lambda: any(
            "experiments._runner" in c for _, c in _still_alive(_tree(started.proc.pid))), 300, started)
        time.sleep(1.0)
        tree = _tree(started.proc.pid)
        os.killpg(started.proc.pid, signal.SIGKILL)      # the whole process group, as a terminal's hang-up does
        started.proc.wait()
        left = _left_after_kill(str(tmp_path), tree)
        assert left == [], f"{len(left)} process(es) of the killed run still alive: {left}"

        # someone keeps the warehouse open read-only while the next run rebuilds it
        reader = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
        before = reader.execute("select count(*) from toewijzingen").fetchone()[0]
        r = _run(_env(tmp_path, tmp_path / "no_teams"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert reader.execute("select count(*) from toewijzingen").fetchone()[0] == before > 0
        reader.close()
        assert _runs(home, statuses=UNFINISHED) == []
        assert [f.job_name for f in _runs(home, statuses=[dg.DagsterRunStatus.FAILURE])] == ["experiments_job"]
        assert _lake_bytes(data) == reference
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            assert con.execute("select count(*) from toewijzingen").fetchone()[0] == before
    finally:
        _kill_leftovers(str(tmp_path), tree)


def test_leaderboard_rows_survive_warehouse_rebuilds_and_readers(tmp_path):
    import experiments as ex
    from pipelines.warehouse import build_views

    wh, lake = tmp_path / "data" / "warehouse.duckdb", tmp_path / "data" / "lake"
    lake.mkdir(parents=True)
    # a warehouse of before: the leaderboard was a table inside it
    with duckdb.connect(str(wh)) as con:
        con.execute("create table experiment_leaderboard (team varchar, experiment varchar, task varchar, "
                    "score double, metrics_json varchar, status varchar, error varchar, runtime_s double, "
                    "seed bigint, dataset_hash varchar, \"time\" timestamp)")
        con.execute("insert into experiment_leaderboard values ('old', 'e0', 'verzoek_triage', 0.5, null, 'ok', "
                    "null, 1.0, 1, 'h', timestamp '2024-01-01 00:00:00')")
        con.execute("create table mine as select 42 as answer")     # a student's own table
    build_views(wh, lake)
    # another process keeps the warehouse open read-only while rows are recorded and the warehouse rebuilt
    reader = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], "
                               "read_only=True); print(c.execute('select count(*) from experiment_leaderboard')"
                               ".fetchone()[0], flush=True); sys.stdin.read()", str(wh)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "1"
        for i in range(2):
            ex.record(wh, ex.RunResult(team="t", experiment=f"e{i + 1}", task="verzoek_triage", status="ok",
                                       error=None, runtime_s=1.0, seed=1, dataset_hash="h", score=0.1 * i))
            build_views(wh, lake)
    finally:
        reader.communicate("", timeout=30)
    board = ex.leaderboard(wh)
    assert sorted(board["experiment"].to_list()) == ["e0", "e1", "e2"]
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute("select experiment from experiment_leaderboard order by experiment").fetchall()
    assert rows == [("e0",), ("e1",), ("e2",)]           # every row once: moved, not copied twice
    assert board.filter(pl.col("experiment") == "e0")["score"].to_list() == [0.5]
    with duckdb.connect(str(wh.with_name("warehouse.before-views.duckdb")), read_only=True) as con:
        assert con.execute("select answer from mine").fetchall() == [(42,)]     # kept aside, not lost
