"""A suite with a false alarm: the amount rule, plus a volume cap that is too tight.

`CD087_volume_tussen_1_en_600` catches the volume faults (0 or negative), but it also fires on clean prestaties with
a large monthly volume (e.g. minutes of ambulant care): the scorecard lists it under false alarms and the suite loses
precision.

    zandbak score DIRTY --checks expectations/examples/gx_false_alarm.py
"""
import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl


def prepare(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    p = tables["prestaties"]
    return {"prestaties": p.with_columns(
        (pl.col("ingediend_bedrag") == pl.col("geleverd_volume") * pl.col("product_tarief")).alias("bedrag_klopt"))}


def suites() -> dict[str, gx.ExpectationSuite]:
    s = gx.ExpectationSuite(name="prestaties")
    s.add_expectation(gxe.ExpectColumnValuesToBeInSet(
        column="bedrag_klopt", value_set=[True], meta={"check": "TR346_bedrag_is_volume_maal_tarief"}))
    s.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="geleverd_volume", min_value=1, max_value=600, meta={"check": "CD087_volume_tussen_1_en_600"}))
    return {"prestaties": s}
