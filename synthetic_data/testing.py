"""Testing tools for data-quality checks on the sandbox's iJw tables (model: `polars.testing`).

    from synthetic_data.testing import small_tables, break_rule, inject
    tables = small_tables()                                    # a small valid dataset, built once per process
    dirty, keys = break_rule("TR321_geleverd_volume_binnen_toegewezen", tables)
    dirty, keys = inject("prestatie_after_stop", tables, n=3)  # keys: the ground truth of the injected records

- `small_tables()` (and the pytest fixture `ijw_tables`): one small gemeente (0147 Borne, 2024, scale 0.2,
  about 3,100 records; about half a second to build), cached. Every registry rule holds on it (the claim rules on
  the lines the gemeente accepted; the timeliness rules of `PROCESS_NOISE_RULES` at their realistic rate).
- `break_rule(rule_id, tables)`: a copy of the tables with one clean record broken so that the rule must report it,
  and `keys` (table, key) of the broken record. The breakers are written apart from the rule implementations
  (expectations/derived.py): they are the proof that each rule fires. `BREAKERS` lists them by rule id.
- `inject(fault_type, tables, n, seed)`: n records dirtied with one fault type of the fault catalogue, and their
  ground truth (table, key, fault_type, rule_id, ...), as `synthetic_data.faults.inject_faults` makes it.
- Hypothesis strategies (need `pip install jeugdzorg-zandbak[testing]`; hypothesis is imported when one is built):
  valid values `bsns()`, `agb_codes()`, `postcodes()`, `codes(codelist)`; `records(table)` valid records of a table
  (as dicts, drawn from a valid dataset so that the cross-table rules hold too); `datasets()` valid small datasets;
  `broken(rule_id)` (clean, dirty, keys) triples from them, for "holds on valid data, fires on broken data" properties.

The pytest plugin (registered as entry point `pytest11: zandbak`; or add `pytest_plugins = ["synthetic_data.testing"]`
to a conftest.py) provides the fixtures `ijw_config`, `ijw_tables`, `break_rule` and `inject_fault`.
A key is the table's dictionary key joined with "|", dates as YYYY-MM-DD (`synthetic_data.ijw.key_expr`).
"""
from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Callable

import polars as pl

from .config import GeneratorConfig
from .faults import catalogue
from .ijw import STARTKEY, TOEWIJZING, key_expr, latest_toewijzing, record_key

__all__ = ["SMALL_CONFIG", "PROCESS_NOISE_RULES", "small_tables", "break_rule", "inject", "BREAKERS", "breaker", "edit", "append",
           "first_index", "keys_frame", "with_key", "ijw_config", "ijw_tables", "bsns", "agb_codes", "postcodes",
           "codes", "records", "datasets", "broken"]

Tables = dict[str, pl.DataFrame]
Broken = tuple[Tables, str, str]            # (tables with one record broken, its table, its key)
Breaker = Callable[[Tables], Broken]

SMALL_CONFIG = GeneratorConfig(region="0147", years="2024", seed=7, scale=0.2)
# --- issue 12: claims
# WARN rules the clean process itself breaks at a realistic rate (timeliness), with the band of the share of the
# rule's table that breaks them on clean data: they hold on no dataset, so a finding of theirs is no fault sign.
# The WARN timeliness rules that the clean process breaks at a realistic rate (late messages are normal behaviour,
# `normal_process` in the fault catalogue) -> the band of their records it breaks (`clean_share`).
PROCESS_NOISE_RULES = {f["rule_id"]: tuple(f["clean_share"]) for f in catalogue() if f.get("normal_process")}
DAY = pl.duration(days=1)


@cache
def _small(config: GeneratorConfig) -> tuple[tuple[str, pl.DataFrame], ...]:
    from .generate import generate

    return tuple(generate(config).items())


def small_tables(config: GeneratorConfig = SMALL_CONFIG) -> Tables:
    """A small valid dataset (default SMALL_CONFIG), generated once per process per config; a fresh dict each call
    (polars frames are immutable, so a test cannot spoil another's copy)."""
    return dict(_small(config))


# --------------------------------------------------------------------------------------------------- breaking

def keys_frame(rows: list[tuple[str, str]]) -> pl.DataFrame:
    """(table, key) pairs as a frame, the shape of findings and ground truth."""
    return pl.DataFrame(rows, schema={"table": pl.String, "key": pl.String}, orient="row")


def first_index(df: pl.DataFrame, cond: pl.Expr = pl.lit(True)) -> int:
    """Row number of the first row matching `cond` (a breaker needs a suitable record to break)."""
    idx = df.with_row_index("_i").filter(cond)["_i"]
    if not len(idx):
        raise ValueError(f"no row matches {cond}: this dataset has no record this breaker can break")
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
    """Copy of `tables` with `row` (a one-row frame of the table's columns) appended to table `name`."""
    out = dict(tables)
    out[name] = pl.concat([tables[name], row.select(tables[name].columns).cast(tables[name].schema)])
    return out, row.row(0, named=True)


BREAKERS: dict[str, Breaker] = {}


def breaker(rule_id: str) -> Callable[[Callable[[Tables], tuple[Tables, str, dict]]], Breaker]:
    """Register a breaker for `rule_id`: it returns (tables, table, broken row) and is stored returning the key."""
    def deco(fn):
        if rule_id in BREAKERS:
            raise ValueError(f"breaker for {rule_id} registered twice")

        def brk(tables: Tables) -> Broken:
            new, table, row = fn(tables)
            return new, table, record_key(table, row)
        brk.__doc__ = fn.__doc__
        BREAKERS[rule_id] = brk
        return brk
    return deco


