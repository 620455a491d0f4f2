"""Run a team's own checks, written in any of four formats, and return one finding per failing record.

    from expectations.adapters import run_checks
    run = run_checks("my_checks/", tables)      # tables: {table name: polars DataFrame}
    run.findings                                # table, check, rule_code, key (+ the key columns)
    run.checks                                  # every check, with the table it checks (also those that never fire)

PATH is one of (detected in this order):
- a folder of `.sql` files, or one `.sql` file: DuckDB queries over the tables (sql_folder.py);
- a GX 1.x suite as JSON, or a folder of them (gx_suite.py);
- a Python module (.py) that builds GX `ExpectationSuite`s (`suites()`/`suites(tables)` or module-level suites)
  (gx_suite.py), or pandera schemas / DataFrameModels (`schemas()` or module-level ones) (pandera_schema.py), or
  plain functions `tables -> failing rows` (polars_module.py).
One module per format, each behind `run(path, tables) -> CheckRun`, the way pandera keeps one backend per frame
library. Every user error (unknown kind, a failing query, a check without key columns, a GX expectation whose failing
rows cannot be mapped to records) is a DataError: one line, no traceback.
"""
from __future__ import annotations

import importlib.util
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from synthetic_data.dictionary import key as table_key
from synthetic_data.ijw import key_expr
from synthetic_data.errors import DataError

FINDINGS_SCHEMA = {"table": pl.String, "check": pl.String, "rule_code": pl.String, "key": pl.String}
_CODE = re.compile(r"^([A-Z]{2,}[0-9]+[a-z0-9]*)(?:[_\-. ]|$)")


@dataclass
class CheckInfo:
    name: str
    table: str
    rule_code: str | None = None


@dataclass
class CheckRun:
    kind: str                              # gx, sql, pandera or polars
    path: str
    checks: list[CheckInfo]
    findings: pl.DataFrame                 # FINDINGS_SCHEMA: one row per (check, failing record)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[str]:
        """The tables the checks cover, in first-seen order."""
        return list(dict.fromkeys(c.table for c in self.checks))

    def checks_frame(self) -> pl.DataFrame:
        return pl.DataFrame([{"check": c.name, "table": c.table, "rule_code": c.rule_code} for c in self.checks],
                            schema={"check": pl.String, "table": pl.String, "rule_code": pl.String})


def code_of(name: str | None) -> str | None:
    """The leading iJw rule code of a check name: "TR346_bedrag" -> TR346; None when it has none."""
    m = _CODE.match(name or "")
    return m.group(1) if m else None


def empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)




def findings_from_rows(check: CheckInfo, rows: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Findings of one check from the failing rows it returned: the table's key columns, or whole rows."""
    if check.table not in tables:
        raise DataError(f"check '{check.name}': table '{check.table}' is not in the dataset; allowed: "
                        f"{', '.join(tables)}")
    cols = table_key(check.table)
    missing = [c for c in cols if c not in rows.columns]
    if missing:
        raise DataError(f"check '{check.name}' returned no key columns {', '.join(missing)} of {check.table} "
                        f"(it returned: {', '.join(rows.columns) or 'no columns'}); allowed: a frame with the key "
                        f"columns {', '.join(cols)} or whole rows of {check.table}")
    sch = tables[check.table].schema
    try:
        keys = rows.select(pl.col(c).cast(sch[c]) for c in cols)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"check '{check.name}': its key columns do not fit {check.table}'s types: "
                        f"{str(e).splitlines()[0]}") from None
    return keys.select(pl.lit(check.table).alias("table"), pl.lit(check.name).alias("check"),
                       pl.lit(check.rule_code, pl.String).alias("rule_code"),
                       key_expr(check.table).alias("key")).filter(pl.col("key").is_not_null()).unique(
        maintain_order=True)


