"""The clean generated dataset obeys the data-checkable iJw 3.2 rules (tests/ijw_rules.py), and every rule fires on
a dataset with one record broken the way the rule forbids.

A breaker takes the clean tables and returns ``(broken_tables, key)``: a shallow copy of the dict with one table
replaced, and the key of the broken record as ``{column: value}``. The rule must report a row with those values.
Single-table rules report the table's own columns, so the key is the table's dictionary key; rules over several
tables report ``table`` and ``key`` (the dictionary key joined with "|").
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import polars as pl
import pytest

from ijw_rules import (BSN_TABLES, CODELIST_IDS, PERIODS, RULES, STARTKEY, TOEWIJZING, latest_toewijzing)
from synthetic_data import GeneratorConfig, generate
from synthetic_data.dictionary import key as dictionary_key

Tables = dict[str, pl.DataFrame]
Key = dict[str, object]
Breaker = Callable[[Tables], tuple[Tables, Key]]

DAY = pl.duration(days=1)


@pytest.fixture(scope="module")
def tables() -> Tables:
    return generate(GeneratorConfig(region="0147", years="2023-2024", seed=7, scale=1.0))


# ------------------------------------------------------------------------------------------------ breaker helpers

def first_index(df: pl.DataFrame, cond: pl.Expr = pl.lit(True)) -> int:
    """Row number of the first row matching `cond` (the breaker needs a suitable record to break)."""
    idx = df.with_row_index("_i").filter(cond)["_i"]
    assert len(idx), f"no row matches {cond}: the breaker needs a different target"
    return int(idx[0])


def edit(tables: Tables, name: str, idx: int, **changes) -> tuple[Tables, dict]:
    """Copy of `tables` with row `idx` of table `name` changed: column=value or column=expression (evaluated on the
    whole frame, kept only for that row). Returns the new tables and the changed row."""
    df = tables[name]
    at = pl.int_range(pl.len()) == idx
    cols = []
    for col, val in changes.items():
        new = val if isinstance(val, pl.Expr) else pl.lit(val, dtype=df.schema[col])
        cols.append(pl.when(at).then(new).otherwise(pl.col(col)).cast(df.schema[col]).alias(col))
    out = dict(tables)
    out[name] = df.with_columns(cols)
    return out, out[name].row(idx, named=True)


def append(tables: Tables, name: str, row: pl.DataFrame) -> tuple[Tables, dict]:
    """Copy of `tables` with `row` (a one-row frame of the table's schema) appended to table `name`."""
    out = dict(tables)
    out[name] = pl.concat([tables[name], row.select(tables[name].columns).cast(tables[name].schema)])
    return out, row.row(0, named=True)


def natural_key(name: str, row: dict) -> Key:
    return {c: row[c] for c in dictionary_key(name)}


def table_key(name: str, row: dict) -> Key:
    return {"table": name, "key": "|".join(str(row[c]) for c in dictionary_key(name))}


def other_bsn(df: pl.DataFrame, bsn: str) -> str:
    """A valid BSN of another client in the same table."""
    return df.filter(pl.col("bsn") != bsn)["bsn"][0]


def bump_last_digit(col: str = "bsn") -> pl.Expr:
    c = pl.col(col)
    return c.str.slice(0, 8) + ((c.str.slice(8, 1).cast(pl.Int64) + 1) % 10).cast(pl.String)


BREAKERS: dict[str, Breaker] = {}


def breaker(rule_id: str) -> Callable[[Breaker], Breaker]:
    def deco(fn: Breaker) -> Breaker:
        assert rule_id not in BREAKERS, rule_id
        BREAKERS[rule_id] = fn
        return fn
    return deco


# ------------------------------------------------------------------------------------------------------ breakers

def _bsn_breaker(name: str) -> Breaker:
    def brk(t: Tables):
        new, row = edit(t, name, first_index(t[name], pl.col("bsn").is_not_null()), bsn=bump_last_digit())
        return new, natural_key(name, row)
    return brk


for _t in BSN_TABLES:
    BREAKERS[f"CS002_bsn_elfproef_{_t}"] = _bsn_breaker(_t)


def _period_breaker(name: str, start: str, end: str) -> Breaker:
    def brk(t: Tables):
        idx = first_index(t[name], pl.col(end).is_not_null())
        new, row = edit(t, name, idx, **{end: pl.col(start) - DAY})
        return new, natural_key(name, row)
    return brk


for _id, (_t, _s, _e) in PERIODS.items():
    BREAKERS[_id] = _period_breaker(_t, _s, _e)


@breaker("CS335_reden13_only_when_einddatum_eq_ingangsdatum")
def _(t):
    idx = first_index(t["toewijzingen"], pl.col("einddatum") > pl.col("ingangsdatum"))
    new, row = edit(t, "toewijzingen", idx, reden_wijziging="13")
    return new, natural_key("toewijzingen", row)


@breaker("CS336_reden_wijziging_not_01")
def _(t):
    new, row = edit(t, "toewijzingen", first_index(t["toewijzingen"], pl.col("versie") > 1), reden_wijziging="01")
    return new, natural_key("toewijzingen", row)


def _omvang_breaker(name: str) -> Breaker:
    def brk(t: Tables):
        # etmaal, dagdeel, euro's and stuks (inspanning) may not be per dag
        idx = first_index(t[name], pl.col("eenheid").is_in(["14", "16", "83", "84"]))
        new, row = edit(t, name, idx, frequentie="1")
        return new, natural_key(name, row)
    return brk


for _t in ["toewijzingen", "verzoeken", "producten"]:
    BREAKERS[f"CS338_CS343_eenheid_frequentie_{_t}"] = _omvang_breaker(_t)


CODELIST_TARGETS = {  # code list -> (table, column) to break
    "product_categorie": ("toewijzingen", "product_categorie"),
    "eenheid": ("prestaties", "eenheid"),
    "frequentie": ("verzoeken", "frequentie"),
    "verwijzer_type": ("verzoeken", "verwijzer_type"),
    "reden_beeindiging": ("zorgstops", "reden_beeindiging"),
    "reden_wijziging": ("toewijzingen", "reden_wijziging"),
    "geslacht": ("jeugdigen", "geslacht"),
    "debet_credit": ("prestaties", "debet_credit"),
    "verzoek_antwoord": ("antwoorden", "verzoek_antwoord"),
    "reden_afwijzing": ("antwoorden", "reden_afwijzing"),
    "retourcode": ("declaratie_antwoorden", "retourcode"),
}


def _codelist_breaker(name: str, col: str) -> Breaker:
    def brk(t: Tables):
        new, row = edit(t, name, first_index(t[name], pl.col(col).is_not_null()), **{col: "X9"})
        return new, {**table_key(name, row), "column": col, "value": "X9"}
    return brk


for _cl, _code in CODELIST_IDS.items():
    BREAKERS[f"{_code}_codelist_{_cl}"] = _codelist_breaker(*CODELIST_TARGETS[_cl])


@breaker("TR381_product_code_in_categorie")
def _(t):
    # a 45 (ambulant) product code declared under categorie 54 (jeugd-ggz)
    idx = first_index(t["toewijzingen"], pl.col("product_categorie") == "45")
    new, row = edit(t, "toewijzingen", idx, product_categorie="54")
    return new, table_key("toewijzingen", row)


@breaker("CS089_postcode_format")
def _(t):
    new, row = edit(t, "jeugdigen", 0, postcode=pl.col("postcode").str.slice(0, 4) + "SA")
    return new, natural_key("jeugdigen", row)


@breaker("CD066_CD067_verwijzer_agb_of_naam")
def _(t):
    idx = first_index(t["verzoeken"], pl.col("verwijzer_type") == "02")
    new, row = edit(t, "verzoeken", idx, verwijzer_naam=None, verwijzer_zorgverlenercode=None)
    return new, natural_key("verzoeken", row)


@breaker("CD068_verwijzer_geen_agb_bij_ander_type")
def _(t):
    # a huisarts referral relabelled as zelfverwijzer keeps its AGB code
    idx = first_index(t["verzoeken"], (pl.col("verwijzer_type") == "02") & pl.col("verwijzer_zorgverlenercode").is_not_null())
    new, row = edit(t, "verzoeken", idx, verwijzer_type="06")
    return new, natural_key("verzoeken", row)


@breaker("CS058_status_aanlevering_1_of_3")
def _(t):
    new, row = edit(t, "zorgstarts", 0, status_aanlevering="2")
    return new, table_key("zorgstarts", row)


@breaker("CS340_CS100_declaratieperiode_kalendermaand")
def _(t):
    new, row = edit(t, "declaraties", 0, einddatum=pl.col("einddatum") - DAY)
    return new, natural_key("declaraties", row)


@breaker("CS337_OP367_productperiode_een_kalendermaand")
def _(t):
    idx = first_index(t["prestaties"], pl.col("einddatum") == pl.col("einddatum").dt.month_end())
    new, row = edit(t, "prestaties", idx, einddatum=pl.col("einddatum") + DAY)
    return new, natural_key("prestaties", row)


@breaker("TR387_TR388_productperiode_grenzen")
def _(t):
    # a period that starts on the 2nd while the toewijzing did not start that day
    ing = latest_toewijzing(t).select(*TOEWIJZING, pl.col("ingangsdatum").alias("_ing"))
    p = t["prestaties"].join(ing, on=TOEWIJZING, how="left", maintain_order="left")
    idx = first_index(p, (pl.col("begindatum").dt.day() == 1) & (pl.col("_ing") != pl.col("begindatum") + DAY)
                      & (pl.col("einddatum") > pl.col("begindatum") + DAY))
    new, row = edit(t, "prestaties", idx, begindatum=pl.col("begindatum") + DAY)
    return new, natural_key("prestaties", row)


@breaker("CD087_TR346_bedrag_is_volume_maal_tarief")
def _(t):
    new, row = edit(t, "prestaties", first_index(t["prestaties"], pl.col("eenheid") != "83"),
                    ingediend_bedrag=pl.col("ingediend_bedrag") + 1)
    return new, natural_key("prestaties", row)


@breaker("TR358_totaalbedrag_is_som_prestaties")
def _(t):
    new, row = edit(t, "declaraties", 0, totaal_bedrag=pl.col("totaal_bedrag") + 1)
    return new, natural_key("declaraties", row)


@breaker("CS325_bedrag_nul_is_debet")
def _(t):
    new, row = edit(t, "prestaties", first_index(t["prestaties"], pl.col("debet_credit") == "C"), ingediend_bedrag=0)
    return new, table_key("prestaties", row)


@breaker("CD060_vorig_referentie_alleen_en_altijd_bij_credit")
def _(t):
    new, row = edit(t, "prestaties", first_index(t["prestaties"], pl.col("debet_credit") == "D"),
                    vorig_referentie_nummer="X1")
    return new, natural_key("prestaties", row)


@breaker("TR332_toewijzing_nummer_uniek_per_gemeente")
def _(t):
    tw = t["toewijzingen"]
    idx = first_index(tw, pl.col("versie") == 2)
    new, row = edit(t, "toewijzingen", idx, bsn=other_bsn(tw, tw["bsn"][idx]))
    return new, natural_key("toewijzingen", row)


@breaker("OP259_geen_overlappende_toewijzingen")
def _(t):
    # a second toewijzing number for the same client, aanbieder, product and period
    lt = latest_toewijzing(t).head(1)
    dup = lt.with_columns(pl.lit(t["toewijzingen"]["toewijzing_nummer"].max() + 1).alias("toewijzing_nummer"),
                          pl.lit(1).alias("versie"), pl.lit(None, pl.String).alias("reden_wijziging"))
    new, row = append(t, "toewijzingen", dup)
    return new, {"gemeente_code": row["gemeente_code"], "toewijzing_nummer": row["toewijzing_nummer"]}


@breaker("TR019_start_stop_bij_bestaande_toewijzing")
def _(t):
    new, row = edit(t, "zorgstops", 0, bsn=other_bsn(t["zorgstops"], t["zorgstops"]["bsn"][0]))
    return new, table_key("zorgstops", row)


@breaker("TR326_OP289_een_actuele_start_per_toewijzing")
def _(t):
    # a second start a week after a start that was never stopped
    open_starts = t["zorgstarts"].join(t["zorgstops"], on=STARTKEY, how="anti")
    dup = open_starts.head(1).with_columns(pl.col("begindatum") + pl.duration(days=7),
                                           pl.col("dagtekening") + pl.duration(days=7))
    new, row = append(t, "zorgstarts", dup)
    return new, natural_key("zorgstarts", row)


@breaker("OP072_TR382_stop_heeft_eerdere_start")
def _(t):
    new, row = edit(t, "zorgstops", 0, begindatum=pl.col("begindatum") + DAY)
    return new, natural_key("zorgstops", row)


@breaker("TR019_start_begindatum_ge_toewijzing_ingangsdatum")
def _(t):
    new, row = edit(t, "zorgstarts", 0, begindatum=pl.col("toewijzing_ingangsdatum") - DAY)
    return new, natural_key("zorgstarts", row)


@breaker("TR338_TR304_prestatie_bij_toewijzing_van_client")
def _(t):
    new, row = edit(t, "prestaties", 0, bsn=other_bsn(t["prestaties"], t["prestaties"]["bsn"][0]))
    return new, natural_key("prestaties", row)


@breaker("TR339_TR340_TR341_prestatie_product_als_toewijzing")
def _(t):
    new, row = edit(t, "prestaties", 0, eenheid=pl.when(pl.col("eenheid") == "01").then(pl.lit("04")).otherwise(pl.lit("01")))
    return new, natural_key("prestaties", row)


@breaker("TR307_TR308_productperiode_binnen_toewijzing")
def _(t):
    # a period that starts the day before the toewijzing (periods not on the 1st start on the Ingangsdatum)
    idx = first_index(t["prestaties"], pl.col("begindatum").dt.day() != 1)
    new, row = edit(t, "prestaties", idx, begindatum=pl.col("begindatum") - DAY)
    return new, natural_key("prestaties", row)


@breaker("TR308_prestatie_niet_na_zorgstop")
def _(t):
    stops = t["zorgstops"].select("gemeente_code", "agb_code", "toewijzing_nummer", pl.col("einddatum").alias("_stop"))
    p = t["prestaties"].join(stops, on=["gemeente_code", "agb_code", "toewijzing_nummer"], how="left",
                             maintain_order="left")
    idx = first_index(p, (pl.col("einddatum") == pl.col("_stop")) & (pl.col("einddatum") != pl.col("einddatum").dt.month_end()))
    new, row = edit(t, "prestaties", idx, einddatum=pl.col("einddatum") + DAY)
    return new, natural_key("prestaties", row)


@breaker("TR321_geleverd_volume_binnen_toegewezen")
def _(t):
    new, row = edit(t, "prestaties", 0, geleverd_volume=pl.col("geleverd_volume") * 1000 + 1000)
    return new, natural_key("prestaties", row)


@breaker("TR322_som_volume_binnen_totaal")
def _(t):
    tw = latest_toewijzing(t).filter(pl.col("frequentie") == "6").select(*TOEWIJZING, pl.col("volume").alias("_vol"))
    p = t["prestaties"].join(tw, on=TOEWIJZING, how="left", maintain_order="left")
    idx = first_index(p, pl.col("_vol").is_not_null() & (pl.col("debet_credit") == "D"))
    new, row = edit(t, "prestaties", idx, geleverd_volume=p["_vol"][idx] + 1)
    return new, natural_key("prestaties", row)


@breaker("TR333_declaratie_nummer_uniek_alfanumeriek")
def _(t):
    d = t["declaraties"]
    idx = first_index(d, pl.col("agb_code") == pl.col("agb_code").shift(1))
    new, row = edit(t, "declaraties", idx, declaratie_nummer=d["declaratie_nummer"][idx - 1])
    return new, natural_key("declaraties", row)


@breaker("TR314_referentie_nummer_uniek_per_aanbieder")
def _(t):
    p = t["prestaties"]
    idx = first_index(p, pl.col("agb_code") == pl.col("agb_code").shift(1))
    new, row = edit(t, "prestaties", idx, referentie_nummer=p["referentie_nummer"][idx - 1])
    return new, natural_key("prestaties", row)


@breaker("TR389_een_actieve_debet")
def _(t):
    # the same month claimed again with a new reference, without a credit in between
    p = t["prestaties"]
    dup = p.filter(pl.col("debet_credit") == "D").head(1).with_columns(pl.col("referentie_nummer") + "9")
    new, row = append(t, "prestaties", dup)
    return new, natural_key("prestaties", row)


@breaker("TR323_TR390_credit_op_eerdere_debet")
def _(t):
    new, row = edit(t, "prestaties", first_index(t["prestaties"], pl.col("debet_credit") == "C"),
                    vorig_referentie_nummer="ONBEKEND")
    return new, natural_key("prestaties", row)


@breaker("TR316_credit_niet_in_declaratie_van_debet")
def _(t):
    p = t["prestaties"]
    idx = first_index(p, pl.col("debet_credit") == "C")
    credit = p.row(idx, named=True)
    debet = p.filter((pl.col("agb_code") == credit["agb_code"])
                     & (pl.col("referentie_nummer") == credit["vorig_referentie_nummer"])).row(0, named=True)
    new, row = edit(t, "prestaties", idx, declaratie_nummer=debet["declaratie_nummer"])
    return new, natural_key("prestaties", row)


@breaker("TR418_tarief_is_contracttarief")
def _(t):
    idx = first_index(t["prestaties"], pl.col("eenheid") != "83")
    new, row = edit(t, "prestaties", idx, product_tarief=pl.col("product_tarief") + 1,
                    ingediend_bedrag=pl.col("geleverd_volume") * (pl.col("product_tarief") + 1))
    return new, natural_key("prestaties", row)


@breaker("TR347_referentie_aanbieder_uniek")
def _(t):
    v = t["verzoeken"]
    idx = first_index(v, pl.col("agb_code") == pl.col("agb_code").shift(1))
    new, row = edit(t, "verzoeken", idx, referentie_aanbieder=v["referentie_aanbieder"][idx - 1])
    return new, natural_key("verzoeken", row)


@breaker("TR379_toewijzing_referentie_bestaat")
def _(t):
    idx = first_index(t["toewijzingen"], pl.col("referentie_aanbieder").is_not_null())
    new, row = edit(t, "toewijzingen", idx, referentie_aanbieder="VOTONBEKEND")
    return new, natural_key("toewijzingen", row)


@breaker("OP271_start_binnen_5_werkdagen")
def _(t):
    new, row = edit(t, "zorgstarts", 0, dagtekening=pl.col("begindatum") + pl.duration(days=14))
    return new, natural_key("zorgstarts", row)


@breaker("OP272_stop_binnen_5_werkdagen")
def _(t):
    new, row = edit(t, "zorgstops", 0, dagtekening=pl.col("einddatum") + pl.duration(days=14))
    return new, natural_key("zorgstops", row)


@breaker("OP274_antwoord_op_verzoek_binnen_5_werkdagen")
def _(t):
    # a verzoek sent a month before its (JW319) answer
    answered = t["antwoorden"]["referentie_aanbieder"]
    idx = first_index(t["verzoeken"], pl.col("referentie_aanbieder").is_in(answered.implode()))
    new, row = edit(t, "verzoeken", idx, dagtekening=pl.col("dagtekening") - pl.duration(days=30))
    return new, natural_key("verzoeken", row)


@breaker("OP090x4_declaratie_antwoord_binnen_10_werkdagen")
def _(t):
    new, row = edit(t, "declaratie_antwoorden", 0, dagtekening=pl.col("dagtekening") + pl.duration(days=30))
    return new, natural_key("declaratie_antwoorden", row)


@breaker("OP090x4_een_antwoord_per_declaratie")
def _(t):
    a = t["declaratie_antwoorden"]
    row = a.row(0, named=True)
    new = dict(t)
    new["declaratie_antwoorden"] = a.slice(1)
    return new, {"table": "declaraties", "agb_code": row["agb_code"], "declaratie_nummer": row["declaratie_nummer"]}


@breaker("JW323_prestatie_heeft_declaratie")
def _(t):
    new, row = edit(t, "prestaties", 0, declaratie_nummer="ONBEKEND")
    return new, natural_key("prestaties", row)


@breaker("TR319_productperiode_niet_na_declaratieperiode")
def _(t):
    # a product period in the month after the declaratie's period
    p = t["prestaties"].row(0, named=True)
    d = t["declaraties"].filter((pl.col("agb_code") == p["agb_code"])
                                & (pl.col("declaratie_nummer") == p["declaratie_nummer"])).row(0, named=True)
    begin = d["einddatum"] + dt.timedelta(days=1)
    new, row = edit(t, "prestaties", 0, begindatum=begin, einddatum=pl.lit(begin).dt.month_end())
    return new, natural_key("prestaties", row)


# --------------------------------------------------------------------------------------------------------- tests

def _show(df: pl.DataFrame, n: int = 5) -> str:
    with pl.Config(tbl_cols=-1, tbl_width_chars=400, fmt_str_lengths=40):
        return str(df.head(n))


def test_every_rule_has_a_breaker():
    assert set(RULES) == set(BREAKERS)


@pytest.mark.parametrize("rule_id", list(RULES))
def test_clean_data_obeys_rule(tables, rule_id):
    bad = RULES[rule_id](tables)
    assert bad.height == 0, f"{rule_id}: {bad.height} violating rows in the clean dataset, e.g.\n{_show(bad)}"


@pytest.mark.parametrize("rule_id", list(RULES))
def test_rule_fires_on_bad_data(tables, rule_id):
    broken, key = BREAKERS[rule_id](tables)
    assert broken is not tables
    bad = RULES[rule_id](broken)
    assert bad.height >= 1, f"{rule_id} did not fire on the broken record {key}"
    missing = [c for c in key if c not in bad.columns]
    assert not missing, f"{rule_id}: result lacks key columns {missing}"
    hit = bad.filter(pl.all_horizontal([pl.col(c) == v for c, v in key.items()]))
    assert hit.height >= 1, f"{rule_id}: broken record {key} not among the reported rows:\n{_show(bad)}"
