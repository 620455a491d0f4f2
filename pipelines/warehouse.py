"""The DuckDB warehouse: one table per asset copied from its Parquet partitions, and the code lists and the data
dictionary as tables with comments (no dagster import; the HTML report is pipelines/report.py).

The file is self-contained, so the data folder (or the file alone) can be moved or mailed: views over the Parquet
files would hold their paths, and DuckDB resolves a relative path in a view against the working directory of
whoever opens it (checked with duckdb-cli 1.5.6), so no view path works from everywhere. Copying costs little
(Twente 2024: 2.7 s and 13.6 MB against 0.2 s for views; see the README). It is written in DuckDB storage
version v1.4.0 (`STORAGE_VERSION`): the duckdb 2.0 Python package writes version 69 by default, which the DuckDB
CLI 1.5 (the newest on PyPI, `duckdb-cli`) refuses ("can only read versions between 64 and 68").

The warehouse file is never opened for writing where people read it: `build_views` builds a new file beside it and
renames it over the old one. A session that has the old file open (read-only, or the DuckDB CLI) keeps reading the
old file and never blocks the build. The append-only leaderboards live in their own Parquet folders
(`leaderboards/<table>/`, see experiments.leaderboard) and are copied in as tables at each build and by
`refresh_leaderboards`. Tables of your own belong in a DuckDB file of your own
(`attach 'data/warehouse.duckdb' (read_only)`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from experiments.leaderboard import rows_dir
from synthetic_data.atomic import atomic_write
from synthetic_data.dictionary import codelist_frame, dictionary_frame, warehouse_tables
from synthetic_data.dictionary import tables as dictionary
from synthetic_data.errors import DataError
from synthetic_data.generate import REFERENCE_TABLES

# The oldest storage format with everything the warehouse uses: DuckDB 1.4 and later (CLI 1.4.x, 1.5.x) open it.
STORAGE_VERSION = "v1.4.0"
# Tables this module writes besides the lake's and the leaderboards' (a warehouse that has them is one of ours).
DICTIONARY_TABLE, CODELISTS_TABLE = "data_dictionary", "codelists"


def _leaderboards(db_path: Path) -> Path:
    """The folder holding one folder per append-only table of the warehouse."""
    return rows_dir(db_path, "any").parent


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _sql_text(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _lake_tables(con, lake: Path) -> dict[str, int]:
    """One table per lake table that has files, copied from its partitions; the row count of each."""
    counts = {}
    names = list(dictionary()) + sorted(p.name for p in lake.glob("*") if p.is_dir() and p.name not in dictionary())
    for name in names:
        if not any((lake / name).glob("*.parquet")):
            continue
        pattern = _quote((lake / name).resolve() / "*.parquet")
        distinct = "distinct " if name in REFERENCE_TABLES else ""   # reference rows repeat across regions' files
        con.execute(f'create table "{name}" as select {distinct}* from read_parquet(\'{pattern}\')')
        counts[name] = con.execute(f'select count(*) from "{name}"').fetchall()[0][0]
    return counts


def _leaderboard_sources(db_path: Path) -> dict[str, str]:
    """The `read_parquet(...)` of each append-only table beside the warehouse that has rows."""
    root = _leaderboards(db_path)
    return {folder.name: f"read_parquet('{_quote(folder.resolve() / '*.parquet')}', union_by_name = true)"
            for folder in sorted(p for p in root.glob("*") if p.is_dir() and p.name.isidentifier())
            if any(folder.glob("*.parquet"))}


def _leaderboard_tables(con, db_path: Path) -> dict[str, int]:
    """A copy of each append-only table beside the warehouse (files of newer code with a column more join by name)."""
    counts = {}
    for name, source in _leaderboard_sources(db_path).items():
        con.execute(f'create or replace table "{name}" as select * from {source}')
        note = (f"Append-only leaderboard, copied from leaderboards/{name}/ when the warehouse was built (one "
                f"Parquet file per appended batch there).")
        con.execute(f'comment on table "{name}" is {_sql_text(note)}')
        counts[name] = con.execute(f'select count(*) from "{name}"').fetchall()[0][0]
    return counts


def _column_comment(element: str, codelist: str, meaning: str) -> str:
    extra = [f"iJw element {element}"] if element != "-" else []
    extra += [f"code list {codelist} (table codelists)"] if codelist != "-" else []
    return meaning + (f" [{'; '.join(extra)}]" if extra else "")


def _dictionary_tables(con) -> dict[str, int]:
    """The code lists and the data dictionary as tables, and a COMMENT ON TABLE/COLUMN for every table of the data
    dictionary the warehouse holds (the comments show in `duckdb_tables()`, `duckdb_columns()` and the CLI)."""
    columns, lists = dictionary_frame(), codelist_frame()
    for name, frame in ((DICTIONARY_TABLE, columns), (CODELISTS_TABLE, lists)):
        con.register("_frame", frame.to_arrow())
        con.execute(f'create or replace table "{name}" as select * from _frame')
        con.unregister("_frame")
    present = {t for (t,) in con.execute("select table_name from duckdb_tables() "
                                         "where database_name = current_database()").fetchall()}
    for table, spec in {**dictionary(), **warehouse_tables()}.items():
        if table not in present:
            continue
        con.execute(f'comment on table "{table}" is {_sql_text(spec["meaning"])}')
        have = {c for (c,) in con.execute("select column_name from duckdb_columns() where database_name = "
                                          "current_database() and table_name = ?", [table]).fetchall()}
        for col, (_, element, codelist, meaning) in spec["columns"].items():
            if col in have:
                text = _sql_text(_column_comment(element, codelist, meaning))
                con.execute(f'comment on column "{table}"."{col}" is {text}')
    return {DICTIONARY_TABLE: columns.height, CODELISTS_TABLE: lists.height}


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
            if DICTIONARY_TABLE in tables:
                tables = []  # one of ours (moved here without its folder): its leaderboards are copies, not rows
            if any(not t.endswith("leaderboard") for t in tables):   # tables of the user's own: keep the file
                shutil.copy2(db_path, db_path.with_name(f"{db_path.stem}.before-views{db_path.suffix}"))
            for table in [t for t in tables if t.endswith("leaderboard")]:
                digest = con.execute(f"select md5(coalesce(string_agg(t::varchar, '|' order by t::varchar), '')) "
                                     f"from {table} t").fetchall()[0][0]
                if not con.execute(f"select count(*) from {table}").fetchall()[0][0]:
                    continue
                with atomic_write(rows_dir(db_path, table) / f"0-moved-{digest[:16]}.parquet") as tmp:
                    con.execute(f"copy (select * from {table}) to '{_quote(tmp)}' (format parquet)")
    with atomic_write(marker) as tmp:
        tmp.write_text(f"the leaderboard tables of {db_path} were moved here\n", encoding="utf-8")


def _swap_in(db_path: Path, fill, start_from: Path | None = None) -> dict[str, int]:
    """Build a new warehouse file with `fill(con)` and rename it over `db_path` (readers of the old one keep it).
    `start_from`: begin with a copy of that file (kept in its storage version) instead of an empty one."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    _move_leaderboard_tables(db_path)
    with atomic_write(db_path) as tmp:
        tmp.unlink()                      # DuckDB makes its own file; an empty one is not a database to it
        if start_from is not None:
            shutil.copyfile(start_from, tmp)
        with duckdb.connect() as con:
            version = "" if start_from is not None else f" (storage_version '{STORAGE_VERSION}')"
            con.execute(f"attach '{_quote(tmp)}' as w{version}")
            con.execute("use w")
            con.execute("begin")          # one transaction: ~200 comments cost 0.2 s, not 1.4 s one by one
            counts = fill(con)
            con.execute("commit")
            con.execute("checkpoint w")
            con.execute("use memory")
            con.execute("detach w")
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        # the log of a writer killed on the old file would be replayed onto the new one: it goes with the old file
        Path(f"{db_path}.wal").unlink(missing_ok=True)
    return counts