def findings_from_row_numbers(check: CheckInfo, rows: list[int] | pl.Series,
                              tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Findings of one check from the row numbers (0-based) of its failing rows in tables[check.table]."""
    idx = pl.Series("_row", rows, dtype=pl.Int64).unique().sort()
    return findings_from_rows(check, tables[check.table][idx], tables)


def concat_findings(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([empty_findings(), *frames]) if frames else empty_findings()


def call_user(what: str, fn, *args):
    """Call a team's function; any error inside it is one line."""
    try:
        return fn(*args)
    except DataError:
        raise
    except Exception as e:  # a team's code: any error, one line
        raise DataError(f"{what} failed: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}") from None


def import_module(path: Path):
    """Import a team's Python file under a private name; an error inside it is one line."""
    name = f"_zandbak_checks_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DataError(f"{path}: cannot be imported as a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # a team's module: any error, one line
        sys.modules.pop(name, None)
        raise DataError(f"{path}: importing it failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        ) from None
    return mod


def _from(cls: type, package: str) -> bool:
    """Whether a class or one of its bases comes from `package` (looked up without importing the package)."""
    return any(c.__module__.split(".")[0] == package for c in cls.__mro__)


def _is_gx_suite(v) -> bool:
    return type(v).__name__ == "ExpectationSuite" and _from(type(v), "great_expectations")


def _is_pandera_schema(v, mod) -> bool:
    if isinstance(v, type):      # a DataFrameModel defined in the team's module (not one it imported)
        return v.__module__ == mod.__name__ and _from(v, "pandera")
    return type(v).__name__ == "DataFrameSchema" and _from(type(v), "pandera")


def detect(path: str | Path) -> tuple[str, object]:
    """(kind, what to run): the format of a checks PATH, as the module docstring lists."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"--checks: '{p}' does not exist; allowed: a folder of .sql files, a GX suite (.py or .json), "
                        f"a pandera schema module (.py) or a module of polars check functions (.py)")
    if p.is_dir():
        if any(p.glob("*.sql")):
            return "sql", p
        if any(p.glob("*.json")):
            return "gx", p
        raise DataError(f"--checks: folder '{p}' holds no .sql or .json files; allowed: a folder of .sql files "
                        f"(DuckDB queries) or of GX suite JSON files")
    suffix = p.suffix.lower()
    if suffix == ".sql":
        return "sql", p
    if suffix == ".json":
        return "gx", p
    if suffix != ".py":
        raise DataError(f"--checks: '{p.name}' is of unknown kind '{p.suffix}'; allowed: a folder of .sql files, "
                        f"a .sql, a GX suite .json, or a .py module (GX suites, pandera schemas or polars functions)")
    if "great_expectations" in p.read_text(encoding="utf-8", errors="replace"):
        from .gx_suite import context   # GX needs an active context before a suite can be built, even at import

        context()
    mod = import_module(p)
    values = [v for k, v in vars(mod).items() if not k.startswith("_")]
    if callable(getattr(mod, "suites", None)) or any(_is_gx_suite(v) for v in values):
        return "gx", mod
    if callable(getattr(mod, "schemas", None)) or any(_is_pandera_schema(v, mod) for v in values):
        return "pandera", mod
    from .polars_module import check_functions

    if check_functions(mod):
        return "polars", mod
    raise DataError(f"--checks: '{p.name}' defines no checks; allowed: a function suites() returning GX "
                    f"ExpectationSuites, a function schemas() or pandera DataFrameModels, or plain functions "
                    f"taking tables and returning failing rows")


def run_checks(path: str | Path, tables: dict[str, pl.DataFrame]) -> CheckRun:
    """Run the checks at `path` on `tables` and return every failing record as a finding (see the module doc)."""
    kind, target = detect(path)
    t0 = time.perf_counter()
    if kind == "sql":
        from .sql_folder import run
    elif kind == "gx":
        from .gx_suite import run
    elif kind == "pandera":
        from .pandera_schema import run
    else:
        from .polars_module import run
    out = run(target, tables)
    out.kind, out.path, out.seconds = kind, str(path), time.perf_counter() - t0
    return out


def describe(path: str | Path) -> CheckRun:
    """The checks at `path` and the tables they cover, without data: run on empty frames of every dictionary table
    (GX suites are only built, not validated). Refuses what `run_checks` would refuse for the suite's shape."""
    from synthetic_data.dictionary import schema, table_names

    empty = {t: pl.DataFrame(schema=schema(t)) for t in table_names()}
    kind, target = detect(path)
    if kind == "gx":
        from .gx_suite import run as gx_run

        out = gx_run(target, empty, validate=False)
        out.kind, out.path = kind, str(path)
        return out
    return run_checks(path, empty)


__all__ = ["CheckInfo", "CheckRun", "code_of", "describe", "detect", "run_checks"]
