"""The leaderboard: one row per run in the append-only `experiment_leaderboard` table beside a DuckDB warehouse.

The table is a folder, `<warehouse folder>/leaderboards/experiment_leaderboard/`, with one Parquet file per recorded
run (written whole, then renamed into place), and the warehouse holds a copy (made at each build and by
`refresh_leaderboards`). Appending takes no DuckDB file lock, so a reader of the warehouse or a parallel run never
blocks or fails a write, and rebuilding the warehouse cannot lose a row.

Every score is "higher is better" (task 1 F1 of rejections, task 2 macro-F1, task 3 1 - MASE), so one ordering
serves all tasks. `leaderboard()` shows each experiment's latest run; the table keeps every run. A score compares
only with scores on the same data: runs are ranked within one board per (task, dataset_hash), and `boards()`
names each board's dataset (hash, region, years, seed).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import duckdb
import polars as pl

from synthetic_data.atomic import atomic_write

from .isolation import RunResult

TABLE = "experiment_leaderboard"
COLUMNS = {
    "team": "varchar", "experiment": "varchar", "task": "varchar", "score": "double", "metrics_json": "varchar",
    "status": "varchar", "error": "varchar", "runtime_s": "double", "seed": "bigint", "dataset_hash": "varchar",
    "time": "timestamp", "sandbox": "varchar",     # sandbox: the isolation mechanisms in force (RunResult.sandbox)
    "dataset_params": "varchar",    # JSON of the task data's parameters (region, years, scale ...); null before issue 14
}


def rows_dir(warehouse: str | Path, table: str = TABLE) -> Path:
    """The folder of an append-only table of the warehouse `warehouse`: one Parquet file per appended batch."""
    return Path(warehouse).parent / "leaderboards" / table


@contextlib.contextmanager
def session(warehouse: str | Path, table: str, read_only: bool = False):
    """An in-memory DuckDB session on an append-only table. read_only: the table's files are the table (a view);
    otherwise the table starts empty and what the block inserts becomes one new file when the block ends."""
    folder = rows_dir(warehouse, table)
    with duckdb.connect() as con:
        if read_only:
            if any(folder.glob("*.parquet")):
                pattern = str(folder.resolve() / "*.parquet").replace("'", "''")
                con.execute(f"create view {table} as select * from read_parquet('{pattern}', union_by_name = true)")
            yield con
            return
        yield con
        if con.execute("select count(*) from information_schema.tables where table_name = ?", [table]).fetchone()[0]:
            if con.execute(f"select count(*) from {table}").fetchone()[0]:
                with atomic_write(folder / f"{time.time_ns()}-{os.getpid()}.parquet") as tmp:
                    con.execute(f"copy {table} to '{str(tmp).replace(chr(39), chr(39) * 2)}' (format parquet)")


def _connect(warehouse: Path, read_only: bool = False):
    return session(warehouse, TABLE, read_only)


def _create(con) -> None:
    cols = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
    con.execute(f"create table if not exists {TABLE} ({cols})")
    con.execute(f'alter table {TABLE} add column if not exists "sandbox" varchar')     # warehouses from before
    con.execute(f'alter table {TABLE} add column if not exists "dataset_params" varchar')


def record(warehouse: str | Path, result: RunResult) -> None:
    """Append one run to the leaderboard table (created when missing)."""
    warehouse = Path(warehouse)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    row = [result.team, result.experiment, result.task, result.score,
           json.dumps(result.metrics, sort_keys=True, default=str) if result.metrics is not None else None,
           result.status, result.error, result.runtime_s, result.seed, result.dataset_hash, result.time,
           result.sandbox or None,
           json.dumps(result.params, sort_keys=True, default=str) if result.params is not None else None]
    with _connect(warehouse) as con:
        _create(con)
        con.execute(f"insert into {TABLE} ({', '.join(chr(34) + c + chr(34) for c in COLUMNS)}) "
                    f"values ({', '.join('?' * len(COLUMNS))})", row)


def leaderboard(warehouse: str | Path, task: str | None = None, latest: bool = True) -> pl.DataFrame:
    """The latest run of each (team, experiment, task) on each dataset (every run with latest=False), ordered by
    task, dataset (the board with the latest run first), then score (best first; failed runs last), then runtime.
    A `rank` column numbers the experiments within each board: one task on one dataset (`dataset_hash`), since a
    score on other data does not compare."""
    warehouse = Path(warehouse)
    empty = pl.DataFrame(schema={"rank": pl.Int64, **{c: {"varchar": pl.String, "double": pl.Float64,
                                                          "bigint": pl.Int64, "timestamp": pl.Datetime("us")}[t]
                                                      for c, t in COLUMNS.items()}})
    with _connect(warehouse, read_only=True) as con:
        if not con.execute("select count(*) from information_schema.tables where table_name = ?",
                           [TABLE]).fetchall()[0][0]:
            return empty
        where = "where task = $task" if task else ""
        have = {r[0] for r in con.execute("select column_name from information_schema.columns where table_name = ?",
                                          [TABLE]).fetchall()}
        cols = ", ".join(f'"{c}"' if c in have else f'null::{t} as "{c}"' for c, t in COLUMNS.items())
        qualify = ('qualify row_number() over (partition by team, experiment, task, dataset_hash '
                   'order by "time" desc) = 1' if latest else "")
        sql = f"""
            select * exclude (board_time) from (
                select row_number() over (partition by task, dataset_hash order by score desc nulls last, runtime_s)
                           as "rank", max("time") over (partition by task, dataset_hash) as board_time, *
                from (select {cols} from {TABLE} {where} {qualify}))
            order by task, board_time desc, dataset_hash, score desc nulls last, runtime_s"""
        df = pl.from_arrow(con.sql(sql, params={"task": task} if task else None).to_arrow_table())
    return df.with_columns(pl.col("rank").cast(pl.Int64))


def dataset_label(params_json: str | None, seed: int | None) -> str:
    """Region, years and data of a board: 'twente 2024, scale 0.3, sealed' (what the run's parameters say)."""
    try:
        p = json.loads(params_json) if params_json else {}
    except ValueError:
        p = {}
    years = p.get("years", p.get("year"))
    parts = [str(p["region"])] if "region" in p else []
    parts += [str(years)] if years is not None else []
    parts += [f"scale {p['scale']}"] if "scale" in p else []
    parts += ["sealed" if seed is None else f"public seed {seed}"]
    return ", ".join(parts) if len(parts) > 1 else f"{parts[0]} (region and years not recorded)"


def boards(board: pl.DataFrame) -> list[tuple[str, str, str, pl.DataFrame]]:
    """The leaderboard cut into its boards: (task, dataset_hash, dataset label, rows ranked within it)."""
    out = []
    for (task, digest), rows in board.group_by(["task", "dataset_hash"], maintain_order=True):
        first = rows.row(0, named=True)
        out.append((task, digest, dataset_label(first.get("dataset_params"), first.get("seed")), rows))
    return out
