"""Derived checks: iJw rules that GX cannot express as one column or column-pair expectation, computed in polars.

A derived check takes the tables (``{name: pl.DataFrame}``, columns as in synthetic_data/data/dictionary.yaml) and
returns one boolean per row of the table the rule reports (True = the row satisfies the rule), aligned with that
table's rows in their given order, never null. The engine adds it to the table as a flag column and validates it in
Great Expectations with ``ExpectColumnValuesToBeInSet([True])``, so cross-table and conditional rules land in the same
suites, results and Data Docs as the plain column rules. They are computed here because GX 1.x has no polars input, its
SQL path on DuckDB fails silently, and ``UnexpectedRowsExpectation`` is SQL-only (see the workplace stack notes (shared/STACK_NOTES.md)).

The logic mirrors tests/ijw_rules.py (an independent plain-polars copy used to test the generator); the rule ids and
meanings are in rules.yaml. Each function computes the row numbers (``_row``) that violate the rule and flags them.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
import polars as pl

from synthetic_data.reference import codelists

Tables = dict[str, pl.DataFrame]
Derived = Callable[[Tables], pl.Series]

DERIVED: dict[str, Derived] = {}

ROW = "_row"
FAR_FUTURE = dt.date(9999, 12, 31)
TOEWIJZING = ["gemeente_code", "toewijzing_nummer"]
STARTKEY = ["gemeente_code", "agb_code", "toewijzing_nummer", "begindatum"]
DECLARATIE = ["agb_code", "declaratie_nummer"]
VERWIJZER_MET_AGB = ["02", "03", "04", "05"]


def derived(name: str, table: str | None = None) -> Callable[[Derived], Derived]:
    """Register a derived check under `name`; `table` (optional) is the table whose rows it returns, which the
    registry compares with the rule's table."""
    def deco(fn: Derived) -> Derived:
        if name in DERIVED:
            raise ValueError(f"derived check {name!r} is registered twice")
        fn.derived_name = name  # type: ignore[attr-defined]
        fn.table = table  # type: ignore[attr-defined]
        DERIVED[name] = fn
        return fn
    return deco


# ---------------------------------------------------------------------------------------------------------- helpers

