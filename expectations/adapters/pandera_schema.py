"""Checks as pandera schemas (polars backend): one DataFrameSchema or DataFrameModel per table.

The module gives `schemas()` (or `schemas(tables)`, for value sets read from reference tables) returning
{table: schema or model}, or defines the models at module level; a model's table is its `Config.name`, else its
class name in lower case. An optional `prepare(tables) -> tables` adds derived columns first (cross-table rules).

Every data check of the schema is one check: `TABLE.COLUMN.CHECK` for column checks (`not_nullable` and `unique`
included) and `TABLE.CHECK` for dataframe checks. Each schema is validated with lazy=True on an *eager* DataFrame:
on a LazyFrame pandera runs only the schema-level checks unless PANDERA_VALIDATION_DEPTH=SCHEMA_AND_DATA, and data
checks would "pass" without running (pandera #1566, #1606). The failure cases' `index` is the row number of the
failing record. A failure without a row (a wrong dtype, a missing column, an aggregate check) cannot be mapped to
records: refused with one line. Where `unique` with lazy=True raises NotImplementedError (some pandera versions,
#2119), uniqueness is computed in polars and the rest of the schema validated without it.
"""
from __future__ import annotations

import inspect

import polars as pl

from synthetic_data.errors import DataError

from . import CheckInfo, CheckRun, call_user, code_of, concat_findings, findings_from_row_numbers


def _table_name(declared: str | None, name: str, tables) -> str:
    """A schema's table: its declared name (Config.name, name=), else its variable or class name, in any case."""
    for t in (declared, (declared or "").lower(), name, name.lower()):
        if t in tables:
            return t
    return declared or name


def _schemas(mod, tables) -> dict:
    import pandera.polars as pa

    if callable(getattr(mod, "schemas", None)):
        fn = mod.schemas
        got = call_user("schemas()", fn, tables) if inspect.signature(fn).parameters else call_user("schemas()", fn)
        items = dict(got)
    else:
        items = {}
        for name, v in vars(mod).items():
            if isinstance(v, type) and issubclass(v, pa.DataFrameModel) and v.__module__ == mod.__name__:
                items[_table_name(getattr(v.Config, "name", None), name, tables)] = v
            elif isinstance(v, pa.DataFrameSchema):
                items[_table_name(v.name, name, tables)] = v
    out = {}
    for table, s in items.items():
        schema = s.to_schema() if isinstance(s, type) else s
        if table not in tables:
            raise DataError(f"pandera schema '{table}' names no table of the dataset; allowed: {', '.join(tables)}")
        out[table] = schema
    return out


def _names(table: str, schema) -> list[tuple[tuple, CheckInfo]]:
    """(failure-case lookup key, check) for every data check of a schema, in schema order. A check named with a
    leading rule code keeps its own name (TR346_...); others are TABLE.COLUMN.CHECK."""
    out = []
    for col_name, col in schema.columns.items():
        code = (col.metadata or {}).get("rule_code")
        for i, ch in enumerate(col.checks):
            n = ch.name or f"check{i}"
            own = n if code_of(n) else f"{table}.{col_name}.{n}"
            out.append((("Column", col_name, i), CheckInfo(own, table, code_of(n) or code)))
        if not col.nullable:
            out.append((("Column", col_name, "not_nullable"),
                        CheckInfo(f"{table}.{col_name}.not_nullable", table, code)))
        if col.unique:
            out.append((("Column", col_name, "field_uniqueness"), CheckInfo(f"{table}.{col_name}.unique", table, code)))
    for i, ch in enumerate(schema.checks):
        n = ch.name or f"check{i}"
        out.append((("DataFrameSchema", None, i), CheckInfo(n if code_of(n) else f"{table}.{n}", table, code_of(n))))
    if schema.unique:
        cols = [schema.unique] if isinstance(schema.unique, str) else list(schema.unique)
        out.append((("DataFrameSchema", None, "multiple_fields_uniqueness"),
                    CheckInfo(f"{table}.unique({','.join(cols)})", table, None)))
    return out


def _validate(schema, df: pl.DataFrame) -> pl.DataFrame | None:
    """pandera's failure cases of one eager validation (None when everything passes)."""
    from pandera.errors import SchemaError, SchemaErrors

    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as e:
        return e.failure_cases
    except SchemaError as e:
        fc = getattr(e, "failure_cases", None)
        return fc if isinstance(fc, pl.DataFrame) else pl.DataFrame({"check": [str(e)]})
    return None


def _without_unique(schema) -> tuple[object, list]:
    """The schema without its uniqueness checks, and those checks as (lookup key, columns) to compute in polars."""
    cols = [c for c, col in schema.columns.items() if col.unique]
    s = schema.update_columns({c: {"unique": False} for c in cols}) if cols else schema
    extra = [(("Column", c, "field_uniqueness"), [c]) for c in cols]
    if schema.unique:
        u = [schema.unique] if isinstance(schema.unique, str) else list(schema.unique)
        import copy

        s = copy.deepcopy(s)
        s.unique = None
        extra.append((("DataFrameSchema", None, "multiple_fields_uniqueness"), u))
    return s, extra


def run(mod, tables: dict[str, pl.DataFrame]) -> CheckRun:
    if callable(getattr(mod, "prepare", None)):
        tables = {**tables, **call_user("prepare()", mod.prepare, dict(tables))}
    checks, frames = [], []
    for table, schema in _schemas(mod, tables).items():
        named = _names(table, schema)
        lookup = dict(named)
        checks += [c for _, c in named]
        df = tables[table]
        rows: dict[str, list] = {}
        try:
            fc = _validate(schema, df)
            fallback = []
        except NotImplementedError:   # `unique` with lazy=True in some pandera versions (#2119)
            stripped, fallback = _without_unique(schema)
            fc = _validate(stripped, df)
        for k, cols in fallback:
            dup = df.with_row_index("_row").filter(pl.struct(cols).is_duplicated() & pl.all_horizontal(
                pl.col(c).is_not_null() for c in cols))["_row"]
            rows.setdefault(lookup[k].name, []).extend(dup.to_list())
        if fc is not None and fc.height:
            for r in fc.iter_rows(named=True):
                ctx, col, num, check = r.get("schema_context"), r.get("column"), r.get("check_number"), r.get("check")
                if ctx == "Column":
                    k = (ctx, col, num if num is not None and check not in ("not_nullable", "field_uniqueness")
                         else check)
                else:
                    k = ("DataFrameSchema", None, num if num is not None else check)
                info = lookup.get(k)
                if info is None or r.get("index") is None:
                    what = f"column {col}: {check}" if ctx == "Column" else f"{check}"
                    raise DataError(f"pandera schema of {table}: '{what}' failed without a failing row (a dtype, a "
                                    f"missing column or an aggregate check): it cannot be mapped to records; allowed: "
                                    f"row-level checks on columns the table has ({', '.join(df.columns[:6])}, ...)")
                rows.setdefault(info.name, []).append(r["index"])
        by_name = {c.name: c for _, c in named}
        frames += [findings_from_row_numbers(by_name[n], idx, tables) for n, idx in rows.items()]
    return CheckRun("pandera", "", checks, concat_findings(frames))
