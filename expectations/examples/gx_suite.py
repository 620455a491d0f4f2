"""The reference rules as Great Expectations 1.x suites, one per table.

`suites(tables)` returns {table: ExpectationSuite}; it may read reference values from the tables (here the
toewijzing numbers). `prepare(tables)` adds derived columns first, for rules no built-in expectation expresses
(amount = volume x tarief). `meta["check"]` names each check; a leading iJw code in it (TR346) is its rule code.

    zandbak score DIRTY --checks expectations/examples/gx_suite.py
"""
import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl

from expectations.gx_custom import ExpectColumnValuesToBeValidBsn   # the sandbox's elfproef expectation

REDEN_BEEINDIGING = ["02", "20", "31", "32", "33", "34", "35", "36", "37", "38", "39"]   # iJw code list JZ588


def prepare(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    p = tables["prestaties"]
    return {"prestaties": p.with_columns(
        (pl.col("ingediend_bedrag") == pl.col("geleverd_volume") * pl.col("product_tarief")).alias("bedrag_klopt"))}


def suites(tables: dict[str, pl.DataFrame]) -> dict[str, gx.ExpectationSuite]:
    prestaties = gx.ExpectationSuite(name="prestaties")
    prestaties.add_expectation(gxe.ExpectColumnValuesToNotBeNull(
        column="bsn", meta={"check": "CS002_bsn_niet_leeg"}))
    prestaties.add_expectation(ExpectColumnValuesToBeValidBsn(
        column="bsn", meta={"check": "CS002_bsn_elfproef"}))
    prestaties.add_expectation(gxe.ExpectColumnValuesToBeInSet(
        column="bedrag_klopt", value_set=[True], meta={"check": "TR346_bedrag_is_volume_maal_tarief"}))
    prestaties.add_expectation(gxe.ExpectColumnValuesToBeInSet(
        column="toewijzing_nummer", value_set=tables["toewijzingen"]["toewijzing_nummer"].drop_nulls().to_list(),
        meta={"check": "TR338_prestatie_zonder_toewijzing"}))

    zorgstops = gx.ExpectationSuite(name="zorgstops")
    zorgstops.add_expectation(gxe.ExpectColumnValuesToBeInSet(
        column="reden_beeindiging", value_set=REDEN_BEEINDIGING, meta={"check": "JZ588_reden_beeindiging_codelijst"}))

    zorgstarts = gx.ExpectationSuite(name="zorgstarts")
    zorgstarts.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="begindatum", column_B="toewijzing_ingangsdatum", or_equal=True,
        ignore_row_if="either_value_is_missing", meta={"check": "TR019_start_niet_voor_toewijzing"}))
    return {"prestaties": prestaties, "zorgstops": zorgstops, "zorgstarts": zorgstarts}
