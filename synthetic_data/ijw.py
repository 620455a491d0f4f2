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


# --- timeliness (OP271/OP272, OP274/OP346, OP090x4): the rules and the fault labeller read these, so they agree

def late_sent(df: pl.DataFrame, date: str, days: int) -> pl.DataFrame:
    """Rows of `df` sent (dagtekening) before `date` or more than `days` werkdagen after it, with `werkdagen`."""
    df = df.with_columns(werkdagen(df, date, "dagtekening"))
    return df.filter((pl.col("dagtekening") < pl.col(date)) | (pl.col("werkdagen") > days))


def late_answers(requests: pl.DataFrame, antwoorden: pl.DataFrame, toewijzingen: pl.DataFrame) -> pl.DataFrame:
    """Requests (JW315 or JW317 rows) answered late: the first answer (JW319, or the first JW301 carrying the
    request's ReferentieAanbieder) after 5 werkdagen (a rejection on the woonplaatsbeginsel after 10, OP359), or
    after an "in onderzoek" JW319 the next answer more than 5 werkdagen later. Unanswered requests are not judged."""
    k = ["gemeente_code", "agb_code", "referentie_aanbieder"]
    a319 = antwoorden.select(
        *k, pl.col("dagtekening").alias("antwoord_datum"), (pl.lit("JW319-") + pl.col("verzoek_antwoord")).alias("antwoord"),
        pl.col("reden_afwijzing").alias("_reden"))
    a301 = toewijzingen.filter(pl.col("referentie_aanbieder").is_not_null()).group_by(k).agg(
        pl.col("toewijzingsdatum").min().alias("antwoord_datum")).with_columns(
        pl.lit("JW301").alias("antwoord"), pl.lit(None, pl.String).alias("_reden"))
    answers = pl.concat([a319, a301], how="vertical_relaxed").with_columns(
        (pl.col("antwoord") != "JW319-2").alias("_rank")).sort(*k, "antwoord_datum", "_rank")
    firsts = answers.group_by(k, maintain_order=True).agg(
        pl.col("antwoord_datum").first().alias("antwoord1_datum"), pl.col("antwoord").first().alias("antwoord1"),
        pl.col("_reden").first().alias("_reden1"),
        pl.col("antwoord_datum").slice(1, 1).first().alias("antwoord2_datum"),
    )
    j = requests.join(firsts, on=k, how="inner")
    j = j.with_columns(werkdagen(j, "dagtekening", "antwoord1_datum").alias("werkdagen1"),
                       werkdagen(j, "antwoord1_datum", "antwoord2_datum").alias("werkdagen2"))
    limit1 = pl.when(pl.col("_reden1") == "8").then(10).otherwise(5)
    late1 = (pl.col("antwoord1_datum") < pl.col("dagtekening")) | (pl.col("werkdagen1") > limit1)
    late2 = (pl.col("antwoord1") == "JW319-2") & (pl.col("werkdagen2") > 5).fill_null(False)
    return j.filter(late1 | late2)


def late_declaratie_antwoorden(antwoorden: pl.DataFrame, declaraties: pl.DataFrame) -> pl.DataFrame:
    """JW325s sent before their JW323 or more than 10 werkdagen after it (OP090x4)."""
    d = declaraties.select(*DECLARATIE, pl.col("dagtekening").alias("declaratie_dagtekening"))
    j = antwoorden.join(d, on=DECLARATIE, how="inner")
    j = j.with_columns(werkdagen(j, "declaratie_dagtekening", "dagtekening"))
    return j.filter((pl.col("dagtekening") < pl.col("declaratie_dagtekening")) | (pl.col("werkdagen") > 10))
