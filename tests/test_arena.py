"""The arena's guards over plain HTTP (starlette's TestClient, no server): tokens, uploads, the daily limit, the
public/private split, the reveal, the board in the warehouse, and that no URL gives the truth away."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import polars as pl
import pytest
from starlette.testclient import TestClient

from pipelines.arena import BOARD, Arena, create_app, public_mask
from pipelines.challenge import new
from pipelines.settings import Settings


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    root = tmp_path_factory.mktemp("arena")
    settings = Settings(data_dir=str(root / "data"))
    info = new(root / "handout", region="0147", scale=1.0, settings=settings)   # about 500 faults
    return root, settings, info


def _arena(challenge, tmp_path, **kw) -> tuple[Arena, dict, TestClient]:
    """A fresh arena state (own data folder, same hand-out and sealed truth) per test."""
    root, settings, info = challenge
    data = tmp_path / "data"
    sealed = Path(settings.sealed) / "challenges" / info["challenge_id"]
    shutil.copytree(sealed, data / "sealed" / "challenges" / info["challenge_id"])
    arena = Arena(root / "handout", settings=Settings(data_dir=str(data)), **kw)
    tokens = arena.issue_tokens(["alpha", "beta"])
    return arena, tokens, TestClient(create_app(arena))


def _message(r) -> str:
    m = re.search(r'id="message"[^>]*>([^<]*)<', r.text)
    return m.group(1) if m else ""


def _truth(challenge) -> pl.DataFrame:
    root, settings, info = challenge
    return pl.read_parquet(Path(info["truth"]))


def _csv(df: pl.DataFrame) -> bytes:
    return df.select("table", "key").write_csv().encode()


def _post(client, token, name, data):
    return client.post("submit", data={"token": token}, files={"file": (name, data, "text/csv")})


def test_a_team_sees_its_public_score_and_the_board(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path)
    page = client.get("/")
    assert page.status_code == 200 and "handout.zip" in page.text and "sample.csv" in page.text
    assert "<script" not in page.text and "http" not in page.text.replace('action="submit"', "")  # nothing fetched
    sample = client.get("/sample.csv").text
    assert sample.startswith("table,key") and sample.count("\n") == 4
    r = _post(client, tokens["teams"]["alpha"], "findings.csv", _csv(_truth(challenge)))
    assert r.status_code == 200, _message(r)
    assert "public F1 1.000" in _message(r)
    board = client.get("/leaderboard.json").json()
    assert [row["team"] for row in board["public"]] == ["alpha"] and board["private"] is None
    assert "alpha" in client.get("/").text


def test_the_split_is_keyed_deterministic_and_scores_both_parts(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path)
    truth = _truth(challenge)
    keys = truth.select("table", "key")
    mask = public_mask(keys, arena.secret, 0.5)
    assert mask.equals(public_mask(keys, arena.secret, 0.5))                     # same record, same part
    other = public_mask(keys, "ab" * 32, 0.5)
    assert not mask.equals(other)                                                # keyed: another secret, another split
    share = mask.mean()
    assert 0.3 < share < 0.7, share
    # only the public records: perfect in public, nothing found in private
    r = _post(client, tokens["teams"]["alpha"], "public.csv", _csv(truth.filter(mask)))
    assert r.status_code == 200
    rows = arena._rows().filter(pl.col("status") == "scored")
    assert rows["public_recall"][0] == pytest.approx(1.0) and rows["private_recall"][0] == pytest.approx(0.0)


def test_wrong_token_is_refused_and_nothing_is_kept(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path)
    for token in ("nope", "", tokens["host"]):                   # the host token is no team token
        r = _post(client, token, "findings.csv", _csv(_truth(challenge)))
        assert r.status_code in (403, 400), r.status_code
        assert "refused" in _message(r)
    assert arena._rows().height == 0 and not (arena.state / "uploads").exists()


def test_bad_uploads_get_one_line_and_do_not_count_against_the_limit(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path, limit=2)
    alpha = tokens["teams"]["alpha"]
    bad = [("garbled.csv", bytes(range(256)) * 40), ("notable.csv", b"tabel,sleutel\nx,1\n"),
           ("unknown.csv", b"table,key\ngeheim,1\n"), ("findings.txt", b"table,key\n"),
           ("broken.parquet", b"PAR1 not really")]
    for name, data in bad:
        r = _post(client, alpha, name, data)
        assert r.status_code == 400, (name, r.status_code, _message(r))
        msg = _message(r)
        assert "not counted" in msg and "\n" not in msg and "Traceback" not in r.text, msg
    good = _csv(_truth(challenge).head(50))
    for _ in range(2):
        assert _post(client, alpha, "f.csv", good).status_code == 200
    r = _post(client, alpha, "f.csv", good)
    assert r.status_code == 429 and "limit reached" in _message(r) and "2 of 2" in _message(r)
    assert _post(client, tokens["teams"]["beta"], "f.csv", good).status_code == 200   # the limit is per team
    rows = arena._rows()
    assert rows.filter(pl.col("status") == "bad_format").height == len(bad)
    assert rows.filter(pl.col("status") == "scored").height == 3
    # every upload read whole is kept, byte for byte, append-only
    kept = sorted((arena.state / "uploads").iterdir())
    assert len(kept) == len(bad) + 3
    assert {p.read_bytes() for p in kept} >= {d for _, d in bad} | {good}


def test_oversized_and_malformed_requests_are_refused(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path, max_mb=0.01)
    alpha = tokens["teams"]["alpha"]
    r = _post(client, alpha, "big.csv", b"table,key\n" + b"prestaties,1|2\n" * 10_000)
    assert r.status_code == 413 and "at most" in _message(r)
    r = client.post("submit", content=b"--xyz\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code in (400, 403) and "refused" in _message(r)
    r = client.post("submit", content=b"token=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403
    assert arena._rows().height == 0


def test_the_host_reveals_the_private_board_and_closes_submissions(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path)
    assert _post(client, tokens["teams"]["alpha"], "f.csv", _csv(_truth(challenge))).status_code == 200
    assert 'id="private"' not in client.get("/").text
    r = client.post("reveal", data={"token": tokens["teams"]["alpha"]})
    assert r.status_code == 403 and not arena.revealed
    r = client.post("reveal", data={"token": tokens["host"]})
    assert r.status_code == 200 and arena.revealed
    assert 'id="private"' in client.get("/").text
    assert client.get("/leaderboard.json").json()["private"][0]["team"] == "alpha"
    r = _post(client, tokens["teams"]["beta"], "f.csv", _csv(_truth(challenge)))
    assert r.status_code == 409 and "closed" in _message(r)


def test_no_url_gives_the_truth_the_secret_or_the_tokens(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path)
    assert _post(client, tokens["teams"]["alpha"], "f.csv", _csv(_truth(challenge))).status_code == 200
    cid = arena.challenge_id
    secrets_ = [arena.secret, tokens["host"], *tokens["teams"].values()]
    truth_bytes = Path(challenge[2]["truth"]).read_bytes()
    paths = ["/truth.parquet", "/secret", "/tokens.json", f"/sealed/challenges/{cid}/truth.parquet",
             f"/sealed/challenges/{cid}/secret", f"/sealed/arena/{cid}/tokens.json", "/data/sealed/",
             f"/../sealed/challenges/{cid}/truth.parquet", f"/%2e%2e/sealed/challenges/{cid}/truth.parquet",
             f"/handout.zip/../../data/sealed/challenges/{cid}/truth.parquet", "/..%2f..%2fdata%2fsealed",
             "/static/../../secret", f"/{cid}/truth.parquet", "/uploads/", "/host/../tokens.json",
             "/leaderboard.json/../secret", "//etc/passwd", "/handout.zip?path=../sealed"]
    for path in paths:
        r = client.get(path)
        body = r.content
        assert truth_bytes[:64] not in body and not any(s.encode() in body for s in secrets_), path
        if "handout.zip" not in path and path != "/leaderboard.json/../secret":
            assert r.status_code == 404, (path, r.status_code)
    # the hand-out zip holds the hand-out's files and nothing else
    names = zipfile.ZipFile(io.BytesIO(client.get("/handout.zip").content)).namelist()
    handout = sorted(p.name for p in (challenge[0] / "handout").iterdir())
    assert sorted(Path(n).name for n in names) == handout
    assert not any("truth" in n or "secret" in n or "trajecten" in n for n in names)
    # the pages show the team its score, never the labels of the truth
    page = client.get("/").text
    for fault_type in _truth(challenge)["fault_type"].unique().to_list():
        assert fault_type not in page


def test_submissions_are_a_board_of_the_warehouse(challenge, tmp_path):
    arena, tokens, client = _arena(challenge, tmp_path)
    assert _post(client, tokens["teams"]["alpha"], "f.csv", _csv(_truth(challenge))).status_code == 200
    with duckdb.connect(str(arena.settings.warehouse), read_only=True) as con:
        rows = con.execute(f"select team, status, public_f1 from {BOARD}").fetchall()
    assert rows == [("alpha", "scored", 1.0)]


def test_the_arena_does_not_import_dagster():
    code = "import sys, pipelines.arena, pipelines.demo; print(sorted(m for m in sys.modules if 'dagster' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_an_experiment_task_is_served_and_scored_on_both_parts(tmp_path):
    from pipelines.arena import TaskArena

    arena = TaskArena("verzoek_triage", settings=Settings(data_dir=str(tmp_path / "data")), limit=2, region="0147")
    tokens = arena.issue_tokens(["alpha"])
    client = TestClient(create_app(arena))
    page = client.get("/").text
    assert "verzoek_triage" in page and "antwoord" in page
    names = zipfile.ZipFile(io.BytesIO(client.get("/handout.zip").content)).namelist()
    assert any(n.endswith("to_predict.parquet") for n in names) and not any("truth" in n for n in names)
    truth = arena.full_truth
    perfect = truth.select(list(arena.task.prediction_schema))
    alpha = tokens["teams"]["alpha"]
    # a missing row is refused on the whole truth, naming no part (the first missing row is the same either way)
    r = _post(client, alpha, "short.csv", perfect.head(perfect.height - 1).write_csv().encode())
    assert r.status_code == 400 and "miss 1 of" in _message(r) and f"of {truth.height} rows" in _message(r)
    r = _post(client, alpha, "perfect.csv", perfect.write_csv().encode())
    assert r.status_code == 200 and "public score 1.000" in _message(r), _message(r)
    rows = arena._rows().filter(pl.col("status") == "scored")
    assert rows["public_score"][0] == pytest.approx(1.0) and rows["private_score"][0] == pytest.approx(1.0)
    assert 0 < arena.truth["public"].height < truth.height


def test_a_port_in_use_is_one_line_and_writes_nothing(challenge, tmp_path, capsys, monkeypatch):
    import socket

    from pipelines.cli import main

    root, settings, info = challenge
    monkeypatch.setenv("ZANDBAK_DATA", settings.data_dir)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["arena", str(root / "handout"), "--teams", "a", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--host/--port" in err and str(port) in err, err
    assert not (Path(settings.sealed) / "arena" / info["challenge_id"] / "tokens.json").exists()
