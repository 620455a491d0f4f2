"""Synthetic aanbieders and the regional product contract, one pool per inkoopregio.

The market has a few large aanbieders and a long tail (Zipf sizes); the contract holds one tariff period per
calendar year, indexed yearly, with per-aanbieder tariffs where the region contracts that way (tarieven.yaml).

The pool depends only on (seed, inkoopregio), never on which gemeenten were asked for, so a single-gemeente run
sees the same aanbieders as a region or national run.
"""
from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import polars as pl

from .privacy import AGB_AANBIEDER_PREFIX, keyed_uniform
from .reference import care_model, gemeenten_all, inkoopregios, load_yaml, pc4, producten_catalogus

# soort -> care forms it delivers; the first len(SOORTEN) providers of a pool take one soort each so every care
# form has at least one provider.
SOORTEN = {
    "ambulant": ["ambulant_aanbieder", "netwerk_jeugdige"],
    "ggz": ["ambulant_aanbieder"],
    "dagbehandeling": ["daghulp", "ambulant_aanbieder"],
    "verblijf": ["overig_verblijf", "gezinsgericht", "gesloten_plaatsing"],
    "pleegzorg": ["pleegzorg", "gezinsgericht"],
    "breed": ["ambulant_aanbieder", "netwerk_jeugdige", "daghulp", "overig_verblijf", "pleegzorg", "gezinsgericht"],
}
SOORT_P = np.array([0.40, 0.20, 0.10, 0.10, 0.05, 0.15])
_NAME_WORDS = ["Jeugdhulp", "Zorggroep", "Stichting", "Praktijk", "Centrum", "Kinder- en Jeugdzorg", "Jeugdteam"]
_NAME_NOUNS = ["De Linde", "Het Anker", "De Brug", "Kompas", "De Horizon", "Het Baken", "De Wending", "Sterk",
               "Groeikracht", "De Eik", "Het Kantelpunt", "Samen Verder", "De Vlinder", "Op Koers", "Het Nest"]
_F_TARIEF = 71
# keyed-hash tags (issue 12: market)
_F_TARIEF_AANBIEDER, _F_MICRO_REGIO = 401, 402


def region_index(regio: str) -> int:
    return inkoopregios().index(regio)


def tarief_model() -> dict:
    return load_yaml("tarieven.yaml")


@cache
def aanbieders(seed: int, regio: str) -> pl.DataFrame:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1_000_000 + region_index(regio)]))
    p = care_model()["parameters"]
    g = gemeenten_all().filter(pl.col("inkoopregio") == regio)
    youth = int((g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]).sum())
    n = max(p["aanbieders_min"], int(np.ceil(youth / 1000 * p["aanbieders_per_1000_youth"])))
    names = list(SOORTEN)
    soort = np.concatenate([np.arange(len(names)), rng.choice(len(names), n - len(names), p=SOORT_P)])
    places = pc4().filter(pl.col("gemeente_code").is_in(g["gemeente_code"].implode()) & (pl.col("inwoners_2021") > 0))
    w = places["inwoners_2021"].to_numpy().astype(float)
    vestiging = places["woonplaats"].to_numpy()[rng.choice(len(w), n, p=w / w.sum())]
    word = rng.choice(len(_NAME_WORDS), n)
    noun = rng.choice(len(_NAME_NOUNS), n)
    naam = [f"{_NAME_WORDS[a]} {_NAME_NOUNS[b]} {v}" for a, b, v in zip(word, noun, vestiging)]  # reference-table size
    # A few large providers carry most trajectories next to a long tail (Zipf rank-size, care_model.yaml): the broad
    # providers take the top ranks, in random order within and after them.
    order = np.lexsort((rng.random(n), soort != names.index("breed")))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    gewicht = rank.astype(float) ** -float(p["aanbieder_zipf_exponent"])
    micro = rank > n - int(round(n * tarief_model()["micro"]["aanbieder_share"]))
    return pl.DataFrame(
        {
            "agb_code": [f"{AGB_AANBIEDER_PREFIX}{region_index(regio):02d}{k:04d}" for k in range(n)],
            "naam": naam,
            "soort": [names[s] for s in soort],
            "vestiging": vestiging.astype(str),
            "inkoopregio": regio,
            "hulpvormen": [",".join(SOORTEN[names[s]]) for s in soort],
            "micro_aanbieder": micro,
            "_gewicht": gewicht,
        }
    )