def break_rule(rule_id: str, tables: Tables) -> tuple[Tables, pl.DataFrame]:
    """A copy of `tables` with one clean record broken so that rule `rule_id` must report it, and the broken
    record's (table, key). Rules about a group (TR332, TR322, TR389) may report the group's other members too.
    The claim lines the gemeente rejected come last in the copy's `prestaties` (a breaker breaks an accepted one)."""
    rule_id = getattr(rule_id, "id", rule_id)       # a registry Rule works too
    if rule_id not in BREAKERS:
        raise KeyError(f"no breaker for rule {rule_id!r}; allowed: the ids of expectations/rules.yaml")
    new, table, key = BREAKERS[rule_id](_rejected_last(tables))
    return new, keys_frame([(table, key)])


def _rejected_last(tables: Tables) -> Tables:
    """The claim lines the gemeente rejected in its JW325 moved to the end of `prestaties`: the rules skip them, so a
    breaker (which takes the first suitable record) must break an accepted line."""
    rej, p = tables.get("declaratie_antwoord_prestaties"), tables.get("prestaties")
    if rej is None or p is None or rej.height == 0:
        return tables
    k = pl.concat_str([pl.col("agb_code"), pl.col("referentie_nummer")], separator="|")
    gone = rej.select(k).to_series().implode()
    return dict(tables, prestaties=p.sort(k.is_in(gone), maintain_order=True))


def inject(fault_type: str, tables: Tables, n: int = 3, seed: int = 7) -> tuple[Tables, pl.DataFrame]:
    """A copy of `tables` with `n` records dirtied by one fault type of the catalogue (fewer if the data has fewer
    suitable targets), and their ground truth (table, key, fault_type, rule_id, rule_code, ...)."""
    from .faults import catalogue, inject_faults

    known = [f["id"] for f in catalogue()]
    if fault_type not in known:
        raise ValueError(f"unknown fault type {fault_type!r}; allowed: {', '.join(known)}")
    profile = {"default": {"count": 0}, "faults": {fault_type: {"count": int(n)}}}
    dirty, truth = inject_faults(tables, profile=profile, seed=seed)
    # the clean data's own late messages (labelled normal process) are no record this fault dirtied
    return dirty, truth.filter(pl.col("fault_type") == fault_type)


# ------------------------------------------------------------------------------------- breakers per check kind

def _other_bsn(df: pl.DataFrame, bsn: str) -> str:
    """A valid BSN of another client in the same table."""
    return df.filter(pl.col("bsn") != bsn)["bsn"][0]


def _bump_last_digit(col: str = "bsn") -> pl.Expr:
    c = pl.col(col)
    return c.str.slice(0, 8) + ((c.str.slice(8, 1).cast(pl.Int64) + 1) % 10).cast(pl.String)


def _set(table: str, column: str, value, cond: pl.Expr | None = None):
    """Breaker: `column` of the first record with a filled `column` (and `cond`) set to `value`."""
    def brk(t: Tables):
        c = pl.col(column).is_not_null() if cond is None else cond
        new, row = edit(t, table, first_index(t[table], c), **{column: value})
        return new, table, row
    return brk


def _end_before_start(table: str, start: str, end: str):
    return _set(table, end, pl.col(start) - DAY)


def _copy_previous(table: str, group: str, column: str):
    """Breaker for a uniqueness rule: a record takes `column` of the previous record of the same `group`."""
    def brk(t: Tables):
        df = t[table]
        idx = first_index(df, pl.col(group) == pl.col(group).shift(1))
        new, row = edit(t, table, idx, **{column: df[column][idx - 1]})
        return new, table, row
    return brk


BSN_TABLES = ["jeugdigen", "trajecten", "verzoeken", "antwoorden", "toewijzingen", "zorgstarts", "zorgstops", "prestaties"]
# rule id -> (table, column) of the column rules, as the breakers read the registry: written out here, not read from
# rules.yaml, so that a rule pointed at the wrong table or column fails its test instead of passing with it
_CODELIST_RULES = {
    "COD043_codelist_debet_credit": ("prestaties", "debet_credit"),
    "COD043_codelist_debet_credit_declaratie_antwoorden": ("declaratie_antwoorden", "debet_credit"),
    "COD043_codelist_debet_credit_declaraties": ("declaraties", "debet_credit"),
    "COD046_codelist_geslacht": ("jeugdigen", "geslacht"),
    "COD046_codelist_geslacht_verzoeken": ("verzoeken", "geslacht"),
    "COD327_codelist_verwijzer_type": ("verzoeken", "verwijzer_type"),
    "COD327_codelist_verwijzer_type_trajecten": ("trajecten", "verwijzer_type"),
    "COD467_codelist_status_aanlevering_zorgstarts": ("zorgstarts", "status_aanlevering"),
    "COD467_codelist_status_aanlevering_zorgstops": ("zorgstops", "status_aanlevering"),
    "JZ002_codelist_reden_wijziging": ("toewijzingen", "reden_wijziging"),
    "JZ020_codelist_product_categorie": ("toewijzingen", "product_categorie"),
    "JZ020_codelist_product_categorie_prestaties": ("prestaties", "product_categorie"),
    "JZ020_codelist_product_categorie_producten": ("producten", "product_categorie"),
    "JZ020_codelist_product_categorie_trajecten": ("trajecten", "product_categorie"),
    "JZ020_codelist_product_categorie_verzoeken": ("verzoeken", "product_categorie"),
    "JZ020_codelist_product_categorie_zorgstarts": ("zorgstarts", "product_categorie"),
    "JZ020_codelist_product_categorie_zorgstops": ("zorgstops", "product_categorie"),
    "JZ588_codelist_reden_beeindiging": ("zorgstops", "reden_beeindiging"),
    "JZ588_codelist_reden_beeindiging_trajecten": ("trajecten", "reden_beeindiging"),
    "WJ001_codelist_retourcode": ("declaratie_antwoorden", "retourcode"),
    "WJ756_codelist_eenheid": ("prestaties", "eenheid"),
    "WJ756_codelist_eenheid_producten": ("producten", "eenheid"),
    "WJ756_codelist_eenheid_toewijzingen": ("toewijzingen", "eenheid"),
    "WJ756_codelist_eenheid_verzoeken": ("verzoeken", "eenheid"),
    "WJ759_codelist_reden_afwijzing": ("antwoorden", "reden_afwijzing"),
    "WJ760_codelist_verzoek_antwoord": ("antwoorden", "verzoek_antwoord"),
    "WMO757_codelist_frequentie": ("verzoeken", "frequentie"),
    "WMO757_codelist_frequentie_producten": ("producten", "frequentie"),
    "WMO757_codelist_frequentie_toewijzingen": ("toewijzingen", "frequentie"),
}
_PERIOD_RULES = {
    "CS003_toewijzing_einddatum_ge_ingangsdatum": ("toewijzingen", "ingangsdatum", "einddatum"),
    "CS003_verzoek_einddatum_ge_ingangsdatum": ("verzoeken", "toewijzing_ingangsdatum", "toewijzing_einddatum"),
    "CS003_zorgstop_einddatum_ge_begindatum": ("zorgstops", "begindatum", "einddatum"),
    "CS003_prestatie_einddatum_ge_begindatum": ("prestaties", "begindatum", "einddatum"),
    "TR018_traject_einddatum_ge_begindatum": ("trajecten", "begindatum", "einddatum"),
}

