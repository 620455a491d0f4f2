"""Checks as DuckDB SQL: each `.sql` file of a folder is one check, a query over the dataset's tables (by their table
names) that selects the failing records' key columns, or their whole rows.

The check name is the file name without `.sql`; its rule code is the leading code of the name (TR346_....sql) or a
`-- rule_code: TR346` line. The table it reports on is a `-- table: prestaties` line, or else the first table after
FROM. Tables are registered as views of the polars frames (no copy, no file written).
"""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from synthetic_data.errors import DataError

from . import CheckInfo, CheckRun, code_of, concat_findings, findings_from_rows

_META = re.compile(r"^\s*--\s*(table|rule_code)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_FROM = re.compile(r"\bfrom\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def run(path: Path, tables: dict[str, pl.DataFrame]) -> CheckRun:
    import duckdb

    files = sorted(path.glob("*.sql")) if path.is_dir() else [path]
    con = duckdb.connect()
    for name, df in tables.items():
        con.register(name, df)
    checks, frames = [], []
    try:
        for f in files:
            sql = f.read_text(encoding="utf-8")
            meta = {k.lower(): v for k, v in _META.findall(sql)}
            table = meta.get("table") or next((t for t in _FROM.findall(sql) if t in tables), None)
            if table is None:
                raise DataError(f"{f.name}: which table it reports on is not said; allowed: a line '-- table: NAME' "
                                f"or a query FROM one of {', '.join(tables)}")
            info = CheckInfo(f.stem, table, meta.get("rule_code") or code_of(f.stem))
            try:
                out = con.sql(sql).pl()
            except duckdb.Error as e:
                raise DataError(f"{f.name}: the query failed: {(str(e).splitlines() or [''])[0]}") from None
            checks.append(info)
            frames.append(findings_from_rows(info, out, tables))
    finally:
        con.close()
    return CheckRun("sql", str(path), checks, concat_findings(frames))
