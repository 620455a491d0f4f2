"""The DuckDB warehouse: one view per asset over its Parquet partitions (no dagster import; the report: report.py).

Views over the Parquet files (rather than copied tables) keep the warehouse exactly in step with the partitions:
re-materialising a partition replaces its file, so its rows appear once, and parallel partition runs never contend
for the DuckDB file lock.

The warehouse file is never opened for writing where people read it: `build_views` builds a new file beside it and
renames it over the old one. A session that has the old file open (read-only, or the DuckDB CLI) keeps reading the
old file's views and never blocks the build. So the file holds nothing but views: the append-only leaderboards
live in their own Parquet folders (`leaderboards/<table>/`, see experiments.leaderboard) and are views here too.
Tables of your own belong in a DuckDB file of your own (`attach 'data/warehouse.duckdb' (read_only)`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from experiments.leaderboard import rows_dir
from synthetic_data.atomic import atomic_write
from synthetic_data.dictionary import tables as dictionary
from synthetic_data.errors import DataError
from synthetic_data.generate import REFERENCE_TABLES


def _leaderboards(db_path: Path) -> Path:
    """The folder holding one folder per append-only table of the warehouse."""
    return rows_dir(db_path, "any").parent


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _lake_views(con, lake: Path) -> dict[str, int]:
    """One view per lake table that has files; the row count of each."""
    counts = {}
    names = list(dictionary()) + sorted(p.name for p in lake.glob("*") if p.is_dir() and p.name not in dictionary())
    for name in names:
        if not any((lake / name).glob("*.parquet")):
            continue
        pattern = _quote((lake / name).resolve() / "*.parquet")
        # reference tables are written per region: several regions' files may repeat the same rows
        distinct = "distinct " if name in REFERENCE_TABLES else ""
        con.execute(f"create or replace view \"{name}\" as select {distinct}* from read_parquet('{pattern}')")
        counts[name] = con.execute(f'select count(*) from "{name}"').fetchone()[0]
    return counts


def _leaderboard_views(con, db_path: Path) -> dict[str, int]:
    """One view per append-only table beside the warehouse. Its columns are fixed now (a file written later by newer
    code with a column more must not make the view fail); new rows show at once."""
    counts = {}
    root = _leaderboards(db_path)
    for folder in sorted(p for p in root.glob("*") if p.is_dir() and p.name.isidentifier()):
        if not any(folder.glob("*.parquet")):
            continue
        source = f"read_parquet('{_quote(folder.resolve() / '*.parquet')}', union_by_name = true)"
        cols = ", ".join(f'"{c}"' for (c, *_) in con.execute(f"describe select * from {source}").fetchall())
        con.execute(f'create or replace view "{folder.name}" as select {cols} from {source}')
        counts[folder.name] = con.execute(f'select count(*) from "{folder.name}"').fetchone()[0]
    return counts


def _move_leaderboard_tables(db_path: Path) -> None:
    """Warehouses built before the leaderboards had folders of their own held them as tables: copy their rows out
    once (under a name made from their content, so an interrupted move repeated gives no second copy)."""
    root = _leaderboards(db_path)
    marker = root / f".moved-from-{db_path.name}"
    if marker.exists():
        return
    try:
        con = duckdb.connect(str(db_path), read_only=True) if db_path.exists() else None
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise DataError(f"{db_path} is open for writing in another session (a DuckDB CLI?); close it once, so "
                            f"its leaderboard tables can move to {root}") from None
        con = None           # not a readable warehouse: nothing to keep, the build replaces it
    if con is not None:
        with con:
            tables = [t for (t,) in con.execute(
                "select table_name from information_schema.tables where table_type = 'BASE TABLE'").fetchall()]
            if any(not t.endswith("leaderboard") for t in tables):   # tables of the user's own: keep the file
                shutil.copy2(db_path, db_path.with_name(f"{db_path.stem}.before-views{db_path.suffix}"))
            for table in [t for t in tables if t.endswith("leaderboard")]:
                digest = con.execute(f"select md5(coalesce(string_agg(t::varchar, '|' order by t::varchar), '')) "
                                     f"from {table} t").fetchone()[0]
                if not con.execute(f"select count(*) from {table}").fetchone()[0]:
                    continue
                with atomic_write(rows_dir(db_path, table) / f"0-moved-{digest[:16]}.parquet") as tmp:
                    con.execute(f"copy (select * from {table}) to '{_quote(tmp)}' (format parquet)")
    with atomic_write(marker) as tmp:
        tmp.write_text(f"the leaderboard tables of {db_path} were moved here\n", encoding="utf-8")


def _swap_in(db_path: Path, fill) -> dict[str, int]:
    """Build a new warehouse file with `fill(con)` and rename it over `db_path` (readers of the old one keep it)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    _move_leaderboard_tables(db_path)
    with atomic_write(db_path) as tmp:
        tmp.unlink()                      # DuckDB makes its own file; an empty one is not a database to it
        with duckdb.connect(str(tmp)) as con:
            counts = fill(con)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        # the log of a writer killed on the old file would be replayed onto the new one: it goes with the old file
        Path(f"{db_path}.wal").unlink(missing_ok=True)
    return counts


def build_views(db_path: Path, lake: Path) -> dict[str, int]:
    """(Re)build the warehouse: one view per table that has files, and per leaderboard; the row count of each."""
    return _swap_in(db_path, lambda con: {**_lake_views(con, lake), **_leaderboard_views(con, db_path)})


def refresh_leaderboards(db_path: Path) -> bool:
    """Give the warehouse a view of a leaderboard that got its first row after the last build, keeping its other
    views. False when the warehouse is open for writing elsewhere (the view comes with the next build)."""
    root = _leaderboards(db_path)
    wanted = {p.name for p in root.glob("*") if p.is_dir() and any(p.glob("*.parquet"))}
    views: dict[str, str] = {}
    if db_path.exists():
        try:
            with duckdb.connect(str(db_path), read_only=True) as con:
                views = dict(con.execute("select view_name, sql from duckdb_views() where not internal").fetchall())
                tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
        except duckdb.IOException:
            return False
        if wanted <= set(views) and not tables:
            return True

    def fill(con):
        for name, sql in views.items():
            if name not in wanted:
                con.execute(sql)
        return _leaderboard_views(con, db_path)

    _swap_in(db_path, fill)
    return True
