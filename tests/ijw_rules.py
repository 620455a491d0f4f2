"""Data-checkable iJw 3.2 rules as plain polars functions (see ../shared/domain/ijw.md section d).

Every rule takes the generated tables (``{name: pl.DataFrame}``, columns as in synthetic_data/data/dictionary.yaml)
and returns the violating rows: an empty frame when the rule holds. Rules about one table return that table's rows
(all its columns, plus helper columns that explain the violation). Rules that look at several tables at once return
a ``table`` column and a ``key`` column (the table's dictionary key joined with "|") next to the relevant columns.

``RULES`` maps a short id, starting with the iJw rule code(s), to the rule function. Where the iJw documents give no
single code for a check, the id uses the code of the closest rule and a descriptive suffix (noted in the docstring).
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
import polars as pl

from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.dictionary import tables as dictionary_tables
from synthetic_data.privacy import elfproef_valid
from synthetic_data.reference import codelists

Tables = dict[str, pl.DataFrame]
Rule = Callable[[Tables], pl.DataFrame]

RULES: dict[str, Rule] = {}

FAR_FUTURE = dt.date(9999, 12, 31)
TOEWIJZING = ["gemeente_code", "toewijzing_nummer"]
STARTKEY = ["gemeente_code", "agb_code", "toewijzing_nummer", "begindatum"]


def _register(rule_id: str, fn: Rule) -> Rule:
    if rule_id in RULES:
        raise ValueError(f"duplicate rule id {rule_id}")
    fn.rule_id = rule_id  # type: ignore[attr-defined]
    RULES[rule_id] = fn
    return fn


def rule(rule_id: str) -> Callable[[Rule], Rule]:
    return lambda fn: _register(rule_id, fn)


# ---------------------------------------------------------------------------------------------------------- helpers

def key_expr(table: str) -> pl.Expr:
    """The table's dictionary key as one string, e.g. "0147|1000243|2" (dates as YYYY-MM-DD)."""
    return pl.concat_str([pl.col(c).cast(pl.String) for c in dictionary_key(table)], separator="|")