def build_views(db_path: Path, lake: Path) -> dict[str, int]:
    """(Re)build the warehouse: one table per lake table that has files, per leaderboard, the code lists and the
    data dictionary, with comments; the row count of each. (The name is from when it built views.)"""
    return _swap_in(db_path, lambda con: {**_lake_tables(con, lake), **_leaderboard_tables(con, db_path),
                                          **_dictionary_tables(con)})


def table_counts(db_path: Path) -> dict[str, int]:
    """The row count of each lake table and leaderboard in the warehouse (the dictionary tables left out)."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        names = [t for (t,) in con.execute("select table_name from duckdb_tables() order by table_name").fetchall()
                 if t not in (DICTIONARY_TABLE, CODELISTS_TABLE)]
        order = {n: i for i, n in enumerate(dictionary())}
        return {n: con.execute(f'select count(*) from "{n}"').fetchall()[0][0]
                for n in sorted(names, key=lambda n: (order.get(n, len(order)), n))}


def _leaderboard_rows(db_path: Path) -> dict[str, int]:
    with duckdb.connect() as con:
        return {name: con.execute(f"select count(*) from {source}").fetchall()[0][0]
                for name, source in _leaderboard_sources(db_path).items()}


def refresh_leaderboards(db_path: Path) -> bool:
    """Bring the warehouse's copies of the leaderboards up to date with their folders, keeping its other tables
    (a copy of the file gets the new rows and replaces it). False when the warehouse is open for writing elsewhere
    (the rows come with the next build)."""
    wanted = _leaderboard_rows(db_path)
    views: dict[str, str] = {}
    ours = False
    if db_path.exists():
        try:
            with duckdb.connect(str(db_path), read_only=True) as con:
                views = dict(con.execute("select view_name, sql from duckdb_views() where not internal").fetchall())
                tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
                have = {t: con.execute(f'select count(*) from "{t}"').fetchall()[0][0] for t in wanted if t in tables}
        except duckdb.IOException:
            return False
        ours = DICTIONARY_TABLE in tables and not views
        if ours and have == wanted:
            return True

    def fill(con):
        for name, sql in views.items():     # a warehouse of views (before the copies): keep its other views
            if name not in wanted:
                con.execute(sql)
        counts = _leaderboard_tables(con, db_path)
        if not ours:
            _dictionary_tables(con)
        return counts

    _swap_in(db_path, fill, start_from=db_path if ours else None)
    return True