for _t in BSN_TABLES:
    breaker(f"CS002_bsn_elfproef_{_t}")(_set(_t, "bsn", _bump_last_digit()))
for _id, (_t, _s, _e) in _PERIOD_RULES.items():
    breaker(_id)(_end_before_start(_t, _s, _e))
for _id, (_t, _c) in _CODELIST_RULES.items():
    breaker(_id)(_set(_t, _c, "X9"))                      # "X9" is in no iJw code list
for _t in ["prestaties", "toewijzingen", "jeugdigen"]:
    breaker(f"XSD_bsn_verplicht_{_t}")(_set(_t, "bsn", None))
for _t in ["aanbieders", "prestaties"]:
    breaker(f"XSD_agb_code_{_t}")(_set(_t, "agb_code", "9800001"))    # 7 digits
breaker("TR314_referentie_nummer_uniek_per_aanbieder")(_copy_previous("prestaties", "agb_code", "referentie_nummer"))
breaker("TR347_referentie_aanbieder_uniek")(_copy_previous("verzoeken", "agb_code", "referentie_aanbieder"))
breaker("CS089_postcode_format")(_set("jeugdigen", "postcode", pl.col("postcode").str.slice(0, 4) + "SA"))
breaker("CS336_reden_wijziging_not_01")(_set("toewijzingen", "reden_wijziging", "01", pl.col("versie") > 1))
breaker("CS335_reden13_only_when_einddatum_eq_ingangsdatum")(
    _set("toewijzingen", "reden_wijziging", "13", pl.col("einddatum") > pl.col("ingangsdatum")))
for _t in ["toewijzingen", "verzoeken", "producten"]:
    # etmaal, dagdeel, euro's and stuks (inspanning) may not be per dag
    breaker(f"CS338_CS343_eenheid_frequentie_{_t}")(
        _set(_t, "frequentie", "1", pl.col("eenheid").is_in(["14", "16", "83", "84"])))
# a 45 (ambulant) product code declared under categorie 54 (jeugd-ggz)
breaker("TR381_product_code_in_categorie")(
    _set("toewijzingen", "product_categorie", "54", pl.col("product_categorie") == "45"))
for _t in ["trajecten", "verzoeken", "zorgstarts", "zorgstops", "prestaties"]:
    breaker(f"TR381_product_code_in_categorie_{_t}")(
        _set(_t, "product_categorie", "54", (pl.col("product_categorie") == "45") & pl.col("product_code").is_not_null()))
# a huisarts referral relabelled as zelfverwijzer keeps its AGB code
breaker("CD068_verwijzer_geen_agb_bij_ander_type")(_set(
    "verzoeken", "verwijzer_type", "06",
    (pl.col("verwijzer_type") == "02") & pl.col("verwijzer_zorgverlenercode").is_not_null()))
breaker("CS058_status_aanlevering_1_of_3")(_set("zorgstarts", "status_aanlevering", "2"))
breaker("CS058_status_aanlevering_1_of_3_zorgstops")(_set("zorgstops", "status_aanlevering", "2"))
breaker("CS340_CS100_declaratieperiode_kalendermaand")(_set("declaraties", "einddatum", pl.col("einddatum") - DAY))
breaker("CS337_OP367_productperiode_een_kalendermaand")(_set(
    "prestaties", "einddatum", pl.col("einddatum") + DAY, pl.col("einddatum") == pl.col("einddatum").dt.month_end()))
breaker("CD087_TR346_bedrag_is_volume_maal_tarief")(
    _set("prestaties", "ingediend_bedrag", pl.col("ingediend_bedrag") + 1, pl.col("eenheid") != "83"))
breaker("TR358_totaalbedrag_is_som_prestaties")(_set("declaraties", "totaal_bedrag", pl.col("totaal_bedrag") + 1))
breaker("CS325_bedrag_nul_is_debet")(_set("prestaties", "ingediend_bedrag", 0, pl.col("debet_credit") == "C"))