def with_key(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Prefix `table` and `key` columns (for rules that report rows of several tables)."""
    return df.select(pl.lit(table).alias("table"), key_expr(table).alias("key"), pl.all())


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f is not None]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def latest_toewijzing(tables: Tables) -> pl.DataFrame:
    """The latest version (highest versie) of every toewijzing."""
    tw = tables["toewijzingen"]
    return tw.filter(pl.col("versie") == pl.col("versie").max().over(TOEWIJZING)).unique(TOEWIJZING, keep="last")


def _tw_cols(tables: Tables, **renames: str) -> pl.DataFrame:
    """Latest toewijzing versions, only the key and the renamed columns (tw_<col> by default)."""
    return latest_toewijzing(tables).select(*TOEWIJZING, *[pl.col(c).alias(a) for c, a in renames.items()])


def werkdagen(df: pl.DataFrame, start: str, end: str) -> pl.Series:
    """Number of werkdagen (Mon-Fri, no holidays, as the generator) in [start, end); negative if end < start."""
    both = df[start].is_not_null() & df[end].is_not_null()
    fill = dt.date(2000, 1, 3)
    a = df[start].fill_null(fill).to_numpy().astype("datetime64[D]")
    b = df[end].fill_null(fill).to_numpy().astype("datetime64[D]")
    n = pl.Series(np.busday_count(a, b).astype(np.int64))
    return pl.select(pl.when(both).then(n)).to_series()


def _has(tables: Tables, name: str) -> bool:
    return name in tables and tables[name] is not None


# --------------------------------------------------------------------------------------------- CS002 BSN elfproef

BSN_TABLES = ["jeugdigen", "trajecten", "verzoeken", "antwoorden", "toewijzingen", "zorgstarts", "zorgstops", "prestaties"]


def _bsn_rule(table: str) -> Rule:
    def check(tables: Tables) -> pl.DataFrame:
        """CS002: the BSN has 9 digits and passes the elfproef."""
        return tables[table].filter(~elfproef_valid(pl.col("bsn")))
    return check


for _t in BSN_TABLES:
    _register(f"CS002_bsn_elfproef_{_t}", _bsn_rule(_t))


# -------------------------------------------------------------------------------- CS003 / TR018 end >= start

PERIODS = {
    "CS003_toewijzing_einddatum_ge_ingangsdatum": ("toewijzingen", "ingangsdatum", "einddatum"),
    "CS003_verzoek_einddatum_ge_ingangsdatum": ("verzoeken", "toewijzing_ingangsdatum", "toewijzing_einddatum"),
    "CS003_zorgstop_einddatum_ge_begindatum": ("zorgstops", "begindatum", "einddatum"),
    "CS003_prestatie_einddatum_ge_begindatum": ("prestaties", "begindatum", "einddatum"),
    "TR018_traject_einddatum_ge_begindatum": ("trajecten", "begindatum", "einddatum"),
}


def _period_rule(table: str, start: str, end: str) -> Rule:
    def check(tables: Tables) -> pl.DataFrame:
        """CS003/TR018: a (filled) end date is not before the start date of the same period."""
        return tables[table].filter(pl.col(end).is_not_null() & (pl.col(end) < pl.col(start)))
    return check


for _id, (_t, _s, _e) in PERIODS.items():
    _register(_id, _period_rule(_t, _s, _e))


# -------------------------------------------------------------------------------------------- toewijzing fields

@rule("CS335_reden13_only_when_einddatum_eq_ingangsdatum")
def cs335(tables: Tables) -> pl.DataFrame:
    """CS335: RedenWijziging 13 (Verwijderd) only when Einddatum = Ingangsdatum."""
    tw = tables["toewijzingen"]
    return tw.filter((pl.col("reden_wijziging") == "13") & pl.col("einddatum").ne_missing(pl.col("ingangsdatum")))


@rule("CS336_reden_wijziging_not_01")
def cs336(tables: Tables) -> pl.DataFrame:
    """CS336: RedenWijziging 01 is never used."""
    return tables["toewijzingen"].filter(pl.col("reden_wijziging") == "01")


def _allowed_omvang() -> pl.DataFrame:
    pairs = [(e, f) for e, fs in codelists()["eenheid_frequenties"].items() for f in fs]
    return pl.DataFrame({"eenheid": [p[0] for p in pairs], "frequentie": [p[1] for p in pairs]})


def _omvang_rule(table: str) -> Rule:
    def check(tables: Tables) -> pl.DataFrame:
        """CS338/CS343: eenheid and frequentie form an allowed combination (codelists.yaml eenheid_frequenties)."""
        df = tables[table]
        filled = df.filter(pl.col("eenheid").is_not_null() | pl.col("frequentie").is_not_null())
        return filled.join(_allowed_omvang(), on=["eenheid", "frequentie"], how="anti", nulls_equal=False)
    return check


for _t in ["toewijzingen", "verzoeken", "producten"]:
    _register(f"CS338_CS343_eenheid_frequentie_{_t}", _omvang_rule(_t))


# ---------------------------------------------------------------------------------------- code-list membership

# code list name in codelists.yaml -> iJw code-list code (the id prefix)
CODELIST_IDS = {
    "product_categorie": "JZ020",
    "eenheid": "WJ756",
    "frequentie": "WMO757",
    "verwijzer_type": "COD327",
    "reden_beeindiging": "JZ588",
    "reden_wijziging": "JZ002",
    "geslacht": "COD046",
    "debet_credit": "COD043",
    "verzoek_antwoord": "WJ760",
    "reden_afwijzing": "WJ759",
    "retourcode": "WJ001",
}


def codelist_columns(codelist: str) -> list[tuple[str, str]]:
    """(table, column) pairs that the data dictionary ties to `codelist`."""
    return [
        (t, col)
        for t, spec in dictionary_tables().items()
        for col, (_typ, _el, cl, _m) in spec["columns"].items()
        if cl == codelist
    ]


def _codelist_rule(codelist: str) -> Rule:
    def check(tables: Tables) -> pl.DataFrame:
        """Filled values are codes of the iJw code list (XSD enumeration, codelists.yaml)."""
        allowed = list(codelists()[codelist])
        frames = []
        for t, col in codelist_columns(codelist):
            if not _has(tables, t):
                continue
            bad = tables[t].filter(pl.col(col).is_not_null() & ~pl.col(col).is_in(allowed))
            frames.append(bad.select(pl.lit(t).alias("table"), key_expr(t).alias("key"), pl.lit(col).alias("column"),
                                     pl.col(col).alias("value")))
        return _concat(frames)
    return check


for _cl, _code in CODELIST_IDS.items():
    _register(f"{_code}_codelist_{_cl}", _codelist_rule(_cl))


# --------------------------------------------------------------------------------------------------- TR381

PRODUCT_TABLES = ["trajecten", "verzoeken", "toewijzingen", "zorgstarts", "zorgstops", "prestaties"]


@rule("TR381_product_code_in_categorie")
def tr381(tables: Tables) -> pl.DataFrame:
    """TR381: the ProductCode belongs to its ProductCategorie in the gemeente's (inkoopregio's) productcodelijst."""
    regio = tables["gemeenten"].select("gemeente_code", "inkoopregio")
    lijst = tables["producten"].select("inkoopregio", "product_categorie", "product_code")
    frames = []
    for t in PRODUCT_TABLES:
        df = tables[t].filter(pl.col("product_code").is_not_null())
        bad = (
            df.join(regio, on="gemeente_code", how="left")
            .join(lijst, on=["inkoopregio", "product_categorie", "product_code"], how="anti", nulls_equal=False)
        )
        frames.append(with_key(t, bad).select("table", "key", "gemeente_code", "inkoopregio", "product_categorie",
                                              "product_code"))
    return _concat(frames)


# ------------------------------------------------------------------------------------------------- CS089 postcode

@rule("CS089_postcode_format")
def cs089(tables: Tables) -> pl.DataFrame:
    """CS089: a Dutch postcode is 4 digits (no leading 0) and 2 capitals, never SA, SD or SS."""
    pc = pl.col("postcode")
    ok = pc.str.contains(r"^[1-9][0-9]{3}[A-Z]{2}$") & ~pc.str.slice(4, 2).is_in(["SA", "SD", "SS"])
    return tables["jeugdigen"].filter(pc.is_not_null() & ~ok.fill_null(False))


# ------------------------------------------------------------------------------------------------ CD066-CD068

VERWIJZER_MET_AGB = ["02", "03", "04", "05"]


@rule("CD066_CD067_verwijzer_agb_of_naam")
def cd066(tables: Tables) -> pl.DataFrame:
    """CD066/CD067: Verwijzer type 02-05 (huisarts, jeugdarts, GI, medisch specialist) has a ZorgverlenerCode or Naam."""
    v = tables["verzoeken"]
    return v.filter(pl.col("verwijzer_type").is_in(VERWIJZER_MET_AGB)
                    & pl.col("verwijzer_zorgverlenercode").is_null() & pl.col("verwijzer_naam").is_null())


@rule("CD068_verwijzer_geen_agb_bij_ander_type")
def cd068(tables: Tables) -> pl.DataFrame:
    """CD068: for other Verwijzer types the ZorgverlenerCode stays empty."""
    v = tables["verzoeken"]
    return v.filter(~pl.col("verwijzer_type").is_in(VERWIJZER_MET_AGB).fill_null(True)
                    & pl.col("verwijzer_zorgverlenercode").is_not_null())


# ------------------------------------------------------------------------------------------------ CS058

@rule("CS058_status_aanlevering_1_of_3")
def cs058(tables: Tables) -> pl.DataFrame:
    """CS058/OP033x2: StatusAanlevering of JW305/JW307 is 1 or 3 (never 2, never empty)."""
    frames = []
    for t in ["zorgstarts", "zorgstops"]:
        bad = tables[t].filter(~pl.col("status_aanlevering").is_in(["1", "3"]).fill_null(False))
        frames.append(with_key(t, bad).select("table", "key", *STARTKEY, "status_aanlevering"))
    return _concat(frames)


# ------------------------------------------------------------------------------------------ declaratie periods

@rule("CS340_CS100_declaratieperiode_kalendermaand")
def cs340(tables: Tables) -> pl.DataFrame:
    """CS340/CS100: the DeclaratiePeriode is exactly one whole calendar month, starting on or after 2021-01-01."""
    b, e = pl.col("begindatum"), pl.col("einddatum")
    ok = (b.dt.day() == 1) & (e == b.dt.month_end()) & (b >= dt.date(2021, 1, 1))
    return tables["declaraties"].filter(~ok.fill_null(False))


@rule("CS337_OP367_productperiode_een_kalendermaand")
def cs337(tables: Tables) -> pl.DataFrame:
    """CS337/OP367: the ProductPeriode lies within one calendar month."""
    b, e = pl.col("begindatum"), pl.col("einddatum")
    return tables["prestaties"].filter(~(b.dt.truncate("1mo") == e.dt.truncate("1mo")).fill_null(False))


@rule("TR387_TR388_productperiode_grenzen")
def tr387(tables: Tables) -> pl.DataFrame:
    """TR387/TR388 (IV089): the ProductPeriode starts on the 1st of the month or on the toewijzing Ingangsdatum, and
    ends on the last day of the month, on the Einddatum of the latest toewijzing version, or on a zorgstop Einddatum."""
    stops = tables["zorgstops"].group_by(TOEWIJZING).agg(pl.col("einddatum").alias("stop_einddata"))
    p = (
        tables["prestaties"]
        .join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum", einddatum="tw_einddatum"), on=TOEWIJZING, how="left")
        .join(stops, on=TOEWIJZING, how="left")
    )
    b, e = pl.col("begindatum"), pl.col("einddatum")
    start_ok = (b.dt.day() == 1) | (b == pl.col("tw_ingangsdatum")).fill_null(False)
    end_ok = (
        (e == e.dt.month_end())
        | (e == pl.col("tw_einddatum")).fill_null(False)
        | pl.col("stop_einddata").list.contains(e).fill_null(False)
    )
    return p.filter(~(start_ok & end_ok).fill_null(False)).with_columns(
        start_ok.alias("start_ok"), end_ok.alias("end_ok"))


# --------------------------------------------------------------------------------------------------- amounts

@rule("CD087_TR346_bedrag_is_volume_maal_tarief")
def cd087(tables: Tables) -> pl.DataFrame:
    """CD087/TR346 (CS339): if eenheid != 83 the ProductTarief is filled and IngediendBedrag = GeleverdVolume x
    ProductTarief; if eenheid = 83 (euro's) IngediendBedrag = GeleverdVolume."""
    p = tables["prestaties"]
    euro = pl.col("eenheid") == "83"
    expected = pl.when(euro).then(pl.col("geleverd_volume")).otherwise(pl.col("geleverd_volume") * pl.col("product_tarief"))
    return p.with_columns(expected.alias("verwacht_bedrag")).filter(
        pl.col("ingediend_bedrag").ne_missing(pl.col("verwacht_bedrag"))
    )


def _signed(amount: str, sign: str = "debet_credit") -> pl.Expr:
    return pl.when(pl.col(sign) == "C").then(-pl.col(amount)).otherwise(pl.col(amount))


@rule("TR358_totaalbedrag_is_som_prestaties")
def tr358(tables: Tables) -> pl.DataFrame:
    """TR358: TotaalIngediendBedrag (with its DebetCredit sign) equals the signed sum of the declaratie's prestaties."""
    sums = tables["prestaties"].group_by("agb_code", "declaratie_nummer").agg(
        _signed("ingediend_bedrag").sum().alias("som_prestaties"))
    d = tables["declaraties"].join(sums, on=["agb_code", "declaratie_nummer"], how="left")
    return d.with_columns(pl.col("som_prestaties").fill_null(0), _signed("totaal_bedrag").alias("totaal_signed")).filter(
        pl.col("totaal_signed") != pl.col("som_prestaties"))


@rule("CS325_bedrag_nul_is_debet")
def cs325(tables: Tables) -> pl.DataFrame:
    """CS325: an amount of 0 carries DebetCredit D (prestaties, declaraties, declaratie-antwoorden)."""
    amounts = {"prestaties": "ingediend_bedrag", "declaraties": "totaal_bedrag",
               "declaratie_antwoorden": "totaal_toegekend_bedrag"}
    frames = []
    for t, col in amounts.items():
        bad = tables[t].filter((pl.col(col) == 0) & pl.col("debet_credit").ne_missing(pl.lit("D")))
        frames.append(with_key(t, bad).select("table", "key", "agb_code", pl.col(col).alias("bedrag"), "debet_credit"))
    return _concat(frames)


@rule("CD060_vorig_referentie_alleen_en_altijd_bij_credit")
def cd060(tables: Tables) -> pl.DataFrame:
    """CD060: VorigReferentieNummer is filled on credit prestaties, and only there."""
    p = tables["prestaties"]
    return p.filter((pl.col("debet_credit") == "C") != pl.col("vorig_referentie_nummer").is_not_null())


# ------------------------------------------------------------------------------------------ toewijzing numbering

@rule("TR332_toewijzing_nummer_uniek_per_gemeente")
def tr332(tables: Tables) -> pl.DataFrame:
    """TR332/OP275: a ToewijzingNummer identifies one toewijzing per gemeente: all its versions share client, aanbieder
    and product code, and (gemeente, nummer, versie) occurs once."""
    tw = tables["toewijzingen"]
    mixed = pl.any_horizontal(pl.col(c).n_unique().over(TOEWIJZING) > 1 for c in ["bsn", "agb_code", "product_code"])
    dup = pl.struct("gemeente_code", "toewijzing_nummer", "versie").is_duplicated()
    return tw.filter(mixed | dup)


@rule("OP259_geen_overlappende_toewijzingen")
def op259(tables: Tables) -> pl.DataFrame:
    """OP259/OP347: no two toewijzingen (latest versions, withdrawn ones excluded) for the same client, aanbieder and
    product code whose periods overlap."""
    lt = latest_toewijzing(tables).filter(pl.col("reden_wijziging").ne_missing(pl.lit("13"))).select(
        "gemeente_code", "bsn", "agb_code", "product_code", "toewijzing_nummer", "versie", "ingangsdatum",
        pl.col("einddatum").fill_null(FAR_FUTURE).alias("_eind"), "einddatum",
    )
    other = lt.select("gemeente_code", "bsn", "agb_code", "product_code",
                      pl.col("toewijzing_nummer").alias("ander_nummer"),
                      pl.col("ingangsdatum").alias("ander_ingangsdatum"), pl.col("_eind").alias("ander_einddatum"))
    pairs = lt.join(other, on=["gemeente_code", "bsn", "agb_code", "product_code"], how="inner")
    return pairs.filter(
        (pl.col("toewijzing_nummer") != pl.col("ander_nummer"))
        & (pl.col("ingangsdatum") <= pl.col("ander_einddatum"))
        & (pl.col("ander_ingangsdatum") <= pl.col("_eind"))
    ).drop("_eind")


# ------------------------------------------------------------------------------------------------ start / stop

def _toewijzing_parties(tables: Tables) -> pl.DataFrame:
    return tables["toewijzingen"].select("gemeente_code", "toewijzing_nummer", "bsn", "agb_code").unique()


@rule("TR019_start_stop_bij_bestaande_toewijzing")
def tr019(tables: Tables) -> pl.DataFrame:
    """TR019: every JW305/JW307 carries a ToewijzingNummer of an existing JW301 of the same gemeente, for the same
    client (bsn) and addressed to the sending aanbieder."""
    frames = []
    for t in ["zorgstarts", "zorgstops"]:
        bad = tables[t].join(_toewijzing_parties(tables), on=["gemeente_code", "toewijzing_nummer", "bsn", "agb_code"],
                             how="anti", nulls_equal=False)
        frames.append(with_key(t, bad).select("table", "key", *STARTKEY, "bsn"))
    return _concat(frames)


@rule("TR326_OP289_een_actuele_start_per_toewijzing")
def tr326(tables: Tables) -> pl.DataFrame:
    """TR326/OP289: at most one start per toewijzing is current: a further JW305 for the same toewijzing is only
    allowed after the previous start was stopped (its stop Einddatum before the new Begindatum). With no temporary
    stops this means one start per toewijzing."""
    starts = tables["zorgstarts"].filter(pl.col("status_aanlevering") == "1")
    stops = tables["zorgstops"].filter(pl.col("status_aanlevering") == "1").group_by(STARTKEY).agg(
        pl.col("einddatum").max().alias("stop_einddatum"))
    s = starts.join(stops, on=STARTKEY, how="left").sort(*TOEWIJZING, "begindatum", "dagtekening")
    s = s.with_columns(
        pl.col("begindatum").shift(1).over(TOEWIJZING).alias("vorige_begindatum"),
        pl.col("stop_einddatum").shift(1).over(TOEWIJZING).alias("vorige_stop_einddatum"),
        pl.len().over(TOEWIJZING).alias("aantal_starts"),
    )
    return s.filter(pl.col("vorige_begindatum").is_not_null() & (
        pl.col("vorige_stop_einddatum").is_null() | (pl.col("begindatum") <= pl.col("vorige_stop_einddatum"))))


@rule("OP072_TR382_stop_heeft_eerdere_start")
def op072(tables: Tables) -> pl.DataFrame:
    """OP072/TR382: every JW307 has a JW305 with the same key (gemeente, aanbieder, ToewijzingNummer, Begindatum),
    sent earlier or on the same day."""
    starts = tables["zorgstarts"].filter(pl.col("status_aanlevering") == "1").group_by(STARTKEY).agg(
        pl.col("dagtekening").min().alias("start_dagtekening"))
    s = tables["zorgstops"].join(starts, on=STARTKEY, how="left")
    return s.filter(pl.col("start_dagtekening").is_null() | (pl.col("start_dagtekening") > pl.col("dagtekening")))


@rule("TR019_start_begindatum_ge_toewijzing_ingangsdatum")
def start_na_ingang(tables: Tables) -> pl.DataFrame:
    """Start Begindatum is not before the Ingangsdatum of the toewijzing it starts (latest version). No separate iJw
    code: filed under TR019 (a start belongs to its toewijzing)."""
    s = tables["zorgstarts"].join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum"), on=TOEWIJZING, how="left")
    return s.filter(pl.col("begindatum") < pl.col("tw_ingangsdatum"))


# ------------------------------------------------------------------------------------------ prestatie vs toewijzing

@rule("TR338_TR304_prestatie_bij_toewijzing_van_client")
def tr338(tables: Tables) -> pl.DataFrame:
    """TR338/OP276/TR304: every prestatie refers to an existing toewijzing of the same gemeente, for the same client
    (bsn) and addressed to the declaring aanbieder."""
    tw = _toewijzing_parties(tables).group_by(TOEWIJZING).agg(
        pl.col("bsn").alias("tw_bsn"), pl.col("agb_code").alias("tw_agb"))
    p = tables["prestaties"].join(tw, on=TOEWIJZING, how="left")
    ok = pl.col("tw_bsn").list.contains(pl.col("bsn")) & pl.col("tw_agb").list.contains(pl.col("agb_code"))
    return p.filter(~ok.fill_null(False))


@rule("TR339_TR340_TR341_prestatie_product_als_toewijzing")
def tr339(tables: Tables) -> pl.DataFrame:
    """TR339/TR340/TR341: the prestatie's ProductCategorie, ProductCode and Eenheid equal those of the toewijzing."""
    tw = _tw_cols(tables, product_categorie="tw_product_categorie", product_code="tw_product_code", eenheid="tw_eenheid")
    p = tables["prestaties"].join(tw, on=TOEWIJZING, how="inner")
    return p.filter(
        pl.col("product_categorie").ne_missing(pl.col("tw_product_categorie"))
        | pl.col("product_code").ne_missing(pl.col("tw_product_code"))
        | pl.col("eenheid").ne_missing(pl.col("tw_eenheid"))
    )


@rule("TR307_TR308_productperiode_binnen_toewijzing")
def tr307(tables: Tables) -> pl.DataFrame:
    """TR307/TR308/OP279: ProductPeriode begins on or after the toewijzing Ingangsdatum and ends on or before the
    Einddatum of the latest toewijzing version (when filled)."""
    tw = _tw_cols(tables, ingangsdatum="tw_ingangsdatum", einddatum="tw_einddatum")
    p = tables["prestaties"].join(tw, on=TOEWIJZING, how="inner")
    return p.filter((pl.col("begindatum") < pl.col("tw_ingangsdatum"))
                    | (pl.col("tw_einddatum").is_not_null() & (pl.col("einddatum") > pl.col("tw_einddatum"))))


@rule("TR308_prestatie_niet_na_zorgstop")
def na_stop(tables: Tables) -> pl.DataFrame:
    """No product is delivered after care stopped: the ProductPeriode ends on or before the Einddatum of the
    definitive (RedenBeeindiging != 20) JW307 of the toewijzing. Filed under TR308 (period within the toewijzing:
    after a stop the gemeente ends the toewijzing)."""
    stops = tables["zorgstops"].filter((pl.col("status_aanlevering") == "1") & (pl.col("reden_beeindiging") != "20"))
    stops = stops.group_by("gemeente_code", "agb_code", "toewijzing_nummer").agg(
        pl.col("einddatum").max().alias("stop_einddatum"))
    p = tables["prestaties"].join(stops, on=["gemeente_code", "agb_code", "toewijzing_nummer"], how="inner")
    return p.filter(pl.col("einddatum") > pl.col("stop_einddatum"))


def _days(start: str = "begindatum", end: str = "einddatum") -> pl.Expr:
    return (pl.col(end) - pl.col(start)).dt.total_days() + 1


@rule("TR321_geleverd_volume_binnen_toegewezen")
def tr321(tables: Tables) -> pl.DataFrame:
    """TR321: a prestatie's GeleverdVolume is within the toegewezen volume of the latest version, pro-rated to the
    product period: per dag volume x days, per week volume x days / 7, per maand volume x days / days-in-month,
    totaal volume; for eenheid 14 (etmaal) at most the number of days in the period."""
    tw = _tw_cols(tables, volume="tw_volume", frequentie="tw_frequentie")
    p = tables["prestaties"].join(tw, on=TOEWIJZING, how="inner").with_columns(
        _days().alias("dagen"), pl.col("begindatum").dt.month_end().dt.day().cast(pl.Int64).alias("dagen_in_maand"))
    v, f = pl.col("tw_volume"), pl.col("tw_frequentie")
    cap = (
        pl.when(pl.col("eenheid") == "14").then(pl.col("dagen").cast(pl.Float64))
        .when(f == "1").then(v * pl.col("dagen"))
        .when(f == "2").then(v * pl.col("dagen") / 7)
        .when(f == "4").then(v * pl.col("dagen") / pl.col("dagen_in_maand"))
        .when(f == "6").then(v.cast(pl.Float64))
    )
    p = p.with_columns(cap.cast(pl.Float64).alias("max_volume"))
    return p.filter(pl.col("max_volume").is_null() | (pl.col("geleverd_volume") > pl.col("max_volume") + 1e-9))


@rule("TR322_som_volume_binnen_totaal")
def tr322(tables: Tables) -> pl.DataFrame:
    """TR322/OP365: for frequentie 6 (totaal binnen geldigheidsduur) the net delivered volume over all prestaties of a
    toewijzing (debet minus credit) is at most the latest version's volume. Returns all prestaties of such
    toewijzingen."""
    tw = _tw_cols(tables, volume="tw_volume", frequentie="tw_frequentie").filter(pl.col("tw_frequentie") == "6")
    p = tables["prestaties"].join(tw, on=TOEWIJZING, how="inner").with_columns(
        _signed("geleverd_volume").sum().over(TOEWIJZING).alias("netto_volume"))
    return p.filter(pl.col("netto_volume") > pl.col("tw_volume"))


# --------------------------------------------------------------------------------------------- claim identities

@rule("TR333_declaratie_nummer_uniek_alfanumeriek")
def tr333(tables: Tables) -> pl.DataFrame:
    """TR333/OP349 (+ LDT_IdentificatieDeclaratie): DeclaratieNummer is unique per aanbieder, alphanumeric, max 12."""
    d = tables["declaraties"]
    fmt = pl.col("declaratie_nummer").str.contains(r"^[A-Za-z0-9]{1,12}$").fill_null(False)
    return d.filter(pl.struct("agb_code", "declaratie_nummer").is_duplicated() | ~fmt)


@rule("TR314_referentie_nummer_uniek_per_aanbieder")
def tr314(tables: Tables) -> pl.DataFrame:
    """TR314/OP283: ProductReferentie ReferentieNummer is unique per aanbieder."""
    return tables["prestaties"].filter(pl.struct("agb_code", "referentie_nummer").is_duplicated())


@rule("TR389_een_actieve_debet")
def tr389(tables: Tables) -> pl.DataFrame:
    """TR389/TR416: per aanbieder, toewijzing and ProductPeriode-begin at most one debet is active (debets minus
    credits <= 1)."""
    grp = ["agb_code", "gemeente_code", "toewijzing_nummer", "begindatum"]
    p = tables["prestaties"].with_columns(
        ((pl.col("debet_credit") == "D").sum().over(grp).cast(pl.Int64)
         - (pl.col("debet_credit") == "C").sum().over(grp).cast(pl.Int64)).alias("actieve_debets"))
    return p.filter(pl.col("actieve_debets") > 1)


def _credits_with_debet(tables: Tables) -> pl.DataFrame:
    p = tables["prestaties"]
    periode = tables["declaraties"].select("agb_code", "declaratie_nummer", pl.col("begindatum").alias("_decl_begin"))
    debets = p.filter(pl.col("debet_credit") == "D").join(periode, on=["agb_code", "declaratie_nummer"], how="left")
    debets = debets.select(
        "agb_code", pl.col("referentie_nummer").alias("vorig_referentie_nummer"),
        *[pl.col(c).alias(f"debet_{c}") for c in
          ["declaratie_nummer", "_decl_begin", "gemeente_code", "bsn", "toewijzing_nummer", "begindatum", "einddatum",
           "ingediend_bedrag"]],
    )
    credits = p.filter(pl.col("debet_credit") == "C").join(periode, on=["agb_code", "declaratie_nummer"], how="left")
    return credits.join(debets, on=["agb_code", "vorig_referentie_nummer"], how="left")


@rule("TR323_TR390_credit_op_eerdere_debet")
def tr323(tables: Tables) -> pl.DataFrame:
    """TR323/TR390/OP360: each credit's VorigReferentieNummer names a debet prestatie of the same aanbieder, for the
    same toewijzing, client, product period and amount, declared in an earlier or the same declaratieperiode; and a
    debet is credited at most once."""
    c = _credits_with_debet(tables)
    same = [("gemeente_code", "debet_gemeente_code"), ("bsn", "debet_bsn"), ("toewijzing_nummer", "debet_toewijzing_nummer"),
            ("begindatum", "debet_begindatum"), ("einddatum", "debet_einddatum"),
            ("ingediend_bedrag", "debet_ingediend_bedrag")]
    mismatch = pl.any_horizontal(pl.col(a).ne_missing(pl.col(b)) for a, b in same)
    bad = (
        pl.col("debet_declaratie_nummer").is_null()
        | mismatch
        | (pl.col("debet__decl_begin") > pl.col("_decl_begin")).fill_null(True)
        | pl.struct("agb_code", "vorig_referentie_nummer").is_duplicated()
    )
    return c.filter(bad)


@rule("TR316_credit_niet_in_declaratie_van_debet")
def tr316(tables: Tables) -> pl.DataFrame:
    """TR316: a debet line is not credited in the same declaratie (message) that declared it."""
    c = _credits_with_debet(tables)
    return c.filter(pl.col("declaratie_nummer") == pl.col("debet_declaratie_nummer"))


@rule("TR418_tarief_is_contracttarief")
def tr418(tables: Tables) -> pl.DataFrame:
    """TR418: ProductTarief equals the contract tarief of the product in the gemeente's inkoopregio (eenheid != 83)."""
    regio = tables["gemeenten"].select("gemeente_code", "inkoopregio")
    lijst = tables["producten"].select("inkoopregio", "product_categorie", "product_code", pl.col("tarief").alias("contract_tarief"))
    p = tables["prestaties"].filter(pl.col("eenheid").ne_missing(pl.lit("83"))).join(
        regio, on="gemeente_code", how="left").join(lijst, on=["inkoopregio", "product_categorie", "product_code"], how="left")
    return p.filter(pl.col("product_tarief").ne_missing(pl.col("contract_tarief")))


# --------------------------------------------------------------------------------------------------- verzoeken

@rule("TR347_referentie_aanbieder_uniek")
def tr347(tables: Tables) -> pl.DataFrame:
    """TR347/OP361: ReferentieAanbieder of a JW315 is unique per aanbieder."""
    return tables["verzoeken"].filter(pl.struct("agb_code", "referentie_aanbieder").is_duplicated())


@rule("TR379_toewijzing_referentie_bestaat")
def tr379(tables: Tables) -> pl.DataFrame:
    """TR379: a toewijzing with a ReferentieAanbieder honours an existing JW315 of that aanbieder to that gemeente for
    the same client."""
    v = tables["verzoeken"].select("gemeente_code", "agb_code", "referentie_aanbieder", "bsn").unique()
    tw = tables["toewijzingen"].filter(pl.col("referentie_aanbieder").is_not_null())
    return tw.join(v, on=["gemeente_code", "agb_code", "referentie_aanbieder", "bsn"], how="anti")


# --------------------------------------------------------------------------------------------------- timeliness

@rule("OP271_start_binnen_5_werkdagen")
def op271(tables: Tables) -> pl.DataFrame:
    """OP271 (+OP011): the JW305 is sent on or after the Begindatum and within 5 werkdagen of it."""
    s = tables["zorgstarts"]
    s = s.with_columns(werkdagen(s, "begindatum", "dagtekening").alias("werkdagen"))
    return s.filter((pl.col("dagtekening") < pl.col("begindatum")) | (pl.col("werkdagen") > 5))


@rule("OP272_stop_binnen_5_werkdagen")
def op272(tables: Tables) -> pl.DataFrame:
    """OP272: the JW307 is sent on or after the Einddatum and within 5 werkdagen of it."""
    s = tables["zorgstops"]
    s = s.with_columns(werkdagen(s, "einddatum", "dagtekening").alias("werkdagen"))
    return s.filter((pl.col("dagtekening") < pl.col("einddatum")) | (pl.col("werkdagen") > 5))


@rule("OP274_antwoord_op_verzoek_binnen_5_werkdagen")
def op274(tables: Tables) -> pl.DataFrame:
    """OP274: the gemeente answers a JW315 (JW319 or the first JW301 version carrying its ReferentieAanbieder) on or
    after its dagtekening and within 5 werkdagen; an "in onderzoek" JW319 (VerzoekAntwoord 2) may be followed by a
    second answer within 5 more werkdagen. A verzoek without any answer in the data is not judged (the answer may lie
    after the generated years)."""
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
        pl.col("antwoord").slice(1, 1).first().alias("antwoord2"),
    )
    v = tables["verzoeken"].join(firsts, on=k, how="inner")
    v = v.with_columns(werkdagen(v, "dagtekening", "antwoord1_datum").alias("werkdagen1"),
                       werkdagen(v, "antwoord1_datum", "antwoord2_datum").alias("werkdagen2"))
    late1 = (pl.col("antwoord1_datum") < pl.col("dagtekening")) | (pl.col("werkdagen1") > 5)
    late2 = (pl.col("antwoord1") == "JW319-2") & (pl.col("werkdagen2") > 5).fill_null(False)
    return v.filter(late1 | late2)


