"""What the simulation itself expects, for the experiment tasks' ceilings (simulation internals, never handed out).

The decision model's own probabilities per JW315 are in synthetic_data.decisions (`request_probabilities`); this
module gives the expected number of new toewijzingen per gemeente, productcategorie and calendar month.
"""
from __future__ import annotations

import dataclasses

import polars as pl

from .config import _years_bounds
from .reference import producten_catalogus

MIN_SAMPLE_YEARS = 4


def sample_years(first: int, last: int) -> list[int]:
    """The simulated years that estimate the expectation: the supported years (after the burn-in) outside the years
    a task generates, so neither its history nor its truth is part of the estimate."""
    lo, hi = _years_bounds()
    years = [y for y in range(lo, hi + 1) if not first <= y <= last]
    if len(years) < MIN_SAMPLE_YEARS:    # a range up to the model's last year: the years before `last` as well
        years += [y for y in range(max(first, lo), last)]
    return sorted(years)


def expected_new_toewijzingen(config) -> pl.DataFrame:
    """gemeente_code, product_categorie, month (1-12), expected: the mean number of new toewijzingen (granted iJw
    trajectories by start month) per calendar month in the simulation of `config`'s own world (its seed, region and
    scale: the same aanbieders, contracts and decision model), over the years of `sample_years`. Every year has the
    same start rates and seasonality and its own random streams, so the mean over those years estimates the
    simulation's expected value for any year; its Monte Carlo error is about sqrt(expected / years)."""
    from .generate import simulate

    first, last = config.year_range
    years = sample_years(first, last)
    t = simulate(dataclasses.replace(config, years=f"{years[0]}-{years[-1]}"))
    cat = producten_catalogus().select(pl.col("product_index").cast(pl.Int64).alias("product"), "product_categorie")
    d = pl.col("begin").cast(pl.Int32).cast(pl.Date)
    counts = (t.filter(pl.col("in_ijw") & ~pl.col("rejected") & d.dt.year().is_in(years))
              .join(cat, on="product", how="left")
              .group_by("gemeente_code", "product_categorie", d.dt.month().alias("month")).len())
    return counts.select("gemeente_code", "product_categorie", "month", (pl.col("len") / len(years)).alias("expected"))


def poisson_median(expected: pl.Expr) -> pl.Expr:
    """The median of a Poisson count with this mean (floor(mean + 1/3 - 0.02/mean), Choi 1994; 0 for mean 0): the
    point forecast with the least expected absolute error when the counts are Poisson, as MASE scores them."""
    return pl.when(expected > 0).then((expected + 1 / 3 - 0.02 / expected).floor()).otherwise(0.0).clip(lower_bound=0.0)