def _zero_credit(table: str, amount: str):
    """Breaker: the first total set to 0 and signed C."""
    def brk(t: Tables):
        new, row = edit(t, table, 0, **{amount: 0, "debet_credit": "C"})
        return new, table, row
    return brk


breaker("CS325_bedrag_nul_is_debet_declaraties")(_zero_credit("declaraties", "totaal_bedrag"))
breaker("CS325_bedrag_nul_is_debet_declaratie_antwoorden")(
    _zero_credit("declaratie_antwoorden", "totaal_toegekend_bedrag"))
breaker("CD060_vorig_referentie_alleen_en_altijd_bij_credit")(
    _set("prestaties", "vorig_referentie_nummer", "X1", pl.col("debet_credit") == "D"))
breaker("TR323_TR390_credit_op_eerdere_debet")(
    _set("prestaties", "vorig_referentie_nummer", "ONBEKEND", pl.col("debet_credit") == "C"))
breaker("TR379_toewijzing_referentie_bestaat")(_set("toewijzingen", "referentie_aanbieder", "VOTONBEKEND"))
# a message that was on time (the clean data sends some late: normal process behaviour) sent two weeks after the date
breaker("OP271_start_binnen_5_werkdagen")(
    _set("zorgstarts", "dagtekening", pl.col("begindatum") + pl.duration(days=14),
         (pl.col("dagtekening") - pl.col("begindatum")).dt.total_days().is_between(0, 4)))
breaker("OP272_stop_binnen_5_werkdagen")(
    _set("zorgstops", "dagtekening", pl.col("einddatum") + pl.duration(days=14),
         (pl.col("dagtekening") - pl.col("einddatum")).dt.total_days().is_between(0, 4)))
breaker("OP090x4_declaratie_antwoord_binnen_10_werkdagen")(
    _set("declaratie_antwoorden", "dagtekening", pl.col("dagtekening") + pl.duration(days=30)))
breaker("OP072_TR382_stop_heeft_eerdere_start")(_set("zorgstops", "begindatum", pl.col("begindatum") + DAY))
breaker("TR019_start_begindatum_ge_toewijzing_ingangsdatum")(
    _set("zorgstarts", "begindatum", pl.col("toewijzing_ingangsdatum") - DAY))
breaker("JW323_prestatie_heeft_declaratie")(_set("prestaties", "declaratie_nummer", "ONBEKEND"))


def _other_client(table: str):
    """Breaker: the first record names another client (a BSN of the same table) than its toewijzing."""
    def brk(t: Tables):
        new, row = edit(t, table, 0, bsn=_other_bsn(t[table], t[table]["bsn"][0]))
        return new, table, row
    return brk


breaker("TR019_start_stop_bij_bestaande_toewijzing")(_other_client("zorgstops"))
breaker("TR019_start_bij_bestaande_toewijzing")(_other_client("zorgstarts"))
breaker("TR338_TR304_prestatie_bij_toewijzing_van_client")(_other_client("prestaties"))
breaker("TR321_geleverd_volume_binnen_toegewezen")(
    _set("prestaties", "geleverd_volume", pl.col("geleverd_volume") * 1000 + 1000))


# ------------------------------------------------------------------------------------ breakers of derived rules

@breaker("TR387_TR388_productperiode_grenzen")
def _(t):
    """A period that starts on the 2nd while the toewijzing did not start that day."""
    ing = latest_toewijzing(t["toewijzingen"]).select(*TOEWIJZING, pl.col("ingangsdatum").alias("_ing"))
    p = t["prestaties"].join(ing, on=TOEWIJZING, how="left", maintain_order="left")
    idx = first_index(p, (pl.col("begindatum").dt.day() == 1) & (pl.col("_ing") != pl.col("begindatum") + DAY)
                      & (pl.col("einddatum") > pl.col("begindatum") + DAY))
    new, row = edit(t, "prestaties", idx, begindatum=pl.col("begindatum") + DAY)
    return new, "prestaties", row


@breaker("CD066_CD067_verwijzer_agb_of_naam")
def _(t):
    """A huisarts referral with neither ZorgverlenerCode nor Naam."""
    idx = first_index(t["verzoeken"], pl.col("verwijzer_type") == "02")
    new, row = edit(t, "verzoeken", idx, verwijzer_naam=None, verwijzer_zorgverlenercode=None)
    return new, "verzoeken", row


@breaker("TR332_toewijzing_nummer_uniek_per_gemeente")
def _(t):
    """A second version of a toewijzing names another client."""
    tw = t["toewijzingen"]
    idx = first_index(tw, pl.col("versie") == 2)
    new, row = edit(t, "toewijzingen", idx, bsn=_other_bsn(tw, tw["bsn"][idx]))
    return new, "toewijzingen", row


@breaker("OP259_geen_overlappende_toewijzingen")
def _(t):
    """A second toewijzing number for the same client, aanbieder, product and period."""
    lt = latest_toewijzing(t["toewijzingen"]).head(1)
    dup = lt.with_columns(pl.lit(t["toewijzingen"]["toewijzing_nummer"].max() + 1).alias("toewijzing_nummer"),
                          pl.lit(1).alias("versie"), pl.lit(None, pl.String).alias("reden_wijziging"))
    new, row = append(t, "toewijzingen", dup)
    return new, "toewijzingen", row


