"""Leaderboards rank a score only against scores on the same data: the experiment leaderboard per (task, dataset
hash), the challenge leaderboard per hand-out (its dataset hash), and both say which data a board is on."""
from __future__ import annotations

import datetime as dt

import polars as pl

import experiments as ex
from experiments.leaderboard import boards, session
from pipelines.challenge import LEADERBOARD
from pipelines.cli import main


def _run(name: str, score: float, digest: str, params: dict, minute: int = 0) -> ex.RunResult:
    return ex.RunResult(team="t", experiment=name, task="verzoek_triage", status="ok", error=None, runtime_s=1.0,
                        seed=None, dataset_hash=digest, score=score, params=params,
                        time=dt.datetime(2026, 1, 1) + dt.timedelta(minutes=minute))


def test_the_experiment_leaderboard_ranks_within_each_dataset(tmp_path, monkeypatch, capsys):
    wh = tmp_path / "data" / "warehouse.duckdb"
    small = {"region": "0147", "year": 2024, "scale": 0.2}
    big = {"region": "twente", "year": 2024, "scale": 0.3}
    for r in [_run("a", 0.9, "aaaa" * 16, small, 0), _run("b", 0.5, "aaaa" * 16, small, 1),
              _run("c", 0.6, "bbbb" * 16, big, 2), _run("a", 0.4, "bbbb" * 16, big, 3)]:
        ex.record(wh, r)
    board = ex.leaderboard(wh)
    # the latest board first; within a board, best first: 'a' is 1st on one dataset and 2nd on the other
    assert board.select("dataset_hash", "experiment", "rank").rows() == [
        ("bbbb" * 16, "c", 1), ("bbbb" * 16, "a", 2), ("aaaa" * 16, "a", 1), ("aaaa" * 16, "b", 2)]
    labels = [(digest[:4], label) for _, digest, label, _ in boards(board)]
    assert labels == [("bbbb", "twente, 2024, scale 0.3, sealed"), ("aaaa", "0147, 2024, scale 0.2, sealed")]
    monkeypatch.setenv("ZANDBAK_DATA", str(tmp_path / "data"))
    assert main(["experiment", "leaderboard"]) == 0
    out = capsys.readouterr().out
    assert out.count("verzoek_triage on dataset") == 2
    assert "verzoek_triage on dataset bbbbbbbbbbbb (twente, 2024, scale 0.3, sealed):" in out
    assert "verzoek_triage on dataset aaaaaaaaaaaa (0147, 2024, scale 0.2, sealed):" in out


def test_a_run_recorded_before_the_parameters_were_kept_still_shows(tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    ex.record(wh, _run("old", 0.3, "cccc" * 16, None))
    [(_, _, label, rows)] = boards(ex.leaderboard(wh))
    assert label == "sealed (region and years not recorded)" and rows["rank"].to_list() == [1]


def test_the_challenge_leaderboard_ranks_only_scores_on_the_same_handout(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("ZANDBAK_DATA", str(data))
    assert main(["challenge", "new", "--region", "0147", "--scale", "0.1", "--out", str(tmp_path / "h")]) == 0
    sub = tmp_path / "sub.csv"
    pl.DataFrame({"table": ["prestaties"], "key": ["1|2"]}).write_csv(sub)
    assert main(["challenge", "score", str(tmp_path / "h"), str(sub), "--team", "alpha"]) == 0
    capsys.readouterr()
    first = next((data / "leaderboards" / LEADERBOARD).glob("*.parquet"))
    [(challenge_id,)] = pl.read_parquet(first).select("challenge_id").rows()
    # a perfect score of the same challenge id on other data (a hand-out made by other code, other bytes)
    with session(data / "warehouse.duckdb", LEADERBOARD) as con:
        con.execute(f"create table {LEADERBOARD} as select now()::timestamp as time, ? as challenge_id, "
                    f"'elsewhere' as team, 1.0 as precision, 1.0 as recall, 1.0 as f1, 9::bigint as tp, "
                    f"0::bigint as fp, 0::bigint as fn, 'x' as submission, 'other' as dataset_hash, "
                    f"'0147' as region, '2024' as years", [challenge_id])
    assert main(["challenge", "score", str(tmp_path / "h"), str(sub), "--team", "beta"]) == 0
    out = capsys.readouterr().out
    assert "elsewhere" not in out and "alpha" in out and "beta" in out
    assert f"leaderboard of challenge {challenge_id} on dataset " in out and "(0147 2024;" in out


def test_challenge_score_prints_undefined_metrics_as_a_dash(monkeypatch, capsys, tmp_path):
    # a small hand-out can have nothing to find (recall and F1 undefined, None): the score is printed, not a traceback
    import pipelines.challenge as ch
    undefined = {"overall": {"precision": 0.0, "recall": None, "f1": None, "tp": 0, "fp": 1, "fn": 0}}
    monkeypatch.setattr(ch, "score_submission", lambda *a, **k: {
        "result": undefined, "challenge_id": "c1", "dataset_hash": "d" * 64, "dataset": "0147 2024",
        "leaderboard": [("alpha", None, 1)]})
    assert main(["challenge", "score", str(tmp_path / "h"), str(tmp_path / "s.csv"), "--team", "alpha"]) == 0
    out = capsys.readouterr().out
    assert "precision 0.000  recall -  F1 -" in out and "best F1 -" in out
