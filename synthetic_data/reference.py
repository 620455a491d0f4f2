"""Reference tables shipped with the package (see data/README.md for their provenance), loaded once per process."""
from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl
import yaml

_DATA = resources.files("synthetic_data") / "data"

# Age of the oldest youth the Jeugdwet reaches (verlengde jeugdhulp up to 23).
MAX_AGE = 22


def _path(name: str):
    return _DATA / name


# libyaml's safe loader when PyYAML has it: the same objects, a tenth of the time (0.4 s per process for the tables
# the generator reads, paid again by every worker)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text) -> object:
    """yaml.safe_load, with libyaml where available."""
    return yaml.load(text, Loader=_YAML_LOADER)


@cache
def load_yaml(name: str) -> dict:
    with _path(name).open(encoding="utf-8") as f:
        return parse_yaml(f)


def calibration() -> dict:
    return load_yaml("calibration.yaml")


def care_model() -> dict:
    return load_yaml("care_model.yaml")


def codelists() -> dict:
    return load_yaml("codelists.yaml")


@cache
def gemeenten_all() -> pl.DataFrame:
    """All 342 gemeenten with the youth population bands and the inkoopregio the generator uses."""
    df = pl.read_csv(_path("gemeenten.csv"), schema_overrides={"gemeente_code": pl.String}, infer_schema_length=0)
    df = df.with_columns(
        pl.col(c).cast(pl.Int64) for c in ["inwoners", "jeugd_0_14_2021", "jeugd_0_19_2021"]
    )
    return (
        df.select(
            "gemeente_code",
            "gemeente_naam",
            "provincie",
            # Only Twente's jeugdregio is sourced; elsewhere the province stands in for the inkoopregio (estimate).
            pl.when(pl.col("jeugdregio").is_not_null() & (pl.col("jeugdregio") != ""))
            .then(pl.col("jeugdregio"))
            .otherwise(pl.col("provincie"))
            .alias("inkoopregio"),
            "inwoners",
            pl.col("jeugd_0_14_2021").alias("jeugd_0_14"),
            (pl.col("jeugd_0_19_2021") - pl.col("jeugd_0_14_2021")).alias("jeugd_15_19"),
            # 20-22 is not published per gemeente: 3/5 of the 15-19 band (even spread, estimate).
            ((pl.col("jeugd_0_19_2021") - pl.col("jeugd_0_14_2021")) * 3 // 5).alias("jeugd_20_22"),
        )
        .sort("gemeente_code")
        .with_row_index("gemeente_index")
    )


@cache
def inkoopregios() -> list[str]:
    """Stable order of all inkoopregios (their index is part of the synthetic AGB codes)."""
    return sorted(gemeenten_all()["inkoopregio"].unique().to_list())


@cache
def pc4() -> pl.DataFrame:
    df = pl.read_csv(_path("pc4_gemeente.csv"), infer_schema_length=0)
    return df.with_columns(pl.col("inwoners_2021").cast(pl.Int64).fill_null(0)).sort("pc4")


@cache
def producten_catalogus() -> pl.DataFrame:
    schema = {c: pl.String for c in ["product_categorie", "product_code", "eenheid", "frequentie"]}
    df = pl.read_csv(_path("producten.csv"), schema_overrides=schema)
    return df.with_row_index("product_index")


# --- issue 12: market
_H_PREVALENTIE = 400   # keyed-hash tag of the estimated per-gemeente spread (seedless: a property of the gemeente)


@cache
def prevalence_factors() -> dict[str, float]:
    """gemeente_code -> relative prevalence (start rate factor); youth-weighted mean 1 within every inkoopregio.

    Sourced gemeenten (prevalentie_gemeenten.csv, CBS 1e hj 2021 shares) keep their ratios to the youth-weighted mean
    of the sourced gemeenten of their region; the others get a deterministic lognormal spread (estimate, sigma in
    care_model.yaml). Normalising per region keeps every region's total, and so the national mean, calibrated.
    """
    import numpy as np
    from statistics import NormalDist

    from .privacy import keyed_uniform

    g = gemeenten_all()
    src = pl.read_csv(_path("prevalentie_gemeenten.csv"), schema_overrides={"gemeente_code": pl.String})
    youth = (g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]).to_numpy().astype(float)
    u = keyed_uniform(0, _H_PREVALENTIE, g["gemeente_code"].cast(pl.Int64).to_numpy())
    z = np.array([NormalDist().inv_cdf(min(max(x, 1e-9), 1 - 1e-9)) for x in u])
    value = np.exp(care_model()["parameters"]["prevalentie_spreiding_sigma"] * z)
    share = dict(zip(src["gemeente_code"], src["jeugdzorg_aandeel_lt23"]))
    codes, regio = g["gemeente_code"].to_list(), g["inkoopregio"].to_numpy()
    sourced = np.array([c in share for c in codes])
    for r in np.unique(regio[sourced]):
        sel = sourced & (regio == r)
        s = np.array([share[c] for c in np.array(codes)[sel]])
        value[sel] = s / np.average(s, weights=youth[sel])
    for r in np.unique(regio):
        sel = regio == r
        value[sel] /= np.average(value[sel], weights=youth[sel])
    return dict(zip(codes, value.tolist()))
