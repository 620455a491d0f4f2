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
from .warehouse import build_views, write_report

GROUPS = {"reference": "reference", "people": "people", "ground_truth": "ground_truth", "lifecycle": "lifecycle",
          "claims": "claims"}
# Lineage inside the administration op: which tables a table is derived from.
LINEAGE = {
    "trajecten": ["gemeenten", "aanbieders", "producten"],
    "jeugdigen": ["trajecten"],
    "verzoeken": ["trajecten", "jeugdigen"],
    "antwoorden": ["verzoeken"],
    "toewijzingen": ["trajecten", "verzoeken"],
    "zorgstarts": ["toewijzingen"],
    "zorgstops": ["zorgstarts"],
    "prestaties": ["toewijzingen", "producten"],
    "declaraties": ["prestaties"],
    "declaratie_antwoorden": ["declaraties"],
}


class GeneratorResource(dg.ConfigurableResource):
    """Which synthetic dataset to build. Defaults come from ZANDBAK_* environment variables (see settings.py)."""

    region: str = "twente"
    years: str = "2024"
    seed: int = 42
    scale: float = 1.0
    data_dir: str = "data"

    def settings(self) -> Settings:
        return Settings(region=self.region, years=self.years, seed=self.seed, scale=self.scale, data_dir=self.data_dir)

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
        group_name="warehouse", deps=[dg.AssetKey(t) for t in dictionary()], kinds={"duckdb"},
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
        n = write_report(s.warehouse, s.report, year, f"Jeugdzorg Zandbak: {s.region} {s.years} (seed {s.seed})")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(s.report)), "gemeenten": n})

    return [reference, administration, warehouse, report]
