"""Checks as Great Expectations 1.x suites: each expectation is one check.

Suites come from a Python module (`suites()` or `suites(tables)` returning {table: ExpectationSuite}, or suites at
module level whose `meta["table"]` or name says the table) or from suite JSON as GX saves it (one file, or a folder;
the table is `meta["table"]`, else the file name up to its first dot, e.g. `prestaties.json`). An optional
`prepare(tables) -> tables` in the module adds derived columns first (cross-table rules, as the project's own suites
compute them in polars). The check name is `meta["check"]`, else `TABLE.expectation_type(columns)`; its rule code is
`meta["rule_code"]`, else the leading code of the name.

Frames go to GX as pandas with a `_row` column (the row number), passed as `unexpected_index_column_names`, so every
failing row of a row-level expectation maps back to its record key; rows that fail count as flagged even where
`mostly` lets the expectation succeed.

Expectations whose failing rows GX does not report reliably (GX issues #6840, #6813, #3666):
- uniqueness (expect_column_values_to_be_unique, expect_compound_columns_to_be_unique): FALLBACK, the duplicated
  rows (values not all null) are computed in polars, the way GX defines them;
- any expectation with a `row_condition`: REFUSED (GX's index list is missing or wrong on the filtered batch);
- aggregate, table-level expectations (expect_table_row_count_to_be_between, expect_column_mean_to_be_between,
  expect_column_max_to_be_between and every other non-map expectation): REFUSED, a table-level failure names no
  record; write the check as a row-level expectation, an SQL query or a polars function instead;
- a row-level expectation that fails without naming a row (expect_column_values_to_be_of_type and _in_type_list
  judge a typed pandas column as a whole): REFUSED when it fails, so it never passes silently.
A refusal is one line naming the expectation and its table.
"""
from __future__ import annotations

import inspect
import json
import logging
import warnings
from pathlib import Path

import polars as pl

from synthetic_data.errors import DataError

from . import CheckInfo, CheckRun, call_user, code_of, concat_findings, findings_from_row_numbers

ROW = "_row"
FALLBACK = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}


_CTX, _RUNS = [], []


def context():
    """One ephemeral GX context per process (GX wants an active one before any suite is built)."""
    if _CTX:
        return _CTX[0]
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    _CTX.append(ctx)
    return ctx


def _table_of(suite, default: str | None, tables) -> str:
    for t in ((suite.meta or {}).get("table"), default, suite.name, suite.name.split(".")[0]):
        if t in tables:
            return t
    raise DataError(f"GX suite '{suite.name}': which table it checks is not said; allowed: meta={{'table': NAME}}, "
                    f"a suite or file named after the table, with NAME one of {', '.join(tables)}")


def _load_json(path: Path, tables) -> dict:
    import great_expectations as gx

    out = {}
    for f in (sorted(path.glob("*.json")) if path.is_dir() else [path]):
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
            d.pop("id", None)
            exps = d.get("expectations", [])
            suite = gx.ExpectationSuite(name=d.get("name") or d.get("expectation_suite_name") or f.stem,
                                        meta=d.get("meta") or {})
            for e in exps:
                e = dict(e)
                e.pop("id", None)
                etype = e.get("type") or e.get("expectation_type")
                from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

                cfg = ExpectationConfiguration(type=etype, kwargs=e.get("kwargs", {}), meta=e.get("meta") or {})
                suite.add_expectation_configuration(cfg)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{f.name}: not a GX suite JSON: {type(e).__name__}: "
                            f"{(str(e).splitlines() or [''])[0]}") from None
        except Exception as e:  # GX raises its own errors for unknown expectation types
            raise DataError(f"{f.name}: not a GX suite JSON: {type(e).__name__}: "
                            f"{(str(e).splitlines() or [''])[0]}") from None
        out[_table_of(suite, f.name.split(".")[0], tables)] = suite
    return out


def _load_module(mod, tables) -> dict:
    import great_expectations as gx

    if callable(getattr(mod, "suites", None)):
        fn = mod.suites
        got = call_user("suites()", fn, tables) if inspect.signature(fn).parameters else call_user("suites()", fn)
        return {t: s for t, s in dict(got).items() if _table_of(s, t, tables)}
    return {_table_of(v, None, tables): v for k, v in vars(mod).items()
            if not k.startswith("_") and isinstance(v, gx.ExpectationSuite)}


def _columns(kwargs: dict) -> list[str]:
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    return cols + list(kwargs.get("column_list") or [])


