"""Task zorgvraag_forecast: forecast new toewijzingen per gemeente, productcategorie and month.

A new toewijzing is a JW301 with versie 1, counted in the month of its ingangsdatum. The simulation generates the
whole range (default 2021-2024) from its trajecten; the experiment sees only what the gemeente knew at the cutoff
(default 2024-06-30) and forecasts the `horizon` months after it (default 6: July-December 2024).

Hands over: gemeenten, aanbieders, producten; `toewijzingen` decided up to the cutoff (toewijzingsdatum <= cutoff:
a few already start after it, as the gemeente would know); `verzoeken` sent up to the cutoff; `history`
(gemeente_code, product_categorie, maand, aantal): the monthly counts from the first generated month to the cutoff
month, zeros included, for every gemeente x categorie with at least one new toewijzing in that period; `to_predict`:
those series x the forecast months. Hidden: everything after the cutoff, and the trajecten.

Predictions: `to_predict` with a column `aantal` (float, >= 0).

Score (leaderboard `score` = 1 - MASE, higher is better):
- MASE: per series the mean absolute error over the forecast months divided by the in-sample mean absolute error of
  the seasonal-naive forecast (each month predicted by the same month a year before, over the history); the mean over
  series. Series whose in-sample error is 0 (a flat history) are left out and counted in `series_without_scale`.
- MAPE (%): mean of |forecast - actual| / actual over the rows with actual > 0; rows with actual 0 are skipped
  (counted in `rows_zero_actual`).
- The seasonal-naive forecast (the same month a year before) is scored the same way: `baseline_mase`,
  `baseline_mape`; an experiment with MASE below `baseline_mase` beats it.
- Ceiling: the forecast the simulation itself would make. Its expected count per series and month (`expected`: its
  start rates, seasonality, care and decision model, estimated in the same simulated world from the supported years
  outside the task's own, synthetic_data.ceilings) gives the Poisson median (`ceiling` column of the truth), the
  point forecast with the least expected absolute error; it is scored the same way: `ceiling` (1 - MASE),
  `ceiling_mase`, `ceiling_mape`. What remains is the noise of the counts, which no forecast can predict. It comes
  from the simulation's internals and is sealed with the truth.
"""
from __future__ import annotations

import datetime as dt

import polars as pl

from synthetic_data import GeneratorConfig, generate
from synthetic_data.ceilings import expected_new_toewijzingen, poisson_median

from ..errors import ExperimentError, PredictionError
from ._common import TaskData, check_columns, check_rows, clean, ratio, task_data

NAME = "zorgvraag_forecast"
DESCRIPTION = "Forecast new toewijzingen per gemeente, productcategorie and month for the six months after a cutoff"
SCORE = "1 - MASE (MASE scaled by the in-sample seasonal-naive error; higher is better)"
SERIES = ["gemeente_code", "product_categorie"]
KEY = [*SERIES, "maand"]
PREDICTION_SCHEMA = {"gemeente_code": pl.String, "product_categorie": pl.String, "maand": pl.Date,
                     "aantal": pl.Float64}
SEASON = 12
DEFAULTS = {"region": "twente", "years": "2021-2024", "scale": 1.0, "cutoff": "2024-06-30", "horizon": 6}
HANDED_OVER = ("gemeenten", "aanbieders", "producten", "toewijzingen", "verzoeken", "history", "to_predict")
# The body of the function `zandbak experiment new` writes: a working start, ready to be improved.
STARTER = '''\
    """Forecast `aantal` new toewijzingen for every series and month of to_predict."""
    history = tables["history"]
    # Start: the mean of the last three months per gemeente and productcategorie.
    recent = history.filter(pl.col("maand") >= pl.col("maand").max().dt.offset_by("-2mo")).group_by(
        "gemeente_code", "product_categorie").agg(pl.col("aantal").mean().alias("aantal"))
    return tables["to_predict"].join(recent, on=["gemeente_code", "product_categorie"], how="left").with_columns(
        pl.col("aantal").fill_null(0.0).cast(pl.Float64))
'''


def _months(first: dt.date, last: dt.date) -> pl.Series:
    return pl.date_range(first, last, "1mo", eager=True).alias("maand")


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, 1)


def monthly_counts(toewijzingen: pl.DataFrame, series: pl.DataFrame, months: pl.Series) -> pl.DataFrame:
    """New toewijzingen (versie 1) per series and ingangsdatum month, zeros filled, for the given series x months."""
    counts = toewijzingen.filter(pl.col("versie") == 1).group_by(
        *SERIES, pl.col("ingangsdatum").dt.truncate("1mo").alias("maand")).agg(pl.len().cast(pl.Int64).alias("aantal"))
    grid = series.join(months.to_frame(), how="cross")
    return grid.join(counts, on=KEY, how="left").with_columns(pl.col("aantal").fill_null(0)).sort(KEY)


