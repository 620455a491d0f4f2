"""Reference for zorgvraag_forecast: each series' mean over the last twelve months, for every forecast month.

A deliberately plain statistic. The scorer also reports the seasonal-naive forecast (the same month a year before)
as `baseline_mase` / `baseline_mape`; with small monthly counts the twelve-month mean is steadier than that.
"""
import polars as pl

from experiments import experiment

SERIES = ["gemeente_code", "product_categorie"]


@experiment(name="forecast_jaargemiddelde", task="zorgvraag_forecast",
            description="Mean of the last twelve months per gemeente and productcategorie")
def forecast_jaargemiddelde(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    history = tables["history"]
    recent = history.filter(pl.col("maand") > pl.col("maand").max().dt.offset_by("-12mo")).group_by(SERIES).agg(
        pl.col("aantal").mean().alias("aantal"))
    return tables["to_predict"].join(recent, on=SERIES, how="left", maintain_order="left").with_columns(
        pl.col("aantal").fill_null(0.0).cast(pl.Float64))
