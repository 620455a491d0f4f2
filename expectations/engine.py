"""Run the rule registry as Great Expectations suites on a dataset and turn the results into findings.

One suite per table for its column rules, and one `<table>.cross` suite per table for the rules computed across
tables. The column rules run as GX's own (or the sandbox's custom) column expectations; the derived rules come from
their one polars implementation (expectations/derived.py `violations`) as a boolean column per row, validated in GX
as in-set [True] (its DuckDB path fails silently and it has no polars input, so frames go in as pandas; measured
with GX 1.24). tests/test_expectations.py checks that GX reports exactly the records `violations` returns
for every rule. Every expectation carries its rule id and code in `meta`; a failing row is mapped back to its table
key through a `_row` index column.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from synthetic_data.dictionary import key as table_key
from synthetic_data.dictionary import schema

from .derived import FINDING_KEYS, FINDINGS_SCHEMA, ROW, as_findings, finding_rows, violations
from .derived import checked_rows
from .registry import Rule, load_rules

__all__ = ["RuleResult", "validate", "findings", "check_inputs", "FINDING_KEYS", "FINDINGS_SCHEMA"]


@dataclass
class RuleResult:
    rule: Rule
    checked: int
    failing: int
    keys: pl.DataFrame          # key columns of the failing rows (at most all of them)
    error: str = ""             # an exception inside GX (reported, never silently passed)

    @property
    def passed(self) -> bool:
        return self.failing == 0 and not self.error

    @property
    def share(self) -> float:
        return self.failing / self.checked if self.checked else 0.0


def _expectation(rule: Rule, gxe, custom):
    """The GX expectation of one registry rule (meta carries the rule id and code)."""
    c = rule.check
    meta = {"rule_id": rule.id, "rule_code": rule.code, "severity": rule.severity, "meaning": rule.meaning}
    if "derived" in c:
        return gxe.ExpectColumnValuesToBeInSet(column=f"ok__{rule.id}", value_set=[True], meta=meta)
    kind = c["expect"]
    if kind == "bsn":
        return custom.ExpectColumnValuesToBeValidBsn(column=c["column"], meta=meta)
    if kind == "agb":
        return custom.ExpectColumnValuesToBeValidAgbCode(column=c["column"], meta=meta)
    if kind == "postcode":
        return custom.ExpectColumnValuesToBeValidDutchPostcode(column=c["column"], meta=meta)
    if kind == "codelist":
        return custom.ExpectColumnValuesToBeInIjwCodelist(column=c["column"], codelist=c["codelist"], meta=meta)
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=c["column"], meta=meta)
    if kind == "unique":
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(c["columns"]), meta=meta)
    if kind == "regex":
        return gxe.ExpectColumnValuesToMatchRegex(column=c["column"], regex=c["pattern"], meta=meta)
    if kind == "a_ge_b":
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=c["a"], column_B=c["b"], or_equal=True,
                                                          ignore_row_if="either_value_is_missing", meta=meta)
    raise ValueError(f"rule {rule.id}: unknown check kind {kind!r}")


def _columns(rule: Rule) -> list[str]:
    c = rule.check
    if "derived" in c:
        return [f"ok__{rule.id}"]
    return [v for k in ("column", "a", "b") if (v := c.get(k))] + list(c.get("columns", []))


def _context(docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        # the ephemeral default site writes to a new temp folder each run: pin it to ours
        ctx.delete_data_docs_site("local_site")
        ctx.add_data_docs_site(site_name="local_site", site_config={
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(docs_dir).resolve())},
        })
    return ctx


def _ok_column(rule: Rule, tables: dict[str, pl.DataFrame]) -> pl.Expr:
    """True for every checked row of the rule's table except those `violations` returns (by `_row`)."""
    bad = violations(rule, tables, row_index=True)[ROW]
    return (~pl.col(ROW).is_in(bad.implode())).alias(f"ok__{rule.id}")


def check_inputs(tables: dict[str, pl.DataFrame], rules: list[Rule]) -> None:
    """Unusable input gets a clear error before any validation: missing table, missing column, wrong type."""
    from synthetic_data.errors import DataError

    for name in sorted({r.table for r in rules} | {u for r in rules for u in r.uses}):
        if name not in tables:
            raise DataError(f"{name}: missing table; allowed: a dataset folder with every table of 'zandbak generate'")
        df = tables[name]
        for col, typ in schema(name).items():
            if col not in df.columns:
                raise DataError(f"{name}.{col}: missing column; expected type {typ}")
            if df.schema[col] != typ and df.schema[col] != pl.Null:
                raise DataError(f"{name}.{col}: type {df.schema[col]} is not allowed; expected {typ}")


def validate(tables: dict[str, pl.DataFrame], rules: list[Rule] | None = None,
             docs_dir: str | Path | None = None, max_keys: int | None = None) -> list[RuleResult]:
    """Validate `tables` against the registry; returns one RuleResult per rule (in registry order)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from . import gx_custom as custom

    rules = load_rules() if rules is None else rules
    check_inputs(tables, rules)
    ctx = _context(Path(docs_dir) if docs_dir else None)
    source = ctx.data_sources.add_pandas("zandbak")
    by_id: dict[str, RuleResult] = {}
    for table in sorted({r.table for r in rules}):
        df = checked_rows(tables, table)    # of prestaties the accepted lines only, as `violations` checks them
        mine = [r for r in rules if r.table == table]
        for suffix, group in (("", [r for r in mine if "derived" not in r.check]),
                              (".cross", [r for r in mine if "derived" in r.check])):
            if not group:
                continue
            name = table + suffix
            frame = df.select(ROW, *sorted({c for r in group if "derived" not in r.check for c in _columns(r)}))
            if suffix:
                frame = frame.with_columns(_ok_column(r, tables) for r in group)
            pdf = frame.to_pandas()
            batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
            suite = ctx.suites.add(gx.ExpectationSuite(name, meta={"table": table}))
            for r in group:
                suite.add_expectation(_expectation(r, gxe, custom))
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
            cp = ctx.checkpoints.add(gx.Checkpoint(
                name=f"check {name}", validation_definitions=[vd], actions=[],
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]}))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = cp.run(batch_parameters={"dataframe": pdf})
            for res in next(iter(run.run_results.values())).results:
                rid = res.expectation_config.meta["rule_id"]
                rule = next(r for r in group if r.id == rid)
                error = ""
                if res.exception_info and res.exception_info.get("raised_exception"):
                    error = str(res.exception_info.get("exception_message", "GX raised an exception"))
                rows = sorted({int(i[ROW]) for i in (res.result.get("unexpected_index_list") or [])})
                keys = df.select(ROW, *table_key(table)).filter(pl.col(ROW).is_in(rows)).drop(ROW)
                if max_keys is not None:
                    keys = keys.head(max_keys)
                by_id[rid] = RuleResult(rule, df.height, len(rows), keys, error)
    if docs_dir is not None:
        ctx.build_data_docs(site_names=["local_site"])
    return [by_id[r.id] for r in rules]


def findings(results: list[RuleResult]) -> pl.DataFrame:
    """One row per failing record: table, rule, severity and the record's key columns (as text)."""
    frames = [finding_rows(res.rule, res.keys) for res in results if res.keys.height]
    return as_findings(frames)