def _name(table: str, etype: str, kwargs: dict, meta: dict) -> str:
    return meta.get("check") or f"{table}.{etype}({','.join(_columns(kwargs))})"


def _kind(exp) -> str:
    """row, fallback or the reason it is refused."""
    from great_expectations.expectations.expectation import (ColumnMapExpectation, ColumnPairMapExpectation,
                                                               MulticolumnMapExpectation)

    if exp.expectation_type in FALLBACK:
        return "fallback"
    if getattr(exp, "row_condition", None):
        return ("it has a row_condition, and GX's failing-row ids are missing or wrong on a filtered batch "
                "(GX #6840, #3666)")
    if isinstance(exp, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)):
        return "row"
    return "it is an aggregate, table-level expectation: its failure names no record"


def _fallback_rows(exp, df: pl.DataFrame) -> list[int]:
    cols = _columns(exp.configuration.kwargs)
    notnull = (pl.col(cols[0]).is_not_null() if len(cols) == 1
               else pl.any_horizontal(pl.col(c).is_not_null() for c in cols))
    sub = df.with_row_index(ROW).filter(notnull)
    return sub.filter(pl.struct(cols).is_duplicated())[ROW].to_list()


def run(target, tables: dict[str, pl.DataFrame], validate: bool = True) -> CheckRun:
    """Run the suites on `tables`; validate=False lists the checks (and refuses what cannot be scored) only."""
    import great_expectations as gx

    if isinstance(target, Path):
        suites = _load_json(target, tables)
    else:
        if callable(getattr(target, "prepare", None)):
            tables = {**tables, **call_user("prepare()", target.prepare, dict(tables))}
        suites = _load_module(target, tables)
    if not suites:
        raise DataError("GX: no ExpectationSuite found; allowed: suites() returning {table: ExpectationSuite}, "
                        "module-level suites, or suite JSON files")
    ctx = context()
    _RUNS.append(1)
    source = ctx.data_sources.add_pandas(f"zandbak_byo_{len(_RUNS)}")
    checks, frames = [], []
    for n, (table, suite) in enumerate(suites.items()):
        df = tables[table]
        row_level = gx.ExpectationSuite(name=f"byo_{len(_RUNS)}_{n}_{table}")
        infos = {}
        for i, exp in enumerate(suite.expectations):
            cfg = exp.configuration
            meta = dict(cfg.meta or {})
            info = CheckInfo(_name(table, exp.expectation_type, cfg.kwargs, meta), table,
                             meta.get("rule_code") or code_of(meta.get("check")) or None)
            kind = _kind(exp)
            missing = [c for c in _columns(cfg.kwargs) if c not in df.columns]
            if missing:
                raise DataError(f"GX suite of {table}: {exp.expectation_type} names column(s) {', '.join(missing)} "
                                f"that {table} does not have")
            if kind == "fallback":
                frames.append(findings_from_row_numbers(info, _fallback_rows(exp, df), tables))
            elif kind == "row":
                infos[str(i)] = info
                copy = exp.copy(update={"meta": {**meta, "_zandbak": str(i)}, "id": None})
                row_level.add_expectation(copy)
            else:
                raise DataError(f"GX expectation {exp.expectation_type} on {table} cannot be scored: {kind}; "
                                f"allowed: row-level (column map, column pair, multicolumn) expectations without "
                                f"row_condition, or the same check as SQL or a polars function")
            checks.append(info)
        if not infos or not validate:
            continue
        name = f"byo_{len(_RUNS)}_{n}_{table}"
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        row_level = ctx.suites.add(row_level)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=row_level))
        pdf = df.with_row_index(ROW).to_pandas()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = vd.run(batch_parameters={"dataframe": pdf},
                         result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]})
        for r in res.results:
            info = infos[r.expectation_config.meta["_zandbak"]]
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise DataError(f"GX check '{info.name}' on {table} raised: "
                                f"{(str(r.exception_info.get('exception_message')).splitlines() or [''])[0]}")
            idx = r.result.get("unexpected_index_list")
            if not r.success and not idx:   # e.g. expect_column_values_to_be_of_type on a typed column
                raise DataError(f"GX check '{info.name}' on {table} failed but GX gave no failing rows "
                                f"(unexpected_index_list is empty: it judged the column as a whole); it cannot be "
                                f"mapped to records")
            frames.append(findings_from_row_numbers(info, [int(i[ROW]) for i in idx or []], tables))
    return CheckRun("gx", "", checks, concat_findings(frames))
