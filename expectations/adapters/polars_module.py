"""Checks as plain Python functions over polars frames: each public function of the module is one check.

    def TR346_bedrag_is_volume_maal_tarief(prestaties: pl.DataFrame) -> pl.DataFrame:
        return prestaties.filter(pl.col("ingediend_bedrag") != pl.col("geleverd_volume") * pl.col("product_tarief"))

Parameters are named after the tables the function needs and get those tables; the first one is the table the check
reports on (its result must hold that table's key columns, or whole rows). A single parameter `tables` gets the dict
of every table; the checked table is then the function's `table` attribute or the leading table name of its name
(`prestaties__...`). The check name is the function name; its rule code is the leading code of the name (TR346) or
a `rule_code` attribute. A function returning a LazyFrame is collected. `prepare`, `suites` and `schemas` are
reserved names, and functions whose name starts with `_` are helpers.
"""
from __future__ import annotations

import inspect

import polars as pl

from synthetic_data.errors import DataError

from . import CheckInfo, CheckRun, code_of, concat_findings, findings_from_rows

RESERVED = {"prepare", "suites", "schemas"}


def check_functions(mod) -> list:
    return [f for n, f in vars(mod).items() if inspect.isfunction(f) and f.__module__ == mod.__name__
            and not n.startswith("_") and n not in RESERVED]


def _table_of(fn, params: list[str], known: list[str]) -> str:
    if getattr(fn, "table", None):
        return fn.table
    if params and params[0] != "tables":
        return params[0]
    for t in sorted(known, key=len, reverse=True):
        if fn.__name__.startswith(t + "__") or fn.__name__ == t:
            return t
    raise DataError(f"check '{fn.__name__}': which table it reports on is not said; allowed: a first parameter "
                    f"named after the table (e.g. prestaties), a name starting with 'TABLE__', or fn.table = 'TABLE'")


def run(mod, tables: dict[str, pl.DataFrame]) -> CheckRun:
    checks, frames = [], []
    for fn in check_functions(mod):
        params = list(inspect.signature(fn).parameters)
        table = _table_of(fn, params, list(tables))
        info = CheckInfo(fn.__name__, table, getattr(fn, "rule_code", None) or code_of(fn.__name__))
        unknown = [p for p in params if p != "tables" and p not in tables]
        if unknown:
            raise DataError(f"check '{fn.__name__}': parameter(s) {', '.join(unknown)} name no table of the dataset; "
                            f"allowed: {', '.join(tables)} or 'tables'")
        try:
            out = fn(**{p: (tables if p == "tables" else tables[p]) for p in params})
            if isinstance(out, pl.LazyFrame):
                out = out.collect()
        except Exception as e:  # a team's check: any error, one line
            raise DataError(f"check '{fn.__name__}' failed: {type(e).__name__}: "
                            f"{(str(e).splitlines() or [''])[0]}") from None
        if not isinstance(out, pl.DataFrame):
            raise DataError(f"check '{fn.__name__}' returned {type(out).__name__}; allowed: a polars DataFrame "
                            f"with the key columns of {table} (or its whole failing rows)")
        checks.append(info)
        frames.append(findings_from_rows(info, out, tables))
    return CheckRun("polars", "", checks, concat_findings(frames))
