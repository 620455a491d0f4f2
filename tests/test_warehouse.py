"""The analysts' warehouse: a self-contained DuckDB file that the DuckDB CLI opens (a real `duckdb` subprocess, the
`duckdb-cli` of the dev extra), also after the data folder moved, with the code lists, the data dictionary and
column comments; leaderboard rows recorded after a build reach it through refresh_leaderboards."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import experiments as ex
from pipelines.warehouse import build_views, refresh_leaderboards
from synthetic_data.dictionary import tables as dictionary
from synthetic_data.dictionary import warehouse_tables
from synthetic_data.testing import small_tables

CLI = Path(sys.executable).with_name("duckdb")


def _cli(db: Path, sql: str, cwd: Path) -> list[list[str]]:
    """Rows of `sql` as the DuckDB CLI prints them (CSV without header)."""
    assert CLI.exists(), f"{CLI} missing: install the dev extra (duckdb-cli)"
    r = subprocess.run([str(CLI), "-readonly", "-csv", "-noheader", str(db), "-c", sql], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split(",", 1) if "," in line else [line] for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def lake_tables():
    return small_tables()


def _data_folder(root: Path, tables) -> tuple[Path, Path]:
    data = root / "data"
    lake = data / "lake" / "seed=7_years=2024_scale=0.2"
    for name, df in tables.items():
        (lake / name).mkdir(parents=True)
        df.write_parquet(lake / name / "0147.parquet")
    return data, lake


def _run(score: float, name: str) -> ex.RunResult:
    return ex.RunResult(team="t", experiment=name, task="verzoek_triage", status="ok", error=None, runtime_s=1.0,
                        seed=1, dataset_hash="h1", score=score)


def test_the_duckdb_cli_opens_the_warehouse_after_the_data_folder_moved(tmp_path, lake_tables):
    data, lake = _data_folder(tmp_path, lake_tables)
    ex.record(data / "warehouse.duckdb", _run(0.5, "e1"))
    build_views(data / "warehouse.duckdb", lake)
    moved = tmp_path / "elsewhere" / "mailed"
    moved.parent.mkdir()
    data.rename(moved)                          # the old path is gone: nothing may point there
    db, away = moved / "warehouse.duckdb", tmp_path / "elsewhere"      # the CLI started outside the folder
    assert _cli(db, "select count(*) from toewijzingen", away) == [[str(lake_tables["toewijzingen"].height)]]
    assert _cli(db, "select omschrijving from codelists where codelist = 'eenheid' and code = '14'", away) == [["Etmaal"]]
    comment = _cli(db, "select comment from duckdb_columns() where table_name = 'prestaties' "
                       "and column_name = 'product_categorie'", away)[0][0]
    assert dictionary()["prestaties"]["columns"]["product_categorie"][3] in comment and "code list product_categorie" in comment
    assert _cli(db, "select comment from duckdb_tables() where table_name = 'toewijzingen'", away)[0][0].strip('"') \
        == dictionary()["toewijzingen"]["meaning"]
    assert _cli(db, "select experiment, score from experiment_leaderboard", away) == [["e1", "0.5"]]

    # a run recorded after the build reaches the moved warehouse; the file stays one the CLI opens
    ex.record(db, _run(0.7, "e2"))
    assert refresh_leaderboards(db)
    assert _cli(db, "select experiment from experiment_leaderboard order by experiment", away) == [["e1"], ["e2"]]
    assert _cli(db, "select count(*) from toewijzingen", away) == [[str(lake_tables["toewijzingen"].height)]]
    # the copy of the moved file, mailed alone without any folder beside it, still opens
    alone = tmp_path / "inbox" / "warehouse.duckdb"
    alone.parent.mkdir()
    shutil.copy2(db, alone)
    assert _cli(alone, "select count(*) from jeugdigen", tmp_path) == [[str(lake_tables["jeugdigen"].height)]]


def test_the_data_dictionary_and_every_column_comment_follow_dictionary_yaml(tmp_path, lake_tables):
    data, lake = _data_folder(tmp_path, lake_tables)
    counts = build_views(data / "warehouse.duckdb", lake)
    specs = {**dictionary(), **warehouse_tables()}
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select table_name, column_name, type, codelist, meaning from data_dictionary "
                           "order by table_name, position").fetchall()
        comments = dict(((t, c), m) for t, c, m in con.execute(
            "select table_name, column_name, comment from duckdb_columns() where database_name = 'warehouse'").fetchall())
        table_comments = dict(con.execute("select table_name, comment from duckdb_tables() "
                                          "where database_name = 'warehouse'").fetchall())
        used = {c for (c,) in con.execute("select distinct codelist from data_dictionary where codelist <> '-'").fetchall()}
        lists = {c for (c,) in con.execute("select distinct codelist from codelists").fetchall()}
    assert len(rows) == sum(len(s["columns"]) for s in specs.values()) == counts["data_dictionary"]
    assert used <= lists            # every code list a column names is in the codelists table
    for table in set(specs) & set(table_comments):
        assert table_comments[table] == specs[table]["meaning"]
        for col, (_, _, _, meaning) in specs[table]["columns"].items():
            assert comments[(table, col)].startswith(meaning), (table, col)
    assert set(lake_tables) | {"codelists", "data_dictionary"} <= set(table_comments)


def test_a_rebuild_replaces_the_file_and_keeps_the_old_one_for_its_readers(tmp_path, lake_tables):
    data, lake = _data_folder(tmp_path, lake_tables)
    db = data / "warehouse.duckdb"
    build_views(db, lake)
    reader = duckdb.connect(str(db), read_only=True)
    try:
        lake_tables["zorgstarts"].head(3).write_parquet(lake / "zorgstarts" / "9999.parquet")
        build_views(db, lake)           # not blocked by the open reader, which keeps the old rows
        assert reader.execute("select count(*) from zorgstarts").fetchall()[0][0] == lake_tables["zorgstarts"].height
    finally:
        reader.close()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from zorgstarts").fetchall()[0][0] == lake_tables["zorgstarts"].height + 3