@breaker("TR326_OP289_een_actuele_start_per_toewijzing")
def _(t):
    """A second start a week after a start that was never stopped."""
    open_starts = t["zorgstarts"].join(t["zorgstops"], on=STARTKEY, how="anti")
    dup = open_starts.head(1).with_columns(pl.col("begindatum") + pl.duration(days=7),
                                           pl.col("dagtekening") + pl.duration(days=7))
    new, row = append(t, "zorgstarts", dup)
    return new, "zorgstarts", row


@breaker("TR339_TR340_TR341_prestatie_product_als_toewijzing")
def _(t):
    other = pl.when(pl.col("eenheid") == "01").then(pl.lit("04")).otherwise(pl.lit("01"))
    new, row = edit(t, "prestaties", 0, eenheid=other)
    return new, "prestaties", row


@breaker("TR307_TR308_productperiode_binnen_toewijzing")
def _(t):
    """A period that starts the day before the toewijzing (periods not on the 1st start on the Ingangsdatum)."""
    idx = first_index(t["prestaties"], pl.col("begindatum").dt.day() != 1)
    new, row = edit(t, "prestaties", idx, begindatum=pl.col("begindatum") - DAY)
    return new, "prestaties", row


@breaker("TR308_prestatie_niet_na_zorgstop")
def _(t):
    """The last claim line runs a day past the stop (a stop that is not on a month end)."""
    stops = t["zorgstops"].filter(pl.col("reden_beeindiging") != "20").select(   # a definitive stop
        "gemeente_code", "agb_code", "toewijzing_nummer", pl.col("einddatum").alias("_stop"))
    p = t["prestaties"].join(stops, on=["gemeente_code", "agb_code", "toewijzing_nummer"], how="left",
                             maintain_order="left")
    idx = first_index(p, (pl.col("einddatum") == pl.col("_stop")) & (pl.col("einddatum") != pl.col("einddatum").dt.month_end()))
    new, row = edit(t, "prestaties", idx, einddatum=pl.col("einddatum") + DAY)
    return new, "prestaties", row


@breaker("TR322_som_volume_binnen_totaal")
def _(t):
    """One debet line of a toewijzing per totaal claims more than the whole toegewezen volume."""
    tw = latest_toewijzing(t["toewijzingen"]).filter(pl.col("frequentie") == "6").select(
        *TOEWIJZING, pl.col("volume").alias("_vol"))
    p = t["prestaties"].join(tw, on=TOEWIJZING, how="left", maintain_order="left")
    idx = first_index(p, pl.col("_vol").is_not_null() & (pl.col("debet_credit") == "D"))
    new, row = edit(t, "prestaties", idx, geleverd_volume=p["_vol"][idx] + 1)
    return new, "prestaties", row


@breaker("TR333_declaratie_nummer_uniek_alfanumeriek")
def _(t):
    d = t["declaraties"]
    idx = first_index(d, pl.col("agb_code") == pl.col("agb_code").shift(1))
    new, row = edit(t, "declaraties", idx, declaratie_nummer=d["declaratie_nummer"][idx - 1])
    return new, "declaraties", row


@breaker("TR389_een_actieve_debet")
def _(t):
    """The same month claimed again with a new reference, without a credit in between."""
    dup = t["prestaties"].filter(pl.col("debet_credit") == "D").head(1).with_columns(pl.col("referentie_nummer") + "9")
    new, row = append(t, "prestaties", dup)
    return new, "prestaties", row


@breaker("TR316_credit_niet_in_declaratie_van_debet")
def _(t):
    p = t["prestaties"]
    idx = first_index(p, pl.col("debet_credit") == "C")
    credit = p.row(idx, named=True)
    debet = p.filter((pl.col("agb_code") == credit["agb_code"])
                     & (pl.col("referentie_nummer") == credit["vorig_referentie_nummer"])).row(0, named=True)
    new, row = edit(t, "prestaties", idx, declaratie_nummer=debet["declaratie_nummer"])
    return new, "prestaties", row


@breaker("TR418_tarief_is_contracttarief")
def _(t):
    """The product's regional tarief of the previous contract year (a tariff list not updated for the indexation),
    with the amount following it (so only the tariff rule fires). issue 12: market."""
    p = t["prestaties"]
    regio = t["gemeenten"].select("gemeente_code", "inkoopregio")
    vorig = t["producten"].filter(pl.col("agb_code").is_null()).select(
        "inkoopregio", "product_code", (pl.col("geldig_van").dt.year() + 1).alias("_jaar"),
        pl.col("tarief").alias("_vorig"))
    x = p.with_row_index("_n").join(regio, on="gemeente_code", how="left").with_columns(
        pl.col("begindatum").dt.year().alias("_jaar")).join(
        vorig, on=["inkoopregio", "product_code", "_jaar"], how="left").sort("_n").drop("_n")
    idx = first_index(x, (pl.col("eenheid") != "83") & pl.col("_vorig").is_not_null()
                      & (pl.col("_vorig") != pl.col("product_tarief")))
    old = x["_vorig"][idx]
    new, row = edit(t, "prestaties", idx, product_tarief=old, ingediend_bedrag=pl.col("geleverd_volume") * old)
    return new, "prestaties", row


@breaker("OP274_antwoord_op_verzoek_binnen_5_werkdagen")
def _(t):
    """A verzoek answered (JW319) within 4 days, sent a month earlier instead."""
    k = ["gemeente_code", "agb_code", "referentie_aanbieder"]
    first = t["antwoorden"].group_by(k).agg(pl.col("dagtekening").min().alias("_a"))
    quick = t["verzoeken"].join(first, on=k, how="left", maintain_order="left").select(
        (pl.col("_a") - pl.col("dagtekening")).dt.total_days().is_between(0, 4).fill_null(False)).to_series()
    idx = first_index(t["verzoeken"], pl.lit(quick))
    new, row = edit(t, "verzoeken", idx, dagtekening=pl.col("dagtekening") - pl.duration(days=30))
    return new, "verzoeken", row


