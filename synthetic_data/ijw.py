"""Small iJw helpers that the generator's fault injector, the rule implementations and the tests share.

Each is written once here so that a check and the code that breaks or repairs data agree on what a record key, the
latest toewijzing version, a signed amount, a werkdag or the volume cap is.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from .dictionary import key as dictionary_key
from .privacy import POSTCODE_PATTERN

__all__ = ["TOEWIJZING", "STARTKEY", "DECLARATIE", "FAR_FUTURE", "POSTCODE_PATTERN", "key_expr", "record_key",
           "latest_toewijzing", "signed", "werkdagen", "period_days", "volume_cap", "contract_tarief"]

TOEWIJZING = ["gemeente_code", "toewijzing_nummer"]                          # one toewijzing (all its versions)
STARTKEY = ["gemeente_code", "agb_code", "toewijzing_nummer", "begindatum"]   # one JW305 and the JW307 that stops it
DECLARATIE = ["agb_code", "declaratie_nummer"]                              # one JW323 header
FAR_FUTURE = dt.date(9999, 12, 31)                                          # an open end date in comparisons


def key_expr(table: str) -> pl.Expr:
    """The table's dictionary key as one string, e.g. "0147|1000243|2" (dates as YYYY-MM-DD)."""
    # a null key column (producten.agb_code of a regional tarief) is an empty field
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in dictionary_key(table)], separator="|")


def record_key(table: str, row: dict) -> str:
    """The same key for one record given as a dict (as `DataFrame.row(i, named=True)` returns it)."""
    return "|".join("" if row[c] is None else str(row[c]) for c in dictionary_key(table))


def latest_toewijzing(toewijzingen: pl.DataFrame) -> pl.DataFrame:
    """The latest version (highest versie; of equal ones the last row) of every toewijzing; extra columns are kept."""
    tw = toewijzingen
    return tw.filter(pl.col("versie") == pl.col("versie").max().over(TOEWIJZING)).unique(
        TOEWIJZING, keep="last", maintain_order=True)


def signed(amount: str, sign: str = "debet_credit") -> pl.Expr:
    """An amount or volume with the sign of its DebetCredit (credit negative)."""
    return pl.when(pl.col(sign) == "C").then(-pl.col(amount)).otherwise(pl.col(amount))


def werkdagen(df: pl.DataFrame, start: str, end: str) -> pl.Series:
    """Werkdagen (Mon-Fri, no holidays, as the generator) in [start, end); negative if end < start; null if a date is."""
    both = df[start].is_not_null() & df[end].is_not_null()
    fill = dt.date(2000, 1, 3)
    a = df[start].fill_null(fill).to_numpy().astype("datetime64[D]")
    b = df[end].fill_null(fill).to_numpy().astype("datetime64[D]")
    n = pl.Series("n", np.busday_count(a, b).astype(np.int64))
    return pl.DataFrame({"n": n, "both": both}).select(pl.when("both").then("n").alias("werkdagen")).to_series()


def period_days(start: str = "begindatum", end: str = "einddatum") -> pl.Expr:
    """Days in a period, both ends included."""
    return (pl.col(end) - pl.col(start)).dt.total_days() + 1


def volume_cap(volume: str = "tw_volume", frequentie: str = "tw_frequentie") -> pl.Expr:
    """Maximum GeleverdVolume of a claim line (TR321): the toegewezen volume pro-rated to the product period (per dag
    volume x days, per week x days / 7, per maand x days / days in the month, totaal the volume itself; eenheid 14,
    etmaal, at most one per day). Reads eenheid, begindatum and einddatum of the line; null for other frequenties."""
    dagen = period_days()
    dim = pl.col("begindatum").dt.month_end().dt.day().cast(pl.Int64)
    v, f = pl.col(volume), pl.col(frequentie)
    return (
        pl.when(pl.col("eenheid") == "14").then(dagen.cast(pl.Float64))
        .when(f == "1").then(v * dagen).when(f == "2").then(v * dagen / 7)
        .when(f == "4").then(v * dagen / dim).when(f == "6").then(v.cast(pl.Float64))
    ).cast(pl.Float64)


# --- issue 12: market
def contract_tarief(lines: pl.DataFrame, producten: pl.DataFrame, gemeenten: pl.DataFrame, date: str = "begindatum",
                    name: str = "contract_tarief", product_code: str = "product_code") -> pl.DataFrame:
    """`lines` with column `name`: the contract tarief of the line's product valid on `date` (TR418): the aanbieder's
    own row of `producten` (agb_code) where the region contracts it per aanbieder, else the regional row (agb_code
    null); null when no contract period of the gemeente's inkoopregio covers the date. Keeps order and columns."""
    keys = ["inkoopregio", "product_categorie", "product_code"]
    p = producten.select(*keys, "agb_code", "geldig_van", "geldig_tot", "tarief")
    x = lines.with_row_index("_ct_i").select("_ct_i", "gemeente_code", "product_categorie",
                                             pl.col(product_code).alias("product_code"), "agb_code", date)
    x = x.join(gemeenten.select("gemeente_code", "inkoopregio"), on="gemeente_code", how="left")
    found = []
    for own in (True, False):
        rows = p.filter(pl.col("agb_code").is_not_null() if own else pl.col("agb_code").is_null())
        on = [*keys, "agb_code"] if own else keys
        j = x.join(rows.drop([] if own else ["agb_code"]), on=on, how="inner").filter(
            pl.col(date).is_between(pl.col("geldig_van"), pl.col("geldig_tot")))
        found.append(j.select("_ct_i", pl.col("tarief").alias(f"_ct_{int(own)}")).unique("_ct_i", keep="first"))
    got = x.select("_ct_i").join(found[0], on="_ct_i", how="left").join(found[1], on="_ct_i", how="left").sort("_ct_i")
    return lines.with_columns(pl.coalesce(got["_ct_1"], got["_ct_0"]).alias(name))
