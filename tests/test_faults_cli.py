"""zandbak corrupt / score / challenge: the labelled-faults workflow from the command line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from synthetic_data.testing import PROCESS_NOISE_RULES

ZANDBAK = Path(sys.executable).with_name("zandbak")


def _run(*args, env=None):
    return subprocess.run([str(ZANDBAK), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "clean"
    r = _run("generate", "--region", "0147", "--years", "2024", "--seed", "4", "--scale", "0.5", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_corrupt_check_score_end_to_end(clean, tmp_path):
    dirty = tmp_path / "dirty"
    r = _run("corrupt", clean, "--profile", "demo", "--seed", "7", "--out", dirty)
    assert r.returncode == 0, r.stderr
    truth = pl.read_parquet(dirty / "ground_truth.parquet")
    assert truth["fault_type"].n_unique() >= 20
    r = _run("check", dirty, "--findings", tmp_path / "f.csv")
    assert r.returncode == 1            # ERROR rules fail on dirty data
    # the clean process's own late messages are debatable records of the truth: neither side
    r = _run("score", "--findings", tmp_path / "f.csv", "--truth", dirty / "ground_truth.parquet", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["overall"]["precision"] >= 0.99 and result["overall"]["recall"] >= 0.95
    # a student's own checks: a CSV with only table and key columns
    f = pl.read_csv(tmp_path / "f.csv", infer_schema_length=0)
    own = f.filter(pl.col("table") == "prestaties").select("table", "agb_code", "referentie_nummer").unique()
    own.write_csv(tmp_path / "own.csv")
    r = _run("score", "--findings", tmp_path / "own.csv", "--truth", dirty / "ground_truth.parquet", "--json")
    mine = json.loads(r.stdout)["overall"]
    assert r.returncode == 0 and 0 < mine["recall"] < result["overall"]["recall"] and mine["precision"] > 0.99


def test_truth_option_keeps_labels_out_of_the_dirty_folder(clean, tmp_path):
    r = _run("corrupt", clean, "--profile", "realistic", "--out", tmp_path / "d", "--truth", tmp_path / "sealed.parquet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sealed.parquet").exists() and not (tmp_path / "d" / "ground_truth.parquet").exists()


def test_cli_errors_are_one_line(clean, tmp_path):
    r = _run("corrupt", clean, "--profile", "chaos", "--out", tmp_path / "d")
    assert r.returncode == 2 and "--profile: unknown fault profile 'chaos'" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "d").exists()
    r = _run("score", "--findings", tmp_path / "none.csv", "--truth", tmp_path / "none.parquet")
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    pl.DataFrame({"tabel": ["x"]}).write_csv(tmp_path / "bad.csv")
    pl.DataFrame({"table": ["x"], "key": ["y"]}).write_parquet(tmp_path / "t.parquet")
    r = _run("score", "--findings", tmp_path / "bad.csv", "--truth", tmp_path / "t.parquet")
    assert r.returncode == 2 and "no 'table' column" in r.stderr


def test_challenge_new_and_score_with_leaderboard(tmp_path):
    env = {"ZANDBAK_DATA": str(tmp_path / "data")}
    hand = tmp_path / "handout"
    r = _run("challenge", "new", "--out", hand, "--region", "0147", "--scale", "0.3", env=env)
    assert r.returncode == 0, r.stderr
    assert not (hand / "ground_truth.parquet").exists() and not (hand / "trajecten.parquet").exists()
    manifest = json.loads((hand / "manifest.json").read_text())
    assert "fault" not in json.dumps(manifest).replace("faults", "")      # no labels in the handout
    sealed = list((tmp_path / "data" / "sealed" / "challenges").glob("*/truth.parquet"))
    assert len(sealed) == 1
    assert (sealed[0].parent / "secret").stat().st_mode & 0o077 == 0 and sealed[0].parent.stat().st_mode & 0o077 == 0
    r = _run("check", hand, "--findings", tmp_path / "team_a.csv")
    # team alpha leaves out the late JW325s of the clean process (a WARN rule, no injected fault)
    a = pl.read_csv(tmp_path / "team_a.csv", infer_schema_length=0)
    a.filter(~pl.col("rule_id").is_in(list(PROCESS_NOISE_RULES))).write_csv(tmp_path / "team_a.csv")
    a.filter(~pl.col("rule_id").is_in(list(PROCESS_NOISE_RULES))).head(5).write_csv(tmp_path / "team_b.csv")
    for team, sub in [("alpha", "team_a.csv"), ("beta", "team_b.csv")]:
        r = _run("challenge", "score", hand, tmp_path / sub, "--team", team, env=env)
        assert r.returncode == 0, r.stderr
    assert "1. alpha" in r.stdout and "2. beta" in r.stdout
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select team, f1 from challenge_leaderboard order by f1 desc").fetchall()
    assert [t for t, _ in rows] == ["alpha", "beta"] and rows[0][1] > rows[1][1]
    r = _run("challenge", "score", tmp_path, tmp_path / "team_a.csv", "--team", "x", env=env)
    assert r.returncode == 2 and "not a challenge handout" in r.stderr


def test_challenge_refuses_a_public_seed_unless_asked(tmp_path):
    env = {"ZANDBAK_DATA": str(tmp_path / "data")}
    r = _run("challenge", "new", "--seed", "11", "--out", tmp_path / "h", "--region", "0147", "--scale", "0.1", env=env)
    assert r.returncode == 2 and "public seed" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "h").exists()
    r = _run("challenge", "new", "--seed", "11", "--public-seed", "--out", tmp_path / "h", "--region", "0147",
             "--scale", "0.1", env=env)
    assert r.returncode == 0, r.stderr
    assert "NOT for scores" in r.stdout
    manifest = json.loads((tmp_path / "h" / "manifest.json").read_text())
    assert manifest["config"]["scored"] is False and manifest["config"]["public_seed"] == 11


def test_challenge_is_deterministic_for_a_given_secret_and_differs_without(tmp_path):
    from pipelines.challenge import new
    from pipelines.settings import Settings
    from synthetic_data.sealing import new_secret

    settings = Settings(data_dir=str(tmp_path / "data"))
    secret = new_secret()
    a = new(tmp_path / "a", region="0147", scale=0.1, settings=settings, secret=secret)
    b = new(tmp_path / "b", region="0147", scale=0.1, settings=settings, secret=secret)
    c = new(tmp_path / "c", region="0147", scale=0.1, settings=settings)
    assert a["challenge_id"] == b["challenge_id"] != c["challenge_id"]
    for f in sorted((tmp_path / "a").glob("*.parquet")):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    assert (tmp_path / "a" / "prestaties.parquet").read_bytes() != (tmp_path / "c" / "prestaties.parquet").read_bytes()


def test_a_teams_own_checks_on_a_handout_go_to_the_challenge_leaderboard(tmp_path):
    """No truth on the team's side: `check --checks` writes the findings, the sealed truth scores them."""
    env = {"ZANDBAK_DATA": str(tmp_path / "data")}
    hand = tmp_path / "handout"
    assert _run("challenge", "new", "--out", hand, "--region", "0147", "--scale", "0.2", "--profile", "demo",
                env=env).returncode == 0
    examples = Path(__file__).resolve().parent.parent / "expectations" / "examples"
    r = _run("check", hand, "--checks", examples / "sql", "--findings", tmp_path / "sql.csv")
    assert r.returncode == 1 and "sql checks of" in r.stdout, r.stdout + r.stderr
    r = _run("challenge", "score", hand, tmp_path / "sql.csv", "--team", "sql", env=env)
    assert r.returncode == 0, r.stderr
    assert "precision 1.000" in r.stdout and " tp 0," not in r.stdout
