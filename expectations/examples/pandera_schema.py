"""The reference rules as pandera schemas (polars backend), one per table.

`schemas(tables)` returns {table: DataFrameSchema or DataFrameModel}; it may read reference values from the tables
(here the toewijzing numbers). Only the columns the rules need are listed (the schemas are not strict). A check's
`name` (or a column's `metadata={"rule_code": ...}`) carries its iJw rule code.

    zandbak score DIRTY --checks expectations/examples/pandera_schema.py
"""
import pandera.polars as pa
import polars as pl

REDEN_BEEINDIGING = ["02", "20", "31", "32", "33", "34", "35", "36", "37", "38", "39"]   # iJw code list JZ588


def _elfproef(data: pa.PolarsData) -> pl.LazyFrame:
    bsn = pl.col(data.key)
    total = sum(bsn.str.slice(i, 1).cast(pl.Int64, strict=False) * w for i, w in enumerate(range(9, 1, -1)))
    total = total - bsn.str.slice(8, 1).cast(pl.Int64, strict=False)
    ok = bsn.str.contains(r"^\d{9}$") & (total % 11 == 0) & (total > 0)
    return data.lazyframe.select(ok.fill_null(True))   # a null BSN is the not-null check's business


def _bedrag_klopt(data: pa.PolarsData) -> pl.LazyFrame:
    ok = pl.col("ingediend_bedrag") == pl.col("geleverd_volume") * pl.col("product_tarief")
    return data.lazyframe.select(ok.fill_null(True))


def _start_na_toewijzing(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select((pl.col("begindatum") >= pl.col("toewijzing_ingangsdatum")).fill_null(True))


def schemas(tables: dict[str, pl.DataFrame]) -> dict[str, pa.DataFrameSchema]:
    nummers = tables["toewijzingen"]["toewijzing_nummer"].drop_nulls().to_list()
    prestaties = pa.DataFrameSchema({
        "bsn": pa.Column(str, pa.Check(_elfproef, name="CS002_bsn_elfproef"), nullable=False,
                         metadata={"rule_code": "CS002"}),
        "toewijzing_nummer": pa.Column(int, pa.Check.isin(nummers, name="TR338_prestatie_zonder_toewijzing"),
                                       nullable=True),
    }, checks=[pa.Check(_bedrag_klopt, name="TR346_bedrag_is_volume_maal_tarief")], name="prestaties")
    zorgstops = pa.DataFrameSchema({
        "reden_beeindiging": pa.Column(str, pa.Check.isin(REDEN_BEEINDIGING, name="JZ588_reden_beeindiging_codelijst"),
                                       nullable=True),
    }, name="zorgstops")
    zorgstarts = pa.DataFrameSchema(checks=[pa.Check(_start_na_toewijzing, name="TR019_start_niet_voor_toewijzing")],
                                    name="zorgstarts")
    return {"prestaties": prestaties, "zorgstops": zorgstops, "zorgstarts": zorgstarts}