@breaker("OP090x4_een_antwoord_per_declaratie")
def _(t):
    """A declaratie whose JW325 is missing."""
    a = t["declaratie_antwoorden"]
    new = dict(t, declaratie_antwoorden=a.slice(1))
    return new, "declaraties", a.row(0, named=True)


@breaker("JW325_antwoord_op_bestaande_declaratie")
def _(t):
    """A JW325 that answers a DeclaratieNummer the aanbieder never sent."""
    a = t["declaratie_antwoorden"]
    new, row = append(t, "declaratie_antwoorden", a.head(1).with_columns(pl.lit("ONBEKEND").alias("declaratie_nummer")))
    return new, "declaratie_antwoorden", row


@breaker("TR319_productperiode_niet_na_declaratieperiode")
def _(t):
    """A product period in the month after the declaratie's period."""
    p = t["prestaties"].row(0, named=True)
    d = t["declaraties"].filter((pl.col("agb_code") == p["agb_code"])
                                & (pl.col("declaratie_nummer") == p["declaratie_nummer"])).row(0, named=True)
    begin = d["einddatum"] + dt.timedelta(days=1)
    new, row = edit(t, "prestaties", 0, begindatum=begin, einddatum=pl.lit(begin).dt.month_end())
    return new, "prestaties", row


def _birth(days_after_first_care: int):
    def brk(t: Tables):
        first = t["trajecten"].group_by("gemeente_code", "client_id").agg(pl.col("begindatum").min())
        j = t["jeugdigen"].join(first, on=["gemeente_code", "client_id"], how="left", maintain_order="left")
        i = first_index(j, pl.col("begindatum").is_not_null())
        new, row = edit(t, "jeugdigen", i, geboortedatum=j["begindatum"][i] + dt.timedelta(days=days_after_first_care))
        return new, "jeugdigen", row
    return brk


breaker("TR002_geboortedatum_voor_zorg")(_birth(10))


@breaker("TR304_geboortedatum_als_in_verzoek")
def _(t):
    """A registered birth date a day off the one in the youth's JW315."""
    v = t["verzoeken"].select(pl.struct("gemeente_code", "bsn")).to_series().unique()
    j = t["jeugdigen"]
    i = first_index(j, pl.struct("gemeente_code", "bsn").is_in(v.implode()))
    new, row = edit(t, "jeugdigen", i, geboortedatum=j["geboortedatum"][i] - dt.timedelta(days=1))
    return new, "jeugdigen", row


@breaker("TR304_een_registratie_per_bsn")
def _(t):
    """The youth registered again under a new client id with a typo in the surname."""
    j = t["jeugdigen"]
    dup = j.head(1).with_columns(pl.lit("C999999999").alias("client_id"),   # a new id of the client_id format
                                 (pl.col("achternaam") + "e").alias("achternaam"))
    new, row = append(t, "jeugdigen", dup)
    return new, "jeugdigen", row


# --- issue 12: domains (aspecifiek toewijzingen with a Budget)

def _aspecifiek(t: Tables, idx: int, **extra) -> tuple[Tables, dict]:
    """Row `idx` of toewijzingen made an aspecifiek toewijzing with a Budget (no code, no Omvang), plus `extra`."""
    changes = dict(product_code=None, volume=None, eenheid=None, frequentie=None, budget=500_000)
    return edit(t, "toewijzingen", idx, **{**changes, **extra})


@breaker("CD077_CD078_CD079_omvang_of_budget")
def _(t):
    """A specifiek toewijzing that also gets a Budget."""
    idx = first_index(t["toewijzingen"], pl.col("volume").is_not_null())
    new, row = edit(t, "toewijzingen", idx, budget=100_000)
    return new, "toewijzingen", row


@breaker("CD041_CD080_omvang_bij_productcode")
def _(t):
    """A toewijzing with a ProductCode whose Omvang is left out."""
    idx = first_index(t["toewijzingen"], pl.col("product_code").is_not_null() & pl.col("volume").is_not_null())
    new, row = edit(t, "toewijzingen", idx, volume=None, eenheid=None, frequentie=None)
    return new, "toewijzingen", row


@breaker("CD075_einddatum_bij_budget")
def _(t):
    """An aspecifiek toewijzing with a Budget and no Einddatum."""
    tw = t["toewijzingen"]
    has = tw["budget"].is_not_null().any()
    idx = first_index(tw, pl.col("budget").is_not_null() if has else pl.col("volume").is_not_null())
    new, row = _aspecifiek(t, idx, einddatum=None) if not has else edit(t, "toewijzingen", idx, einddatum=None)
    return new, "toewijzingen", row


@breaker("TR369_som_binnen_budget")
def _(t):
    """A debet line of a Budget toewijzing that claims more than the whole budget (eenheid 83: bedrag = volume)."""
    lt = latest_toewijzing(t["toewijzingen"]).select(*TOEWIJZING, pl.col("budget").alias("_budget"))
    p = t["prestaties"].join(lt, on=TOEWIJZING, how="left", maintain_order="left")
    debet = pl.col("debet_credit") == "D"
    if not p.filter(pl.col("_budget").is_not_null() & debet).height:
        # no Budget toewijzing with claims in this dataset: give the first claimed toewijzing a budget of one cent
        first = p.filter(debet).row(0, named=True)
        tw = t["toewijzingen"].with_columns(
            pl.when((pl.col("gemeente_code") == first["gemeente_code"])
                    & (pl.col("toewijzing_nummer") == first["toewijzing_nummer"]))
            .then(pl.lit(1, dtype=pl.Int64)).otherwise(pl.col("budget")).alias("budget"))
        t = dict(t, toewijzingen=tw)
        p = p.with_columns(pl.when((pl.col("gemeente_code") == first["gemeente_code"])
                                   & (pl.col("toewijzing_nummer") == first["toewijzing_nummer"]))
                           .then(pl.lit(1, dtype=pl.Int64)).otherwise("_budget").alias("_budget"))
    idx = first_index(p, pl.col("_budget").is_not_null() & debet)
    extra = p["_budget"][idx] + 1
    new, row = edit(t, "prestaties", idx, geleverd_volume=pl.col("geleverd_volume") + extra,
                    ingediend_bedrag=pl.col("ingediend_bedrag") + extra)
    return new, "prestaties", row


