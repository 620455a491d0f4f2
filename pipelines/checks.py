"""The factory that turns the rule registry into Dagster asset checks (one check per rule on its table's asset).

Checks run inside the op that produced the partition's tables, right after they are yielded: every rule sees the
same partition (cross-table rules need the partition's other tables), GX starts once per run, and the checks are
partition-aware without Dagster's preview API for partitioned checks. ERROR rules are blocking. A failing check
shows a sample of the records its rule's polars implementation (`expectations.violations`) reports, with the values
that broke it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import dagster as dg
import polars as pl

from expectations import load_rules, validate, violations
from expectations.data_docs import write_index

from .storage import markdown_preview


def rules_on(tables: list[str], available: list[str] | None = None):
    """Registry rules whose reported table is in `tables` and whose other tables are `available` (default: all)."""
    avail = set(available) if available is not None else None
    return [r for r in load_rules()
            if r.table in tables and (avail is None or {r.table, *r.uses} <= avail)]


def check_specs(tables: list[str], available: list[str] | None = None, key_prefix: str = "",
                blocking: bool = True) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(r.id, asset=key_prefix + r.table, blocking=blocking and r.severity == "ERROR",
                          description=f"{r.code} ({r.severity}): {r.meaning}")
        for r in rules_on(tables, available)
    ]


def check_results(tables: dict[str, pl.DataFrame], on: list[str], docs_dir: Path | None,
                  key_prefix: str = "", collect: list | None = None) -> Iterator[dg.AssetCheckResult]:
    """Validate and yield one AssetCheckResult per rule; `collect` receives the full RuleResults (all failing keys)."""
    rules = rules_on(on, list(tables))
    # the partition's site in docs_dir, its vendored assets shared by all sites of the run (one folder up)
    results = validate(tables, rules, docs_dir=docs_dir, max_keys=None if collect is not None else 10,
                       docs_assets=docs_dir.parent if docs_dir else None)
    if collect is not None:
        collect.extend(results)
    docs = {}
    if docs_dir:
        write_index(docs_dir.parent)     # the report rewrites it once more after all partitions
        # file:// URLs: the UI shows them as links that open the offline pages (no server to keep running)
        docs = {"data_docs": dg.MetadataValue.url((docs_dir / "index.html").resolve().as_uri()),
                "data_docs_index": dg.MetadataValue.url((docs_dir.parent / "index.html").resolve().as_uri())}
    for res in results:
        r = res.rule
        sample = violations(r, tables).head(10) if res.failing else None
        yield dg.AssetCheckResult(
            asset_key=key_prefix + r.table, check_name=r.id, passed=res.passed,
            severity=dg.AssetCheckSeverity.ERROR if r.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
            metadata={
                "rule_code": r.code, "failing": res.failing, "failing_share": round(res.share, 6),
                "checked": res.checked,
                "sample_failing_keys": dg.MetadataValue.md(markdown_preview(res.keys, 10) if res.keys.height else "none"),
                **({"sample_violations": dg.MetadataValue.md(markdown_preview(sample, 10))} if sample is not None else {}),
                **({"error": res.error} if res.error else {}), **docs,
            },
        )
