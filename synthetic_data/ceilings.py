"""What the simulation itself expects, for the experiment tasks' ceilings (simulation internals, never handed out).

The decision model's own probabilities per JW315 are in synthetic_data.decisions (`request_probabilities`); this
module gives the expected number of new toewijzingen per gemeente, productcategorie and calendar month.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from .reference import producten_catalogus

REPLICATES = 3      # independent simulations averaged (each over every generated year)


def replicate_seeds(seed: int, k: int = REPLICATES) -> list[int]:
    """Seeds of independent replicates: derived from `seed`, never `seed` itself (the truth stays out)."""
    ss = np.random.SeedSequence([int(seed), 12_450])
    return [int(s) for s in ss.generate_state(k, dtype=np.uint32)]


def expected_new_toewijzingen(config, replicates: int = REPLICATES) -> pl.DataFrame:
    """gemeente_code, product_categorie, month (1-12), expected: the mean number of new toewijzingen (granted iJw
    trajectories by start month) per calendar month, over `replicates` independent simulations of `config`'s region
    and every one of its years. The model is stationary over the years (the same start rates, seasonality, decision
    model), so the mean over replicates x years estimates the simulation's own expected value; its Monte Carlo error
    is about sqrt(expected / (replicates x years))."""
    from .generate import simulate

    first, last = config.year_range
    cat = producten_catalogus().select(pl.col("product_index").cast(pl.Int64).alias("product"), "product_categorie")
    counts = []
    for s in replicate_seeds(config.seed, replicates):
        t = simulate(dataclasses.replace(config, seed=s))
        d = pl.col("begin").cast(pl.Int32).cast(pl.Date)
        counts.append(t.filter(pl.col("in_ijw") & ~pl.col("rejected") & d.dt.year().is_between(first, last))
                      .join(cat, on="product", how="left")
                      .group_by("gemeente_code", "product_categorie", d.dt.month().alias("month")).len())
    years = (last - first + 1) * len(counts)
    return pl.concat(counts).group_by("gemeente_code", "product_categorie", "month").agg(
        (pl.col("len").sum() / years).alias("expected"))
