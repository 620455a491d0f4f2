"""Assets built from the data dictionary: one asset per generated table, partitioned by gemeente.

Two multi-assets do the work: `reference` (the region's gemeenten, aanbieders and contract products, unpartitioned)
and `administration` (everything else, one run per gemeente partition). The generator computes all tables of a
partition in one pass, so one op yields them all; lineage inside it is declared so the graph reads like the
iJw process. `warehouse` and `report` are region-level views over all partitions.
"""

import dagster as dg
import polars as pl

from synthetic_data import GeneratorConfig
from synthetic_data.dictionary import duplicate_keys, tables as dictionary
from synthetic_data.generate import REFERENCE_TABLES, generate, reference_tables

from .checks import check_results, check_specs
from .settings import Settings
from .storage import markdown_preview
from .warehouse import build_views, write_report

GROUPS = {"reference": "reference", "people": "people", "ground_truth": "ground_truth", "lifecycle": "lifecycle",
          "claims": "claims"}
# Lineage inside the administration op: which tables a table is derived from.
LINEAGE = {
    "trajecten": ["gemeenten", "aanbieders", "producten"],
    "jeugdigen": ["trajecten"],
    "verzoeken": ["trajecten", "jeugdigen"],
    "antwoorden": ["verzoeken", "wijzigingsverzoeken"],
    "wijzigingsverzoeken": ["trajecten"],                     # issue 12: flows (JW317)
    "toewijzingen": ["trajecten", "verzoeken", "wijzigingsverzoeken"],
    "zorgstarts": ["toewijzingen"],
    "zorgstops": ["zorgstarts"],
    "prestaties": ["toewijzingen", "producten"],
    "declaraties": ["prestaties"],
    "declaratie_antwoorden": ["declaraties"],
    "declaratie_antwoord_prestaties": ["declaraties", "prestaties"],    # --- issue 12: claims
}


class GeneratorResource(dg.ConfigurableResource):
    """Which synthetic dataset to build. Defaults come from ZANDBAK_* environment variables (see settings.py)."""

    region: str = "twente"
    years: str = "2024"
    seed: int = 42
    scale: float = 1.0
    data_dir: str = "data"
    fault_profile: str = "realistic"
    fault_seed: int = 7

    def settings(self) -> Settings:
        return Settings(region=self.region, years=self.years, seed=self.seed, scale=self.scale, data_dir=self.data_dir,
                        fault_profile=self.fault_profile, fault_seed=self.fault_seed)

    def config_for(self, region: str | None = None) -> GeneratorConfig:
        return GeneratorConfig(region=region or self.region, years=self.years, seed=self.seed, scale=self.scale)


def column_schema(table: str) -> dg.TableSchema:
    cols = dictionary()[table]["columns"]
    return dg.TableSchema(columns=[
        dg.TableColumn(name, spec[0], description=spec[3] + (f" (iJw {spec[1]})" if spec[1] != "-" else ""))
        for name, spec in cols.items()
    ])


def _out(table: str) -> dg.AssetOut:
    spec = dictionary()[table]
    return dg.AssetOut(
        key=dg.AssetKey(table), description=spec["meaning"], group_name=GROUPS[spec["group"]],
        io_manager_key="parquet", metadata={"dagster/column_schema": column_schema(table), "key": ", ".join(spec["key"])},
        kinds={"polars", "parquet"},
    )


def _key_check(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec("key_unique", asset=table, blocking=True,
                             description=f"No two rows share the key ({', '.join(dictionary()[table]['key'])}).")


def _key_result(table: str, df: pl.DataFrame) -> dg.AssetCheckResult:
    dups = duplicate_keys(table, df)
    return dg.AssetCheckResult(
        asset_key=table, check_name="key_unique", passed=dups.height == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"duplicate_rows": dups.height, "sample": dg.MetadataValue.md(str(dups.head(5)))},
    )


def _topological(tables: list[str]) -> list[str]:
    """Order the tables so each comes after the ones it is derived from (a multi-asset must yield in that order)."""
    done: list[str] = []
    while len(done) < len(tables):
        for t in tables:
            if t not in done and all(d in done or d in REFERENCE_TABLES for d in LINEAGE.get(t, [])):
                done.append(t)
    return done


ADMIN_TABLES = _topological([t for t in dictionary() if t not in REFERENCE_TABLES])