@rule("OP090x4_declaratie_antwoord_binnen_10_werkdagen")
def op090x4(tables: Tables) -> pl.DataFrame:
    """OP090x4: the JW325 is sent on or after the JW323 dagtekening and within 10 werkdagen of it."""
    d = tables["declaraties"].select("agb_code", "declaratie_nummer", pl.col("dagtekening").alias("declaratie_dagtekening"))
    a = tables["declaratie_antwoorden"].join(d, on=["agb_code", "declaratie_nummer"], how="inner")
    a = a.with_columns(werkdagen(a, "declaratie_dagtekening", "dagtekening").alias("werkdagen"))
    return a.filter((pl.col("dagtekening") < pl.col("declaratie_dagtekening")) | (pl.col("werkdagen") > 10))


# ------------------------------------------------------------------------------------------ message completeness

@rule("OP090x4_een_antwoord_per_declaratie")
def een_antwoord(tables: Tables) -> pl.DataFrame:
    """OP090x4: every JW323 gets exactly one JW325, and every JW325 answers an existing JW323 (same gemeente)."""
    k = ["agb_code", "declaratie_nummer"]
    d = tables["declaraties"].select(*k, "gemeente_code")
    a = tables["declaratie_antwoorden"].select(*k, "gemeente_code")
    n_ans = a.group_by(k).agg(pl.len().alias("aantal_antwoorden"), pl.col("gemeente_code").alias("antwoord_gemeenten"))
    n_dec = d.group_by(k).agg(pl.len().alias("aantal_declaraties"))
    dd = d.join(n_ans, on=k, how="left").join(n_dec, on=k, how="left").with_columns(pl.col("aantal_antwoorden").fill_null(0))
    bad_d = dd.filter((pl.col("aantal_antwoorden") != 1) | (pl.col("aantal_declaraties") != 1)
                      | ~pl.col("antwoord_gemeenten").list.contains(pl.col("gemeente_code")).fill_null(False))
    bad_a = a.join(d, on=[*k, "gemeente_code"], how="anti")
    return _concat([bad_d.select(pl.lit("declaraties").alias("table"), *k, "gemeente_code", "aantal_antwoorden"),
                    bad_a.select(pl.lit("declaratie_antwoorden").alias("table"), *k, "gemeente_code")])


@rule("JW323_prestatie_heeft_declaratie")
def prestatie_header(tables: Tables) -> pl.DataFrame:
    """A JW323 Prestatie only exists inside a Declaratie: every prestatie has a declaratie header of the same
    aanbieder and gemeente."""
    d = tables["declaraties"].select("agb_code", "declaratie_nummer", "gemeente_code")
    return tables["prestaties"].join(d, on=["agb_code", "declaratie_nummer", "gemeente_code"], how="anti")


@rule("TR319_productperiode_niet_na_declaratieperiode")
def tr319(tables: Tables) -> pl.DataFrame:
    """TR319/OP354: the ProductPeriode lies in the declaratieperiode of its declaratie or an earlier one."""
    d = tables["declaraties"].select("agb_code", "declaratie_nummer", pl.col("einddatum").alias("declaratie_einddatum"))
    p = tables["prestaties"].join(d, on=["agb_code", "declaratie_nummer"], how="inner")
    return p.filter(pl.col("einddatum") > pl.col("declaratie_einddatum"))