# --------------------------------------------------------------------------- issue 12: flows (JW317, 307(20), WPB)

breaker("CS002_bsn_elfproef_wijzigingsverzoeken")(_set("wijzigingsverzoeken", "bsn", _bump_last_digit()))
breaker("WJ758_codelist_reden_verzoek")(_set("wijzigingsverzoeken", "reden_verzoek", "X9"))
breaker("CS003_wijzigingsverzoek_einddatum_ge_ingangsdatum")(
    _end_before_start("wijzigingsverzoeken", "gewenste_ingangsdatum", "einddatum"))


@breaker("TR347_referentie_aanbieder_uniek_wijzigingsverzoeken")
def _(t):
    """A second JW317 of the same aanbieder reuses a reference (another client)."""
    w = t["wijzigingsverzoeken"]
    dup = w.head(1).with_columns(pl.lit(_other_bsn(t["toewijzingen"], w["bsn"][0])).alias("bsn"))
    new, row = append(t, "wijzigingsverzoeken", dup)
    return new, "wijzigingsverzoeken", row


@breaker("OP346_antwoord_op_wijzigingsverzoek_binnen_5_werkdagen")
def _(t):
    """A JW317 sent a month before its answer."""
    answered = pl.concat([t["antwoorden"]["referentie_aanbieder"], t["toewijzingen"]["referentie_aanbieder"]])
    idx = first_index(t["wijzigingsverzoeken"], pl.col("referentie_aanbieder").is_in(answered.drop_nulls().implode()))
    new, row = edit(t, "wijzigingsverzoeken", idx, dagtekening=pl.col("dagtekening") - pl.duration(days=30))
    return new, "wijzigingsverzoeken", row


breaker("CD085_CD086_reden_afwijzing_alleen_bij_afwijzing")(
    _set("antwoorden", "reden_afwijzing", None, pl.col("verzoek_antwoord") == "1"))


@breaker("TR377_OP359_woonplaatsbeginsel_bij_reden_8")
def _(t):
    """A rejection turned into one for the woonplaatsbeginsel that names the answering gemeente itself."""
    idx = first_index(t["antwoorden"], pl.col("verzoek_antwoord") == "1")
    new, row = edit(t, "antwoorden", idx, reden_afwijzing="8", woonplaatsbeginsel_gemeente=pl.col("gemeente_code"))
    return new, "antwoorden", row


breaker("TR409_geen_woonplaatsbeginsel_zonder_reden_8")(
    _set("antwoorden", "woonplaatsbeginsel_gemeente", "0153",
         (pl.col("verzoek_antwoord") == "1") & (pl.col("reden_afwijzing") != "8")))


@breaker("OP359_woonplaatsbeginsel_binnen_2_weken")
def _(t):
    """A rejection of a JW315 turned into one for the woonplaatsbeginsel, sent five weeks after the request."""
    v = t["verzoeken"].select("gemeente_code", "agb_code", "referentie_aanbieder", pl.col("dagtekening").alias("_vd"))
    a = t["antwoorden"].join(v, on=["gemeente_code", "agb_code", "referentie_aanbieder"], how="left",
                             maintain_order="left")
    idx = first_index(a, (pl.col("verzoek_antwoord") == "1") & pl.col("_vd").is_not_null())
    other = "0153" if a["gemeente_code"][idx] != "0153" else "0147"
    new, row = edit(t, "antwoorden", idx, reden_afwijzing="8", woonplaatsbeginsel_gemeente=other,
                    dagtekening=pl.lit(a["_vd"][idx] + dt.timedelta(days=35)))
    return new, "antwoorden", row


def _definitive_stop(t: Tables) -> dict:
    """The first definitive JW307 that is the only stop of its start."""
    return t["zorgstops"].filter((pl.col("reden_beeindiging") != "20") & (pl.col("status_aanlevering") == "1")
                                 & (pl.len().over(STARTKEY) == 1)).row(0, named=True)


@breaker("TR413_geen_tweede_tijdelijke_stop")
def _(t):
    """Two temporary stops of one start before its definitive stop: the second is flagged."""
    stop = _definitive_stop(t)
    e, d = stop["einddatum"], stop["dagtekening"]
    first = pl.DataFrame([{**stop, "reden_beeindiging": "20", "einddatum": e - dt.timedelta(days=20),
                           "dagtekening": d - dt.timedelta(days=20)}], schema=t["zorgstops"].schema)
    second = first.with_columns(pl.lit(e - dt.timedelta(days=10)).alias("einddatum"),
                                pl.lit(d - dt.timedelta(days=10)).alias("dagtekening"))
    new, _ = append(t, "zorgstops", first)
    new, row = append(new, "zorgstops", second)
    return new, "zorgstops", row