def _rows(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_row_index(ROW)


def _ok_expr(df: pl.DataFrame, bad: pl.Expr) -> pl.Series:
    """True where `bad` is not true; a null `bad` is no violation (as in DataFrame.filter)."""
    return df.select((~bad.fill_null(False)).alias("ok")).to_series()


def _ok_except(df: pl.DataFrame, bad: pl.DataFrame) -> pl.Series:
    """True for every row of `df` except the `_row`s listed in `bad`."""
    mask = np.ones(df.height, dtype=bool)
    mask[bad[ROW].cast(pl.Int64).to_numpy()] = False
    return pl.Series("ok", mask, dtype=pl.Boolean)


def _latest(tw: pl.DataFrame) -> pl.DataFrame:
    """The latest version (highest versie) of every toewijzing (extra columns such as `_row` are kept)."""
    return tw.filter(pl.col("versie") == pl.col("versie").max().over(TOEWIJZING)).unique(
        TOEWIJZING, keep="last", maintain_order=True)


def _tw_cols(tables: Tables, **renames: str) -> pl.DataFrame:
    """Latest toewijzing versions: the key and the given columns renamed (column=alias)."""
    return _latest(tables["toewijzingen"]).select(*TOEWIJZING, *[pl.col(c).alias(a) for c, a in renames.items()])


def _signed(amount: str, sign: str = "debet_credit") -> pl.Expr:
    return pl.when(pl.col(sign) == "C").then(-pl.col(amount)).otherwise(pl.col(amount))


def _days(start: str = "begindatum", end: str = "einddatum") -> pl.Expr:
    return (pl.col(end) - pl.col(start)).dt.total_days() + 1


def werkdagen(df: pl.DataFrame, start: str, end: str) -> pl.Series:
    """Werkdagen (Mon-Fri, no holidays, as the generator) in [start, end); negative if end < start; null if a date is."""
    both = df[start].is_not_null() & df[end].is_not_null()
    fill = dt.date(2000, 1, 3)
    a = df[start].fill_null(fill).to_numpy().astype("datetime64[D]")
    b = df[end].fill_null(fill).to_numpy().astype("datetime64[D]")
    n = pl.Series("n", np.busday_count(a, b).astype(np.int64))
    return pl.DataFrame({"n": n, "both": both}).select(pl.when("both").then("n").alias("werkdagen")).to_series()


# -------------------------------------------------------------------------------------------- toewijzing fields

@derived("reden13_only_when_einddatum_eq_ingangsdatum", "toewijzingen")
def reden13(tables: Tables) -> pl.Series:
    tw = tables["toewijzingen"]
    return _ok_expr(tw, (pl.col("reden_wijziging") == "13") & pl.col("einddatum").ne_missing(pl.col("ingangsdatum")))


def _omvang(table: str) -> Derived:
    def check(tables: Tables) -> pl.Series:
        pairs = [f"{e}/{f}" for e, fs in codelists()["eenheid_frequenties"].items() for f in fs]
        filled = pl.col("eenheid").is_not_null() | pl.col("frequentie").is_not_null()
        allowed = (pl.col("eenheid") + "/" + pl.col("frequentie")).is_in(pairs).fill_null(False)
        return _ok_expr(tables[table], filled & ~allowed)
    return check


for _t in ["toewijzingen", "verzoeken", "producten"]:
    derived(f"eenheid_frequentie_{_t}", _t)(_omvang(_t))


@derived("product_code_in_categorie", "toewijzingen")
def product_code_in_categorie(tables: Tables) -> pl.Series:
    regio = tables["gemeenten"].select("gemeente_code", "inkoopregio")
    lijst = tables["producten"].select("inkoopregio", "product_categorie", "product_code")
    tw = _rows(tables["toewijzingen"])
    bad = (
        tw.filter(pl.col("product_code").is_not_null())
        .join(regio, on="gemeente_code", how="left")
        .join(lijst, on=["inkoopregio", "product_categorie", "product_code"], how="anti", nulls_equal=False)
    )
    return _ok_except(tw, bad)


# -------------------------------------------------------------------------------------- verzoeken and start/stop

@derived("verwijzer_agb_of_naam", "verzoeken")
def verwijzer_agb_of_naam(tables: Tables) -> pl.Series:
    return _ok_expr(tables["verzoeken"], pl.col("verwijzer_type").is_in(VERWIJZER_MET_AGB)
                    & pl.col("verwijzer_zorgverlenercode").is_null() & pl.col("verwijzer_naam").is_null())


@derived("verwijzer_geen_agb_bij_ander_type", "verzoeken")
def verwijzer_geen_agb(tables: Tables) -> pl.Series:
    return _ok_expr(tables["verzoeken"], ~pl.col("verwijzer_type").is_in(VERWIJZER_MET_AGB).fill_null(True)
                    & pl.col("verwijzer_zorgverlenercode").is_not_null())


@derived("status_aanlevering_1_of_3", "zorgstarts")
def status_aanlevering(tables: Tables) -> pl.Series:
    return _ok_expr(tables["zorgstarts"], ~pl.col("status_aanlevering").is_in(["1", "3"]).fill_null(False))


# ------------------------------------------------------------------------------------------ declaratie periods

@derived("declaratieperiode_kalendermaand", "declaraties")
def declaratieperiode(tables: Tables) -> pl.Series:
    b, e = pl.col("begindatum"), pl.col("einddatum")
    ok = (b.dt.day() == 1) & (e == b.dt.month_end()) & (b >= dt.date(2021, 1, 1))
    return _ok_expr(tables["declaraties"], ~ok.fill_null(False))


@derived("productperiode_een_kalendermaand", "prestaties")
def productperiode_maand(tables: Tables) -> pl.Series:
    b, e = pl.col("begindatum"), pl.col("einddatum")
    return _ok_expr(tables["prestaties"], ~(b.dt.truncate("1mo") == e.dt.truncate("1mo")).fill_null(False))


@derived("productperiode_grenzen", "prestaties")
def productperiode_grenzen(tables: Tables) -> pl.Series:
    stops = tables["zorgstops"].group_by(TOEWIJZING).agg(pl.col("einddatum").alias("stop_einddata"))
    p = _rows(tables["prestaties"])
    j = (p.join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum", einddatum="tw_einddatum"), on=TOEWIJZING, how="left")
         .join(stops, on=TOEWIJZING, how="left"))
    b, e = pl.col("begindatum"), pl.col("einddatum")
    start_ok = (b.dt.day() == 1) | (b == pl.col("tw_ingangsdatum")).fill_null(False)
    end_ok = (
        (e == e.dt.month_end())
        | (e == pl.col("tw_einddatum")).fill_null(False)
        | pl.col("stop_einddata").list.contains(e).fill_null(False)
    )
    return _ok_except(p, j.filter(~(start_ok & end_ok).fill_null(False)))


# --------------------------------------------------------------------------------------------------- amounts

@derived("bedrag_is_volume_maal_tarief", "prestaties")
def bedrag_volume_tarief(tables: Tables) -> pl.Series:
    euro = pl.col("eenheid") == "83"
    expected = pl.when(euro).then(pl.col("geleverd_volume")).otherwise(pl.col("geleverd_volume") * pl.col("product_tarief"))
    return _ok_expr(tables["prestaties"], pl.col("ingediend_bedrag").ne_missing(expected))


@derived("totaalbedrag_is_som_prestaties", "declaraties")
def totaalbedrag(tables: Tables) -> pl.Series:
    sums = tables["prestaties"].group_by(DECLARATIE).agg(_signed("ingediend_bedrag").sum().alias("som_prestaties"))
    d = _rows(tables["declaraties"])
    j = d.join(sums, on=DECLARATIE, how="left").with_columns(pl.col("som_prestaties").fill_null(0))
    return _ok_except(d, j.filter(_signed("totaal_bedrag") != pl.col("som_prestaties")))


@derived("bedrag_nul_is_debet", "prestaties")
def bedrag_nul_is_debet(tables: Tables) -> pl.Series:
    return _ok_expr(tables["prestaties"],
                    (pl.col("ingediend_bedrag") == 0) & pl.col("debet_credit").ne_missing(pl.lit("D")))


@derived("vorig_referentie_alleen_en_altijd_bij_credit", "prestaties")
def vorig_referentie(tables: Tables) -> pl.Series:
    return _ok_expr(tables["prestaties"],
                    (pl.col("debet_credit") == "C") != pl.col("vorig_referentie_nummer").is_not_null())


# ------------------------------------------------------------------------------------------ toewijzing numbering

@derived("toewijzing_nummer_uniek_per_gemeente", "toewijzingen")
def toewijzing_nummer_uniek(tables: Tables) -> pl.Series:
    mixed = pl.any_horizontal(pl.col(c).n_unique().over(TOEWIJZING) > 1 for c in ["bsn", "agb_code", "product_code"])
    dup = pl.struct("gemeente_code", "toewijzing_nummer", "versie").is_duplicated()
    return _ok_expr(tables["toewijzingen"], mixed | dup)


@derived("geen_overlappende_toewijzingen", "toewijzingen")
def geen_overlap(tables: Tables) -> pl.Series:
    """Flags the latest version row of a toewijzing that starts while another one for the same client, aanbieder
    and product runs (withdrawn ones excluded)."""
    tw = _rows(tables["toewijzingen"])
    same = ["gemeente_code", "bsn", "agb_code", "product_code"]
    lt = _latest(tw).filter(pl.col("reden_wijziging").ne_missing(pl.lit("13"))).select(
        ROW, *same, "toewijzing_nummer", "ingangsdatum", pl.col("einddatum").fill_null(FAR_FUTURE).alias("_eind"))
    other = lt.select(*same, pl.col("toewijzing_nummer").alias("ander_nummer"),
                      pl.col("ingangsdatum").alias("ander_ingangsdatum"), pl.col("_eind").alias("ander_einddatum"))
    pairs = lt.join(other, on=same, how="inner")
    # the stacked one is the toewijzing that starts later (on equal starts: the higher number), not the one it lands on
    later = (pl.col("ingangsdatum") > pl.col("ander_ingangsdatum")) | (
        (pl.col("ingangsdatum") == pl.col("ander_ingangsdatum")) & (pl.col("toewijzing_nummer") > pl.col("ander_nummer")))
    bad = pairs.filter((pl.col("toewijzing_nummer") != pl.col("ander_nummer"))
                       & (pl.col("ingangsdatum") <= pl.col("ander_einddatum"))
                       & (pl.col("ander_ingangsdatum") <= pl.col("_eind")) & later)
    return _ok_except(tw, bad)


@derived("toewijzing_referentie_bestaat", "toewijzingen")
def toewijzing_referentie(tables: Tables) -> pl.Series:
    v = tables["verzoeken"].select("gemeente_code", "agb_code", "referentie_aanbieder", "bsn").unique()
    tw = _rows(tables["toewijzingen"])
    bad = tw.filter(pl.col("referentie_aanbieder").is_not_null()).join(
        v, on=["gemeente_code", "agb_code", "referentie_aanbieder", "bsn"], how="anti")
    return _ok_except(tw, bad)


# ------------------------------------------------------------------------------------------------ start / stop

@derived("stop_bij_bestaande_toewijzing", "zorgstops")
def stop_bij_toewijzing(tables: Tables) -> pl.Series:
    parties = tables["toewijzingen"].select("gemeente_code", "toewijzing_nummer", "bsn", "agb_code").unique()
    s = _rows(tables["zorgstops"])
    bad = s.join(parties, on=["gemeente_code", "toewijzing_nummer", "bsn", "agb_code"], how="anti", nulls_equal=False)
    return _ok_except(s, bad)


@derived("een_actuele_start_per_toewijzing", "zorgstarts")
def een_actuele_start(tables: Tables) -> pl.Series:
    starts = _rows(tables["zorgstarts"])
    stops = tables["zorgstops"].filter(pl.col("status_aanlevering") == "1").group_by(STARTKEY).agg(
        pl.col("einddatum").max().alias("stop_einddatum"))
    s = (starts.filter(pl.col("status_aanlevering") == "1").join(stops, on=STARTKEY, how="left")
         .sort(*TOEWIJZING, "begindatum", "dagtekening", ROW))
    s = s.with_columns(
        pl.col("begindatum").shift(1).over(TOEWIJZING).alias("vorige_begindatum"),
        pl.col("stop_einddatum").shift(1).over(TOEWIJZING).alias("vorige_stop_einddatum"),
    )
    bad = s.filter(pl.col("vorige_begindatum").is_not_null() & (
        pl.col("vorige_stop_einddatum").is_null() | (pl.col("begindatum") <= pl.col("vorige_stop_einddatum"))))
    return _ok_except(starts, bad)


@derived("stop_heeft_eerdere_start", "zorgstops")
def stop_heeft_start(tables: Tables) -> pl.Series:
    starts = tables["zorgstarts"].filter(pl.col("status_aanlevering") == "1").group_by(STARTKEY).agg(
        pl.col("dagtekening").min().alias("start_dagtekening"))
    s = _rows(tables["zorgstops"])
    j = s.join(starts, on=STARTKEY, how="left")
    return _ok_except(s, j.filter(pl.col("start_dagtekening").is_null()
                                  | (pl.col("start_dagtekening") > pl.col("dagtekening"))))


@derived("start_begindatum_ge_toewijzing_ingangsdatum", "zorgstarts")
def start_na_ingang(tables: Tables) -> pl.Series:
    s = _rows(tables["zorgstarts"])
    j = s.join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum"), on=TOEWIJZING, how="left")
    return _ok_except(s, j.filter(pl.col("begindatum") < pl.col("tw_ingangsdatum")))


# ------------------------------------------------------------------------------------------ prestatie vs toewijzing

@derived("prestatie_bij_toewijzing_van_client", "prestaties")
def prestatie_bij_toewijzing(tables: Tables) -> pl.Series:
    tw = tables["toewijzingen"].select(*TOEWIJZING, "bsn", "agb_code").unique().group_by(TOEWIJZING).agg(
        pl.col("bsn").alias("tw_bsn"), pl.col("agb_code").alias("tw_agb"))
    p = _rows(tables["prestaties"])
    j = p.join(tw, on=TOEWIJZING, how="left")
    ok = pl.col("tw_bsn").list.contains(pl.col("bsn")) & pl.col("tw_agb").list.contains(pl.col("agb_code"))
    return _ok_except(p, j.filter(~ok.fill_null(False)))


@derived("prestatie_product_als_toewijzing", "prestaties")
def prestatie_product(tables: Tables) -> pl.Series:
    tw = _tw_cols(tables, product_categorie="tw_product_categorie", product_code="tw_product_code", eenheid="tw_eenheid")
    p = _rows(tables["prestaties"])
    j = p.join(tw, on=TOEWIJZING, how="inner")
    return _ok_except(p, j.filter(
        pl.col("product_categorie").ne_missing(pl.col("tw_product_categorie"))
        | pl.col("product_code").ne_missing(pl.col("tw_product_code"))
        | pl.col("eenheid").ne_missing(pl.col("tw_eenheid"))
    ))


@derived("productperiode_binnen_toewijzing", "prestaties")
def productperiode_binnen_toewijzing(tables: Tables) -> pl.Series:
    p = _rows(tables["prestaties"])
    j = p.join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum", einddatum="tw_einddatum"), on=TOEWIJZING, how="inner")
    return _ok_except(p, j.filter((pl.col("begindatum") < pl.col("tw_ingangsdatum"))
                                  | (pl.col("tw_einddatum").is_not_null() & (pl.col("einddatum") > pl.col("tw_einddatum")))))


@derived("prestatie_niet_na_zorgstop", "prestaties")
def prestatie_niet_na_stop(tables: Tables) -> pl.Series:
    k = ["gemeente_code", "agb_code", "toewijzing_nummer"]
    stops = tables["zorgstops"].filter((pl.col("status_aanlevering") == "1") & (pl.col("reden_beeindiging") != "20"))
    stops = stops.group_by(k).agg(pl.col("einddatum").max().alias("stop_einddatum"))
    p = _rows(tables["prestaties"])
    j = p.join(stops, on=k, how="inner")
    return _ok_except(p, j.filter(pl.col("einddatum") > pl.col("stop_einddatum")))


@derived("geleverd_volume_binnen_toegewezen", "prestaties")
def geleverd_volume(tables: Tables) -> pl.Series:
    p = _rows(tables["prestaties"])
    j = p.join(_tw_cols(tables, volume="tw_volume", frequentie="tw_frequentie"), on=TOEWIJZING, how="inner").with_columns(
        _days().alias("dagen"), pl.col("begindatum").dt.month_end().dt.day().cast(pl.Int64).alias("dagen_in_maand"))
    v, f = pl.col("tw_volume"), pl.col("tw_frequentie")
    cap = (
        pl.when(pl.col("eenheid") == "14").then(pl.col("dagen").cast(pl.Float64))
        .when(f == "1").then(v * pl.col("dagen"))
        .when(f == "2").then(v * pl.col("dagen") / 7)
        .when(f == "4").then(v * pl.col("dagen") / pl.col("dagen_in_maand"))
        .when(f == "6").then(v.cast(pl.Float64))
    ).cast(pl.Float64)
    j = j.with_columns(cap.alias("max_volume"))
    return _ok_except(p, j.filter(pl.col("max_volume").is_null()
                                  | (pl.col("geleverd_volume") > pl.col("max_volume") + 1e-9)))


@derived("som_volume_binnen_totaal", "prestaties")
def som_volume(tables: Tables) -> pl.Series:
    tw = _tw_cols(tables, volume="tw_volume", frequentie="tw_frequentie").filter(pl.col("tw_frequentie") == "6")
    p = _rows(tables["prestaties"])
    j = p.join(tw, on=TOEWIJZING, how="inner").with_columns(
        _signed("geleverd_volume").sum().over(TOEWIJZING).alias("netto_volume"))
    return _ok_except(p, j.filter(pl.col("netto_volume") > pl.col("tw_volume")))


# --------------------------------------------------------------------------------------------- claim identities

@derived("declaratie_nummer_uniek_alfanumeriek", "declaraties")
def declaratie_nummer(tables: Tables) -> pl.Series:
    fmt = pl.col("declaratie_nummer").str.contains(r"^[A-Za-z0-9]{1,12}$").fill_null(False)
    return _ok_expr(tables["declaraties"], pl.struct(*DECLARATIE).is_duplicated() | ~fmt)


@derived("een_actieve_debet", "prestaties")
def een_actieve_debet(tables: Tables) -> pl.Series:
    grp = ["agb_code", "gemeente_code", "toewijzing_nummer", "begindatum"]
    actief = ((pl.col("debet_credit") == "D").sum().over(grp).cast(pl.Int64)
              - (pl.col("debet_credit") == "C").sum().over(grp).cast(pl.Int64))
    return _ok_expr(tables["prestaties"], actief > 1)


def _credits_with_debet(p: pl.DataFrame, tables: Tables) -> pl.DataFrame:
    """Credit prestaties (with `_row`) next to the debet their VorigReferentieNummer names (debet_* columns)."""
    periode = tables["declaraties"].select(*DECLARATIE, pl.col("begindatum").alias("_decl_begin"))
    debets = p.filter(pl.col("debet_credit") == "D").join(periode, on=DECLARATIE, how="left").select(
        "agb_code", pl.col("referentie_nummer").alias("vorig_referentie_nummer"),
        *[pl.col(c).alias(f"debet_{c}") for c in
          ["declaratie_nummer", "_decl_begin", "gemeente_code", "bsn", "toewijzing_nummer", "begindatum", "einddatum",
           "ingediend_bedrag"]],
    )
    credits = p.filter(pl.col("debet_credit") == "C").join(periode, on=DECLARATIE, how="left")
    return credits.join(debets, on=["agb_code", "vorig_referentie_nummer"], how="left")


@derived("credit_op_eerdere_debet", "prestaties")
def credit_op_debet(tables: Tables) -> pl.Series:
    p = _rows(tables["prestaties"])
    c = _credits_with_debet(p, tables)
    same = ["gemeente_code", "bsn", "toewijzing_nummer", "begindatum", "einddatum", "ingediend_bedrag"]
    mismatch = pl.any_horizontal(pl.col(a).ne_missing(pl.col(f"debet_{a}")) for a in same)
    bad = (
        pl.col("debet_declaratie_nummer").is_null()
        | mismatch
        | (pl.col("debet__decl_begin") > pl.col("_decl_begin")).fill_null(True)
        | pl.struct("agb_code", "vorig_referentie_nummer").is_duplicated()
    )
    return _ok_except(p, c.filter(bad))


@derived("credit_niet_in_declaratie_van_debet", "prestaties")
def credit_niet_in_zelfde(tables: Tables) -> pl.Series:
    p = _rows(tables["prestaties"])
    c = _credits_with_debet(p, tables)
    return _ok_except(p, c.filter(pl.col("declaratie_nummer") == pl.col("debet_declaratie_nummer")))


@derived("tarief_is_contracttarief", "prestaties")
def contracttarief(tables: Tables) -> pl.Series:
    regio = tables["gemeenten"].select("gemeente_code", "inkoopregio")
    lijst = tables["producten"].select("inkoopregio", "product_categorie", "product_code",
                                       pl.col("tarief").alias("contract_tarief"))
    p = _rows(tables["prestaties"])
    j = (p.filter(pl.col("eenheid").ne_missing(pl.lit("83")))
         .join(regio, on="gemeente_code", how="left")
         .join(lijst, on=["inkoopregio", "product_categorie", "product_code"], how="left"))
    return _ok_except(p, j.filter(pl.col("product_tarief").ne_missing(pl.col("contract_tarief"))))


@derived("prestatie_heeft_declaratie", "prestaties")
def prestatie_heeft_declaratie(tables: Tables) -> pl.Series:
    d = tables["declaraties"].select(*DECLARATIE, "gemeente_code")
    p = _rows(tables["prestaties"])
    return _ok_except(p, p.join(d, on=[*DECLARATIE, "gemeente_code"], how="anti"))


@derived("productperiode_niet_na_declaratieperiode", "prestaties")
def niet_na_declaratieperiode(tables: Tables) -> pl.Series:
    d = tables["declaraties"].select(*DECLARATIE, pl.col("einddatum").alias("declaratie_einddatum"))
    p = _rows(tables["prestaties"])
    j = p.join(d, on=DECLARATIE, how="inner")
    return _ok_except(p, j.filter(pl.col("einddatum") > pl.col("declaratie_einddatum")))


# --------------------------------------------------------------------------------------------------- timeliness

@derived("start_binnen_5_werkdagen", "zorgstarts")
def start_tijdig(tables: Tables) -> pl.Series:
    s = tables["zorgstarts"]
    s = s.with_columns(werkdagen(s, "begindatum", "dagtekening"))
    return _ok_expr(s, (pl.col("dagtekening") < pl.col("begindatum")) | (pl.col("werkdagen") > 5))


@derived("stop_binnen_5_werkdagen", "zorgstops")
def stop_tijdig(tables: Tables) -> pl.Series:
    s = tables["zorgstops"]
    s = s.with_columns(werkdagen(s, "einddatum", "dagtekening"))
    return _ok_expr(s, (pl.col("dagtekening") < pl.col("einddatum")) | (pl.col("werkdagen") > 5))


@derived("antwoord_op_verzoek_binnen_5_werkdagen", "verzoeken")
def antwoord_tijdig(tables: Tables) -> pl.Series:
    """The first answer (JW319, or the first JW301 honouring the verzoek) within 5 werkdagen; after an "in onderzoek"
    JW319 the next answer within 5 more. Verzoeken without any answer in the data are not judged."""
    k = ["gemeente_code", "agb_code", "referentie_aanbieder"]
    a319 = tables["antwoorden"].select(
        *k, pl.col("dagtekening").alias("antwoord_datum"), (pl.lit("JW319-") + pl.col("verzoek_antwoord")).alias("antwoord"))
    a301 = tables["toewijzingen"].filter(pl.col("referentie_aanbieder").is_not_null()).group_by(k).agg(
        pl.col("toewijzingsdatum").min().alias("antwoord_datum")).with_columns(pl.lit("JW301").alias("antwoord"))
    answers = pl.concat([a319, a301], how="vertical_relaxed").with_columns(
        (pl.col("antwoord") != "JW319-2").alias("_rank")).sort(*k, "antwoord_datum", "_rank")
    firsts = answers.group_by(k, maintain_order=True).agg(
        pl.col("antwoord_datum").first().alias("antwoord1_datum"), pl.col("antwoord").first().alias("antwoord1"),
        pl.col("antwoord_datum").slice(1, 1).first().alias("antwoord2_datum"),
    )
    v = _rows(tables["verzoeken"])
    j = v.join(firsts, on=k, how="inner")
    j = j.with_columns(werkdagen(j, "dagtekening", "antwoord1_datum").alias("werkdagen1"),
                       werkdagen(j, "antwoord1_datum", "antwoord2_datum").alias("werkdagen2"))
    late1 = (pl.col("antwoord1_datum") < pl.col("dagtekening")) | (pl.col("werkdagen1") > 5)
    late2 = (pl.col("antwoord1") == "JW319-2") & (pl.col("werkdagen2") > 5).fill_null(False)
    return _ok_except(v, j.filter(late1 | late2))


@derived("declaratie_antwoord_binnen_10_werkdagen", "declaratie_antwoorden")
def declaratie_antwoord_tijdig(tables: Tables) -> pl.Series:
    d = tables["declaraties"].select(*DECLARATIE, pl.col("dagtekening").alias("declaratie_dagtekening"))
    a = _rows(tables["declaratie_antwoorden"])
    j = a.join(d, on=DECLARATIE, how="inner")
    j = j.with_columns(werkdagen(j, "declaratie_dagtekening", "dagtekening"))
    return _ok_except(a, j.filter((pl.col("dagtekening") < pl.col("declaratie_dagtekening")) | (pl.col("werkdagen") > 10)))


@derived("een_antwoord_per_declaratie", "declaraties")
def een_antwoord(tables: Tables) -> pl.Series:
    """Every declaratie (unique key) has exactly one JW325 of the same gemeente. Answers without a declaratie are rows
    of declaratie_antwoorden and are not reported here."""
    a = tables["declaratie_antwoorden"].group_by(DECLARATIE).agg(
        pl.len().alias("aantal_antwoorden"), pl.col("gemeente_code").alias("antwoord_gemeenten"))
    d = _rows(tables["declaraties"])
    j = d.join(a, on=DECLARATIE, how="left").with_columns(
        pl.col("aantal_antwoorden").fill_null(0), pl.len().over(DECLARATIE).alias("aantal_declaraties"))
    bad = j.filter((pl.col("aantal_antwoorden") != 1) | (pl.col("aantal_declaraties") != 1)
                   | ~pl.col("antwoord_gemeenten").list.contains(pl.col("gemeente_code")).fill_null(False))
    return _ok_except(d, bad)


# ------------------------------------------------------------------------------------------------ client data

@derived("geboortedatum_voor_zorg", "jeugdigen")
def geboortedatum_voor_zorg(tables: Tables) -> pl.Series:
    """The birth date lies before the youth's first care in the gemeente, and less than 23 years before it."""
    first = tables["trajecten"].group_by("gemeente_code", "client_id").agg(pl.col("begindatum").min().alias("_first"))
    j = _rows(tables["jeugdigen"]).join(first, on=["gemeente_code", "client_id"], how="left")
    bad = j.filter((pl.col("geboortedatum") > pl.col("_first"))
                   | (pl.col("geboortedatum") <= pl.col("_first").dt.offset_by("-23y")))
    return _ok_except(tables["jeugdigen"], bad)


@derived("geboortedatum_als_in_verzoek", "jeugdigen")
def geboortedatum_als_in_verzoek(tables: Tables) -> pl.Series:
    """The registered birth date equals the one the aanbieder sent in the youth's JW315 requests to that gemeente."""
    v = tables["verzoeken"].select("gemeente_code", "bsn", pl.col("geboortedatum").alias("_verzoek")).unique()
    j = _rows(tables["jeugdigen"]).join(v, on=["gemeente_code", "bsn"], how="inner")
    return _ok_except(tables["jeugdigen"], j.filter(pl.col("geboortedatum") != pl.col("_verzoek")))


@derived("een_registratie_per_bsn", "jeugdigen")
def een_registratie_per_bsn(tables: Tables) -> pl.Series:
    """A BSN is registered once per gemeente. Of a second registration of the same BSN (e.g. with a typo in the
    name) the one the gemeente's trajecten refer to is kept (else the lowest client_id); the others are flagged."""
    in_care = tables["trajecten"].select("gemeente_code", "client_id").unique().with_columns(pl.lit(True).alias("_care"))
    j = (_rows(tables["jeugdigen"]).filter(pl.col("bsn").is_not_null())
         .join(in_care, on=["gemeente_code", "client_id"], how="left").with_columns(pl.col("_care").fill_null(False))
         .sort("gemeente_code", "bsn", pl.col("_care"), "client_id", descending=[False, False, True, False]))
    bad = j.filter(pl.int_range(pl.len()).over("gemeente_code", "bsn") > 0)
    return _ok_except(tables["jeugdigen"], bad)