def build_assets(partitions: dg.StaticPartitionsDefinition) -> list:
    @dg.multi_asset(
        name="reference",
        outs={t: _out(t) for t in REFERENCE_TABLES},
        check_specs=[_key_check(t) for t in REFERENCE_TABLES] + check_specs(REFERENCE_TABLES, REFERENCE_TABLES),
        description="Reference tables of the configured region: gemeenten, synthetic aanbieders, contract products.",
    )
    def reference(context: dg.AssetExecutionContext, generator: GeneratorResource):
        tables = reference_tables(generator.config_for())
        for name in REFERENCE_TABLES:
            yield dg.Output(tables[name], output_name=name)
            yield _key_result(name, tables[name])
        yield from check_results(tables, REFERENCE_TABLES, generator.settings().data_docs / "reference")

    @dg.multi_asset(
        name="administration",
        outs={t: _out(t) for t in ADMIN_TABLES},
        deps=[dg.AssetKey(t) for t in REFERENCE_TABLES],
        internal_asset_deps={t: {dg.AssetKey(d) for d in LINEAGE.get(t, [])} for t in ADMIN_TABLES},
        partitions_def=partitions,
        check_specs=[_key_check(t) for t in ADMIN_TABLES] + check_specs(ADMIN_TABLES),
        description="Simulates one gemeente (the partition) and derives its iJw message tables; the iJw rule "
                    "registry runs on them as asset checks (ERROR rules blocking).",
    )
    def administration(context: dg.AssetExecutionContext, generator: GeneratorResource):
        gemeente = context.partition_key
        tables = generate(generator.config_for(region=gemeente))
        context.log.info(f"gemeente {gemeente}: " + ", ".join(f"{t} {tables[t].height:,}" for t in ADMIN_TABLES))
        for name in ADMIN_TABLES:
            yield dg.Output(tables[name], output_name=name)
            yield _key_result(name, tables[name])
        yield from check_results(tables, ADMIN_TABLES, generator.settings().data_docs / gemeente)

    @dg.asset(
        group_name="warehouse", deps=[dg.AssetKey(t) for t in dictionary()] + [dg.AssetKey("check_scorecard")],
        kinds={"duckdb"},
        description="DuckDB warehouse file with one view per table over all its partitions (data/warehouse.duckdb).",
    )
    def warehouse(generator: GeneratorResource) -> dg.MaterializeResult:
        s = generator.settings()
        counts = build_views(s.warehouse, s.lake)
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(s.warehouse)),
            **{f"rows/{t}": n for t, n in counts.items()},
        })

    @dg.asset(group_name="warehouse", deps=[warehouse], kinds={"html"},
              description="One-page HTML report of the region: youth in care, trajecten, toewijzingen, claims per gemeente.")
    def report(generator: GeneratorResource) -> dg.MaterializeResult:
        s = generator.settings()
        year = generator.config_for().year_range[1]
        n = write_report(s.warehouse, s.report, year, f"Jeugdzorg Zandbak: {s.region} {s.years} (seed {s.seed})",
                         lake=s.lake)
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(s.report)), "gemeenten": n})


    @dg.multi_asset(
        name="dirty_administration",
        ins={t: dg.AssetIn(key=t) for t in [*REFERENCE_TABLES, *ADMIN_TABLES]},
        outs={
            **{f"dirty_{t}": dg.AssetOut(
                key=f"dirty_{t}", group_name="dirty", io_manager_key="parquet", kinds={"polars", "parquet"},
                description=f"{t} with labelled faults injected (profile and seed from the generator resource).",
                metadata={"dagster/column_schema": column_schema(t)}) for t in ADMIN_TABLES},
            "ground_truth": dg.AssetOut(
                group_name="dirty", io_manager_key="parquet", kinds={"polars", "parquet"},
                description="One row per injected fault: table, key, column, fault type, rule code, original and dirty "
                            "value, debatable. Hidden from checks and experiments; used to score them."),
            "check_findings": dg.AssetOut(
                group_name="dirty", io_manager_key="parquet", kinds={"polars", "parquet"},
                description="The reference suite's findings on the dirty partition (one row per failing record)."),
        },
        partitions_def=partitions,
        check_specs=check_specs(ADMIN_TABLES, key_prefix="dirty_", blocking=False),
        description="Injects labelled faults into one gemeente's tables and runs the reference suite on them.",
    )
    def dirty_administration(context: dg.AssetExecutionContext, generator: GeneratorResource, **tables):
        from synthetic_data.faults import inject_faults

        from expectations import findings

        gemeente = context.partition_key
        seed = generator.fault_seed * 10_000 + int(gemeente)   # its own fault stream per partition
        dirty_tables, truth = inject_faults(tables, profile=generator.fault_profile, seed=seed)
        for t in ADMIN_TABLES:
            yield dg.Output(dirty_tables[t], output_name=f"dirty_{t}")
        yield dg.Output(truth, output_name="ground_truth", metadata={
            "faults": truth.height, "fault_types": truth["fault_type"].n_unique() if truth.height else 0})
        results = []
        yield from check_results(dirty_tables, ADMIN_TABLES, generator.settings().data_docs / f"dirty_{gemeente}",
                                 key_prefix="dirty_", collect=results)
        f = findings(results)
        yield dg.Output(f, output_name="check_findings", metadata={"findings": f.height})

    @dg.asset(group_name="dirty", ins={"ground_truth": dg.AssetIn(), "check_findings": dg.AssetIn()},
              io_manager_key="parquet", kinds={"polars"},
              description="Precision and recall of the reference suite against the injected faults, per fault type "
                          "and rule code, over all partitions.")
    def check_scorecard(ground_truth: pl.DataFrame, check_findings: pl.DataFrame) -> dg.Output:
        from synthetic_data.faults import score, score_table

        result = score(check_findings, ground_truth)
        table = score_table(result)
        o = result["overall"]
        return dg.Output(table, metadata={
            "precision": o["precision"], "recall": o["recall"], "f1": o["f1"], "tp": o["tp"], "fp": o["fp"],
            "fn": o["fn"], "scores": dg.MetadataValue.md(markdown_preview(table, table.height)),
        })

    return [reference, administration, warehouse, report, dirty_administration, check_scorecard]