@breaker("TR415_geen_stop_na_definitieve_stop")
def _(t):
    """A further stop after the definitive stop of a start."""
    stop = _definitive_stop(t)
    later = pl.DataFrame([{**stop, "einddatum": stop["einddatum"] + dt.timedelta(days=10),
                           "dagtekening": stop["dagtekening"] + dt.timedelta(days=10)}], schema=t["zorgstops"].schema)
    new, row = append(t, "zorgstops", later)
    return new, "zorgstops", row


@breaker("TR414_einddatum_volgende_stop_niet_eerder")
def _(t):
    """A temporary stop sent before the definitive stop but ending after it: the definitive stop is flagged."""
    stop = _definitive_stop(t)
    temp = pl.DataFrame([{**stop, "reden_beeindiging": "20", "einddatum": stop["einddatum"] + dt.timedelta(days=5),
                          "dagtekening": stop["dagtekening"] - dt.timedelta(days=5)}], schema=t["zorgstops"].schema)
    new, _ = append(t, "zorgstops", temp)
    return new, "zorgstops", stop


# ------------------------------------------------------------------------------------------ Hypothesis strategies

def _st():
    try:
        from hypothesis import strategies as st
    except ImportError as exc:
        raise ImportError("the strategies need hypothesis: pip install 'jeugdzorg-zandbak[testing]'") from exc
    return st


def bsns():
    """Synthetic BSNs as the generator makes them: 9 digits from 900000000 up, elfproef-valid (CS002)."""
    import numpy as np

    from .privacy import BSN_CAPACITY, bsn_from_index

    st = _st()
    return st.builds(lambda i, seed: str(int(bsn_from_index(np.array([i]), seed)[0])),
                     st.integers(0, BSN_CAPACITY - 1), st.integers(0, 2**32 - 1))


def agb_codes():
    """AGB codes: 8 digits (LDT_AgbCode)."""
    return _st().integers(0, 99_999_999).map(lambda n: f"{n:08d}")


def postcodes():
    """Dutch postcodes 1234AB: first digit not 0, never the letters SA, SD or SS (CS089)."""
    from .privacy import POSTCODE_LETTER_PAIRS

    st = _st()
    return st.builds(lambda n, pair: f"{n}{pair}", st.integers(1000, 9999), st.sampled_from(POSTCODE_LETTER_PAIRS))


def codes(codelist: str):
    """Codes of one iJw code list of synthetic_data/data/codelists.yaml (e.g. "eenheid", "reden_beeindiging")."""
    from .reference import codelists

    lists = codelists()
    if codelist not in lists or not isinstance(lists[codelist], dict) or codelist == "eenheid_frequenties":
        allowed = [n for n, v in lists.items() if isinstance(v, dict) and n != "eenheid_frequenties"]
        raise ValueError(f"unknown code list {codelist!r}; allowed: {', '.join(allowed)}")
    return _st().sampled_from(sorted(lists[codelist]))


def records(table: str, config: GeneratorConfig = SMALL_CONFIG):
    """Valid records of `table` as dicts (column -> value), drawn from the valid dataset `small_tables(config)`, so
    that every rule holds for them, the cross-table ones included."""
    tables = small_tables(config)
    df = tables[table]
    if table == "prestaties":   # not the lines the gemeente rejected in its JW325: those break a claim rule
        key = ["agb_code", "referentie_nummer"]
        df = df.join(tables["declaratie_antwoord_prestaties"].select(key), on=key, how="anti", maintain_order="left")
    if not df.height:
        raise ValueError(f"{table}: the dataset of {config} has no records")
    return _st().sampled_from(df.rows(named=True))


def datasets(region: str = "0147", years: str = "2024", min_scale: float = 0.05, max_scale: float = 0.2):
    """Valid small datasets: `generate` with a drawn seed and scale (each takes a fraction of a second)."""
    st = _st()
    return st.builds(lambda seed, scale: small_tables(GeneratorConfig(region=region, years=years, seed=seed,
                                                                      scale=round(scale, 2))),
                     st.integers(0, 2**16), st.floats(min_scale, max_scale))


def broken(rule_id: str, tables=None):
    """(clean tables, dirty tables, keys) with one record broken for `rule_id`, from `datasets()` (or the strategy
    `tables`); datasets with no record the breaker can break are skipped."""
    def brk(t: Tables):
        try:
            return (t, *break_rule(rule_id, t))
        except ValueError:
            return None
    return (datasets() if tables is None else tables).map(brk).filter(lambda x: x is not None)


# ------------------------------------------------------------------------------------------------ pytest plugin

def _fixture(fn=None, **kw):
    """pytest.fixture when pytest is there (the module is importable without it)."""
    try:
        import pytest
    except ImportError:     # pragma: no cover
        return fn if fn is not None else (lambda f: f)
    return pytest.fixture(fn, **kw) if fn is not None else pytest.fixture(**kw)


@_fixture(scope="session")
def ijw_config() -> GeneratorConfig:
    """The configuration of `ijw_tables` (override this fixture in a conftest.py for another dataset)."""
    return SMALL_CONFIG


@_fixture(scope="session")
def ijw_tables(ijw_config) -> Tables:
    """A small valid dataset (`small_tables(ijw_config)`), built once per test session."""
    return small_tables(ijw_config)


@_fixture(name="break_rule")
def _break_rule_fixture():
    """`break_rule(rule_id, tables)` as a fixture."""
    return break_rule


@_fixture
def inject_fault():
    """`inject(fault_type, tables, n, seed)` as a fixture."""
    return inject


def with_key(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """`df` (rows of `table`) with `table` and `key` columns in front: the shape of findings and ground truth."""
    return df.select(pl.lit(table).alias("table"), key_expr(table).alias("key"), pl.all())
