"""zandbak experiment list | new | run | leaderboard, on a temporary teams folder and warehouse."""
import os
import subprocess
import sys
from pathlib import Path

ZANDBAK = Path(sys.executable).with_name("zandbak")


def _run(*args, env):
    return subprocess.run([str(ZANDBAK), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_new_run_list_leaderboard(tmp_path):
    env = {"ZANDBAK_TEAMS": str(tmp_path / "teams"), "ZANDBAK_DATA": str(tmp_path / "data")}
    r = _run("experiment", "new", "eerste_poging", "--team", "blauw", "--task", "verzoek_triage", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "teams" / "blauw" / "eerste_poging.py").exists()
    r = _run("experiment", "new", "eerste_poging", "--team", "blauw", env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1           # never overwrites
    r = _run("experiment", "list", env=env)
    assert "eerste_poging" in r.stdout and "blauw" in r.stdout
    r = _run("experiment", "run", "eerste_poging", "--seed", "5", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "score" in r.stdout
    r = _run("experiment", "leaderboard", env=env)
    assert r.returncode == 0 and "eerste_poging" in r.stdout and "verzoek_triage" in r.stdout
    r = _run("experiment", "run", "bestaat_niet", env=env)
    assert r.returncode == 2 and "not found" in r.stderr


def test_a_crashing_experiment_run_exits_1_and_is_recorded(tmp_path):
    env = {"ZANDBAK_TEAMS": str(tmp_path / "teams"), "ZANDBAK_DATA": str(tmp_path / "data")}
    team = tmp_path / "teams" / "rood"
    team.mkdir(parents=True)
    (team / "kapot.py").write_text(
        "from experiments import experiment\n\n"
        "@experiment(task='verzoek_triage', description='raises')\n"
        "def kapot(tables):\n    raise RuntimeError('boom')\n")
    r = _run("experiment", "run", "kapot", env=env)
    assert r.returncode == 1 and "failed" in r.stdout and "boom" in r.stdout
    r = _run("experiment", "leaderboard", env=env)
    assert "kapot" in r.stdout and "failed" in r.stdout


def test_run_all_runs_every_experiment_and_the_help_lists_the_discovered_tasks(tmp_path):
    import experiments as ex

    env = {"ZANDBAK_TEAMS": str(tmp_path / "teams"), "ZANDBAK_DATA": str(tmp_path / "data")}
    for name, team in [("een", "groen"), ("twee", "geel")]:
        assert _run("experiment", "new", name, "--team", team, "--task", "verzoek_triage", env=env).returncode == 0
    r = _run("experiment", "run", "--all", "--seed", "5", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "running 2 experiment(s) on public seed 5, NOT for scores: geel/twee, groen/een" in r.stdout
    assert r.stdout.count("score ") == 2
    r = _run("experiment", "run", env=env)       # no name: all of them, on the sealed scored data
    assert r.returncode == 0 and "running 2 experiment(s) on sealed scored data" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "data" / "sealed" / "tasks" / "secret").exists()
    board = ex.leaderboard(tmp_path / "data" / "warehouse.duckdb", latest=False)
    assert board.height == 4 and board["seed"].null_count() == 2
    r = _run("experiment", "new", "--help", env=env)
    assert all(t in r.stdout for t in ex.TASKS)