@cache
def aanbieder_choice(seed: int, regio: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """hulpvorm -> (row indices into the pool, probabilities)."""
    pool = aanbieders(seed, regio)
    out = {}
    for h in {h for hs in SOORTEN.values() for h in hs}:
        idx = np.nonzero(pool["hulpvormen"].str.split(",").list.contains(h).to_numpy())[0]
        w = pool["_gewicht"].to_numpy()[idx]
        out[h] = (idx, w / w.sum())
    return out


@cache
def producten(seed: int, regio: str) -> pl.DataFrame:
    """The regional contract: the catalogue with a regional tariff level (within +-3 %, estimate)."""
    cat = producten_catalogus()
    factor = 0.97 + 0.06 * keyed_uniform(seed, _F_TARIEF, region_index(regio), cat["product_index"].to_numpy())
    return cat.with_columns(
        pl.lit(regio).alias("inkoopregio"),
        (pl.col("tarief") * pl.Series(factor)).round().cast(pl.Int64).alias("tarief"),
    )


# --- issue 12: market -- contract periods, indexation and per-aanbieder tariffs

@cache
def tarief_index(year: int) -> float:
    """Price level of `year` relative to the catalogue's (2024), from the yearly indexation of tarieven.yaml."""
    tm = tarief_model()
    idx, base = tm["indexatie"], int(tm["basis_jaar"])
    f = 1.0
    for y in range(base + 1, year + 1):
        f *= 1 + idx[y]
    for y in range(year + 1, base + 1):
        f /= 1 + idx[y]
    return f


def micro_tarieven(seed: int, regio: str) -> bool:
    """Does this inkoopregio contract separate micro-aanbieder tariffs (a share of the regions, estimate)?"""
    u = keyed_uniform(seed, _F_MICRO_REGIO, region_index(regio))
    return bool(u[0] < tarief_model()["micro"]["regio_share"])


@cache
def _aanbieder_factors(seed: int, regio: str) -> pl.DataFrame:
    """(agb_code, product_index, factor) of the products a region contracts per aanbieder (factor != 1 only)."""
    tm = tarief_model()
    cat = producten_catalogus()
    pool = aanbieders(seed, regio).with_row_index("_k")
    per = set(tm["per_aanbieder"]["hulpvormen"])
    micro = micro_tarieven(seed, regio)
    x = pool.select("_k", "agb_code", "micro_aanbieder", pl.col("hulpvormen").str.split(",").alias("hulpvorm")) \
        .explode("hulpvorm").join(cat.select("product_index", "hulpvorm"), on="hulpvorm", how="inner")
    x = x.filter(pl.col("hulpvorm").is_in(list(per)) | (pl.col("micro_aanbieder") & micro))
    if not x.height:
        return pl.DataFrame(schema={"agb_code": pl.String, "product_index": pl.UInt32, "_factor": pl.Float64})
    u = keyed_uniform(seed, _F_TARIEF_AANBIEDER, region_index(regio), x["_k"].to_numpy())   # one factor per aanbieder
    spread = tm["per_aanbieder"]["spread"]
    # a product contracted per aanbieder has the aanbieder's own tariff (within the spread); otherwise a micro-aanbieder's
    factor = (pl.when(pl.col("hulpvorm").is_in(list(per))).then(1 - spread + 2 * spread * pl.Series(u))
              .otherwise(tm["micro"]["factor"]))
    return x.select("agb_code", "product_index", factor.alias("_factor")).unique(
        ["agb_code", "product_index"], keep="first", maintain_order=True)


@cache
def producten_jaar(seed: int, regio: str, year: int) -> pl.DataFrame:
    """The region's contract of one calendar year: regional rows (agb_code null) and per-aanbieder rows."""
    base = producten(seed, regio)
    f = tarief_index(year)
    van, tot = pl.date(year, 1, 1), pl.date(year, 12, 31)
    regional = base.with_columns(
        (pl.col("tarief") * f).round().cast(pl.Int64).alias("tarief"),
        pl.lit(None, pl.String).alias("agb_code"),
    )
    own = _aanbieder_factors(seed, regio)
    per = base.join(own, on="product_index", how="inner").with_columns(
        (pl.col("tarief") * f * pl.col("_factor")).round().cast(pl.Int64).alias("tarief")).drop("_factor")
    return pl.concat([regional, per.select(regional.columns)]).with_columns(
        van.alias("geldig_van"), tot.alias("geldig_tot"))


def producten_perioden(seed: int, regio: str, first_year: int, last_year: int) -> pl.DataFrame:
    """The contract periods a run holds: the years asked for and the one before (the stock started under it)."""
    return pl.concat([producten_jaar(seed, regio, y) for y in range(first_year - 1, last_year + 1)])


def regional_producten(contract: pl.DataFrame) -> pl.DataFrame:
    """One row per (inkoopregio, product) of a period table: the attributes every period shares (earliest regional row)."""
    return contract.filter(pl.col("agb_code").is_null()).sort("geldig_van").unique(
        ["inkoopregio", "product_index"], keep="first", maintain_order=True)


def with_claim_tarief(seed: int, lines: pl.DataFrame, day: str, out: str = "tarief") -> pl.DataFrame:
    """`lines` (gemeente_code, product_code, agb_code and a day number `day`) with `out` the contract tariff valid on
    that day for the line's aanbieder: its own row where the region contracts it per aanbieder, else the regional one.
    The same lookup as synthetic_data.ijw.contract_tarief on the `producten` table (calendar-year periods)."""
    codes = lines["gemeente_code"].unique().to_list()
    gem = gemeenten_all().filter(pl.col("gemeente_code").is_in(codes)).select(
        "gemeente_code", pl.col("inkoopregio").alias("_regio"))
    years = lines.select(_year(pl.col(day)).unique())["_jaar"].drop_nulls().to_list()
    if not years:
        return lines.with_columns(pl.lit(None, pl.Int64).alias(out))
    # joined by inkoopregio (the contract is the region's), not crossed with its gemeenten first
    key = ["_regio", "product_code", "_jaar"]
    own, reg = _claim_contract(seed, tuple(gem["_regio"].unique().sort()), tuple(sorted(years)))
    x = lines.drop(out, strict=False).with_columns(_year(pl.col(day)))
    x = x.join(gem, on="gemeente_code", how="left", maintain_order="left")
    x = x.join(own, on=[*key, "agb_code"], how="left", maintain_order="left").join(
        reg, on=key, how="left", maintain_order="left")
    return x.with_columns(pl.coalesce("_t_own", "_t_reg").alias(out)).drop("_jaar", "_regio", "_t_own", "_t_reg")


@lru_cache(maxsize=64)   # per job of a run; bounded for long-lived processes (many seeds)
def _claim_contract(seed: int, regios: tuple, years: tuple) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The per-aanbieder and the regional tariffs of `regios` in `years`, keyed for `with_claim_tarief` (built once
    per job, not per slice of its lines)."""
    contract = pl.concat([producten_jaar(seed, r, y) for r in regios for y in years])
    contract = contract.select(pl.col("inkoopregio").alias("_regio"), "product_code", "agb_code",
                               pl.col("geldig_van").dt.year().cast(pl.Int32).alias("_jaar"), "tarief")
    own = contract.filter(pl.col("agb_code").is_not_null()).rename({"tarief": "_t_own"})
    reg = contract.filter(pl.col("agb_code").is_null()).drop("agb_code").rename({"tarief": "_t_reg"})
    return own, reg


def _year(days: pl.Expr) -> pl.Expr:
    return days.cast(pl.Int32).cast(pl.Date).dt.year().cast(pl.Int32).alias("_jaar")