def prepare(seed: int = 42, fault_seed: int | None = None, region: str = DEFAULTS["region"], years: str = DEFAULTS["years"],
            scale: float = DEFAULTS["scale"], cutoff: str | dt.date = DEFAULTS["cutoff"],
            horizon: int = DEFAULTS["horizon"]) -> TaskData:
    config = GeneratorConfig(region=region, years=years, seed=seed, scale=scale)
    first_year, last_year = config.year_range
    cut = cutoff if isinstance(cutoff, dt.date) else dt.date.fromisoformat(str(cutoff))
    horizon = int(horizon)
    start = dt.date(first_year, 1, 1)
    cut_month = cut.replace(day=1)
    if (cut + dt.timedelta(days=1)).day != 1:
        raise ExperimentError(f"cutoff {cut}: not the last day of a month; allowed: a month end such as 2024-06-30")
    if not 1 <= horizon <= SEASON:
        raise ExperimentError(f"horizon {horizon}: not allowed; allowed: 1 to {SEASON} months")
    history_months = _months(start, cut_month)
    future = _months(cut + dt.timedelta(days=1), _add_months(cut + dt.timedelta(days=1), horizon - 1))
    if history_months.len() < SEASON + 1:
        raise ExperimentError(f"cutoff {cut}: only {history_months.len()} months of history from {start}; "
                              f"allowed: at least {SEASON + 1} (a year for the seasonal-naive scale)")
    if future[-1].year > last_year:
        raise ExperimentError(f"cutoff {cut} + {horizon} months runs past the generated years {years}; "
                              f"allowed: a cutoff at least {horizon} months before the end of {last_year}")

    t = generate(config)
    tw = t["toewijzingen"]
    known = tw.filter(pl.col("toewijzingsdatum") <= cut)
    in_history = pl.col("ingangsdatum").is_between(start, cut)
    series = known.filter((pl.col("versie") == 1) & in_history).select(SERIES).unique().sort(SERIES)
    history = monthly_counts(known.filter(in_history), series, history_months)
    inputs = {
        "gemeenten": t["gemeenten"], "aanbieders": t["aanbieders"], "producten": t["producten"],
        "toewijzingen": known, "verzoeken": t["verzoeken"].filter(pl.col("dagtekening") <= cut),
        "history": history,
        "to_predict": series.join(future.to_frame(), how="cross").sort(KEY),
    }
    # the truth uses the simulation's full record (also toewijzingen of the history decided after the cutoff)
    actual_history = monthly_counts(tw.filter(in_history), series, history_months)
    truth = build_truth(actual_history, monthly_counts(tw, series, future))
    # the ceiling: the simulation's own expectation for each held-out month (its internals; sealed with the truth)
    truth = truth.with_columns(pl.col("maand").dt.month().alias("month")).join(
        expected_new_toewijzingen(config), on=[*SERIES, "month"], how="left", maintain_order="left").with_columns(
        pl.col("expected").fill_null(0.0)).with_columns(poisson_median(pl.col("expected")).alias("ceiling")).drop("month")
    params = {**config.as_dict(), "cutoff": cut.isoformat(), "horizon": horizon}
    params.pop("seed")
    return task_data(NAME, seed, params, inputs, truth)


def build_truth(history: pl.DataFrame, actual: pl.DataFrame) -> pl.DataFrame:
    """The held-out months with the seasonal-naive forecast (`naive`) and each series' in-sample scale (`scale`)."""
    h = history.sort(KEY).with_columns(pl.col("aantal").shift(SEASON).over(SERIES).alias("_lag"))
    scale = h.filter(pl.col("_lag").is_not_null()).group_by(SERIES).agg(
        (pl.col("aantal") - pl.col("_lag")).abs().mean().cast(pl.Float64).alias("scale"))
    naive = history.select(*SERIES, pl.col("maand").dt.offset_by(f"{SEASON}mo"),
                           pl.col("aantal").cast(pl.Float64).alias("naive"))
    return actual.join(naive, on=KEY, how="left").join(scale, on=SERIES, how="left").sort(KEY)


def validate_predictions(df) -> pl.DataFrame:
    df = check_columns(NAME, df, PREDICTION_SCHEMA)
    bad = df.filter(~pl.col("aantal").is_finite() | (pl.col("aantal") < 0))
    if bad.height:
        raise PredictionError(f"{NAME}: column 'aantal' has value {bad['aantal'][0]} ({bad.height} rows); "
                              f"allowed: a finite number >= 0")
    return df


def _errors(j: pl.DataFrame, forecast: str) -> dict:
    j = j.with_columns((pl.col(forecast) - pl.col("aantal")).abs().alias("_err"))
    pos = j.filter(pl.col("aantal") > 0)
    mape = float((pos["_err"] / pos["aantal"]).mean() * 100) if pos.height else None
    per_series = j.group_by(SERIES).agg(pl.col("_err").mean().alias("mae"), pl.col("scale").first())
    scaled = per_series.filter(pl.col("scale") > 0)
    mase = float((scaled["mae"] / scaled["scale"]).mean()) if scaled.height else None
    return {"mase": clean(mase), "mape": clean(mape), "mae": clean(float(j["_err"].mean())) if j.height else None}


def score(predictions, truth: pl.DataFrame) -> dict:
    pred = validate_predictions(predictions)
    check_rows(NAME, pred, truth, KEY)
    j = truth.join(pred.rename({"aantal": "forecast"}), on=KEY, how="left")
    mine, base = _errors(j, "forecast"), _errors(j, "naive")
    ceiling = _errors(j, "ceiling") if "ceiling" in j.columns else None
    series = j.select(SERIES).unique().height
    return {
        "score": None if mine["mase"] is None else 1 - mine["mase"],
        **mine,
        "baseline_mase": base["mase"], "baseline_mape": base["mape"], "baseline_mae": base["mae"],
        **({} if ceiling is None else {
            "ceiling": None if ceiling["mase"] is None else 1 - ceiling["mase"], "ceiling_mase": ceiling["mase"],
            "ceiling_mape": ceiling["mape"], "ceiling_mae": ceiling["mae"]}),
        "rows": j.height, "rows_zero_actual": j.filter(pl.col("aantal") == 0).height,
        "series": series, "series_without_scale": j.filter(~(pl.col("scale") > 0)).select(SERIES).unique().height,
        "actual_total": int(j["aantal"].sum()), "forecast_total": float(j["forecast"].sum()),
        "relative_total_error": ratio(float(j["forecast"].sum()) - int(j["aantal"].sum()), int(j["aantal"].sum())),
    }
