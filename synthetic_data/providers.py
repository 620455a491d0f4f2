"""Synthetic aanbieders and the regional product contract, one pool per inkoopregio.

The pool depends only on (seed, inkoopregio), never on which gemeenten were asked for, so a single-gemeente run
sees the same aanbieders as a region or national run.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .privacy import AGB_AANBIEDER_PREFIX, keyed_uniform
from .reference import care_model, gemeenten_all, inkoopregios, pc4, producten_catalogus

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


def region_index(regio: str) -> int:
    return inkoopregios().index(regio)


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
    # Provider sizes are skewed: a few large providers carry most trajectories.
    gewicht = rng.lognormal(0.0, 1.0, n)
    return pl.DataFrame(
        {
            "agb_code": [f"{AGB_AANBIEDER_PREFIX}{region_index(regio):02d}{k:04d}" for k in range(n)],
            "naam": naam,
            "soort": [names[s] for s in soort],
            "vestiging": vestiging.astype(str),
            "inkoopregio": regio,
            "hulpvormen": [",".join(SOORTEN[names[s]]) for s in soort],
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
