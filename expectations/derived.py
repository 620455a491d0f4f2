"""The one polars implementation of every registry rule: `violations(rule, tables)` returns the records that break it.

The registry (rules.yaml, registry.py) is the spec; this module is its only implementation. Column checks are one
function per check kind (bsn, agb, postcode, codelist, not_null, unique, regex, a_ge_b), with the semantics of the
Great Expectations column-map expectations the engine runs for them (a null passes every kind but not_null). The
rules that GX cannot express as one column expectation (conditional and cross-table rules) are one function each,
registered here by name with ``@derived(name, table, show=...)`` and named in rules.yaml as ``{derived: name}``.

Every implementation returns the violating rows of the rule's table with a ``_row`` column (their row number in the
given table) and the columns that explain the violation (values of other tables are joined in under their own names);
`violations` turns that into one row per record: the table's key columns, the columns the rule read (`show`) and the
explanatory columns. The GX engine validates the derived ones as a boolean column computed from these rows (GX 1.x has
no polars input, its SQL path on DuckDB fails silently and ``UnexpectedRowsExpectation`` is SQL-only, as measured
with GX 1.24); the Dagster asset checks, the fault catalogue's rule links and the tests all go through here.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Callable, Iterable

import polars as pl

from synthetic_data.dictionary import key as dictionary_key
from synthetic_data.dictionary import schema
from synthetic_data.ijw import (
    DECLARATIE,
    FAR_FUTURE,
    POSTCODE_PATTERN,
    STARTKEY,
    TOEWIJZING,
    contract_tarief,
    key_expr,
    late_answers,
    late_declaratie_antwoorden,
    late_sent,
    latest_toewijzing,
    signed,
    volume_cap,
    werkdagen,
)
from synthetic_data.privacy import elfproef_valid
from synthetic_data.reference import codelists

if TYPE_CHECKING:
    from .registry import Rule

Tables = dict[str, pl.DataFrame]
Derived = Callable[[Tables], pl.DataFrame]

DERIVED: dict[str, Derived] = {}

ROW = "_row"
VERWIJZER_MET_AGB = ["02", "03", "04", "05"]
AGB_PATTERN = r"^\d{8}$"
# Findings are one row per failing record; these are the key columns of every table, as text.
FINDING_KEYS = ["gemeente_code", "client_id", "traject_id", "agb_code", "referentie_aanbieder", "dagtekening",
                "toewijzing_nummer", "versie", "begindatum", "inkoopregio", "product_code", "declaratie_nummer",
                "referentie_nummer", "einddatum"]   # einddatum: zorgstops (a start can have a temporary and a definitive stop)
FINDINGS_SCHEMA = {"table": pl.String, "rule_id": pl.String, "rule_code": pl.String, "severity": pl.String,
                   "key": pl.String, **{k: pl.String for k in FINDING_KEYS}}


def derived(name: str, table: str, show: Iterable[str] = ()) -> Callable[[Derived], Derived]:
    """Register a derived check under `name`: it returns violating rows of `table` (with `_row`); `show` names the
    table's own columns that explain a violation (its key columns always come first)."""
    def deco(fn: Derived) -> Derived:
        if name in DERIVED:
            raise ValueError(f"derived check {name!r} is registered twice")
        fn.derived_name = name  # type: ignore[attr-defined]
        fn.table = table  # type: ignore[attr-defined]
        fn.show = tuple(show)  # type: ignore[attr-defined]
        DERIVED[name] = fn
        return fn
    return deco


# ---------------------------------------------------------------------------------------------------- the front door

def violations(rule: "Rule", tables: Tables, row_index: bool = False) -> pl.DataFrame:
    """The records of `rule.table` that break `rule`, one row each in table order: the key columns, the columns the
    rule reads and the explanatory columns (e.g. the toewijzing's Ingangsdatum next to a prestatie's Begindatum).
    With `row_index` the first column is `_row`, the record's row number in `tables[rule.table]`."""
    missing = [t for t in (rule.table, *rule.uses) if t not in tables]
    if missing:
        from synthetic_data.errors import DataError

        raise DataError(f"rule {rule.id}: missing table(s) {', '.join(missing)}; it reads {rule.table}"
                        + (f" and {', '.join(rule.uses)}" if rule.uses else ""))
    if rule.kind == "derived":
        fn = DERIVED[rule.check["derived"]]
        bad, show = fn(tables), fn.show  # type: ignore[attr-defined]
    else:
        df = _rows(tables, rule.table)
        bad, show = df.filter(_column_violation(rule, df)), tuple(rule.columns)
    bad = bad.unique(ROW, keep="first", maintain_order=True).sort(ROW)
    key = dictionary_key(rule.table)
    own = set(schema(rule.table))
    extra = [c for c in bad.columns if c not in own and c != ROW and not c.startswith("_")]
    cols = [*key, *[c for c in show if c not in key], *extra]
    return bad.select(*([ROW] if row_index else []), *cols)


def rule_findings(tables: Tables, rules: "list[Rule] | None" = None) -> pl.DataFrame:
    """Every rule's violations as findings (the shape of `expectations.findings`: table, rule, severity, key and the
    key columns as text), computed in polars without Great Expectations."""
    from .registry import load_rules

    global _MEMO
    frames = []
    _MEMO = {}   # intermediates several rules share, built once in this run (see _shared)
    try:
        for rule in load_rules() if rules is None else rules:
            bad = violations(rule, tables)
            if bad.height:
                frames.append(finding_rows(rule, bad))
    finally:
        _MEMO = None
    return as_findings(frames)


# Intermediates that several rules read (the accepted prestaties, the JW307 sequence, the credits next to their
# debets, the latest toewijzing versions): during `rule_findings` each is built once per input frame instead of once
# per rule (on nl the prestaties anti-join alone ran for 27 rules). Keyed by the identity of the frames it reads, which
# the entry holds, so an id cannot be reused while cached; outside `rule_findings` nothing is kept.
_MEMO: dict | None = None


def _shared(name: str, inputs: tuple, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    if _MEMO is None:
        return build()
    key = (name, *map(id, inputs))
    hit = _MEMO.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], inputs)):
        return hit[1]
    out = build()
    _MEMO[key] = (inputs, out)
    return out


def finding_rows(rule: "Rule", records: pl.DataFrame) -> pl.DataFrame:
    """Findings of `rule` for `records` (rows of its table with at least the key columns)."""
    return records.select(
        pl.lit(rule.table).alias("table"), pl.lit(rule.id).alias("rule_id"), pl.lit(rule.code).alias("rule_code"),
        pl.lit(rule.severity).alias("severity"), key_expr(rule.table).alias("key"),
        *[pl.col(c).cast(pl.String) for c in dictionary_key(rule.table)])


def as_findings(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate finding frames into FINDINGS_SCHEMA (absent key columns null)."""
    if not frames:
        return pl.DataFrame(schema=FINDINGS_SCHEMA)
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.select(pl.col(c).cast(t) if c in out.columns else pl.lit(None, t).alias(c)
                      for c, t in FINDINGS_SCHEMA.items())


# ------------------------------------------------------------------------------------------------ column check kinds

def _search(df: pl.DataFrame, column: str, pattern: str) -> pl.Series:
    """True where a filled value does NOT match `pattern` (Python `re.search`, as GX's regex expectation; polars'
    regex engine has no look-ahead). Evaluated once per distinct value."""
    pat = re.compile(pattern)
    s = df[column].cast(pl.String)
    good = [v for v in s.drop_nulls().unique().to_list() if pat.search(v) is not None]
    return (s.is_not_null() & ~s.is_in(pl.Series(good, dtype=pl.String).implode())).alias("bad")


def _column_violation(rule: "Rule", df: pl.DataFrame) -> pl.Series:
    """Row mask of the violations of a column check (nulls pass except for not_null, as in GX)."""
    c, kind = rule.check, rule.kind
    col = pl.col(c["column"]) if "column" in c else None
    if kind == "bsn":
        bad = col.is_not_null() & ~elfproef_valid(col)
    elif kind == "agb":
        return _search(df, c["column"], AGB_PATTERN)
    elif kind == "postcode":
        return _search(df, c["column"], POSTCODE_PATTERN)
    elif kind == "regex":
        return _search(df, c["column"], c["pattern"])
    elif kind == "codelist":
        bad = col.is_not_null() & ~col.cast(pl.String).is_in(list(codelists()[c["codelist"]]))
    elif kind == "not_null":
        bad = col.is_null()
    elif kind == "unique":
        bad = pl.struct(c["columns"]).is_duplicated()
    elif kind == "a_ge_b":
        bad = pl.col(c["a"]) < pl.col(c["b"])
    else:
        raise ValueError(f"rule {rule.id}: unknown check kind {kind!r}")
    return df.select(bad.fill_null(False).alias("bad")).to_series()


# ---------------------------------------------------------------------------------------------------------- helpers

def _rows(tables: Tables, table: str) -> pl.DataFrame:
    """The table with its row numbers; of `prestaties` only the lines the gemeente accepted (see `accepted`)."""
    if table != "prestaties":
        return tables[table].with_row_index(ROW)
    return _shared("accepted", (tables[table], tables.get(REJECTED_LINES)),
                   lambda: accepted(tables, tables[table].with_row_index(ROW)))


# --- issue 12: claims
REJECTED_LINES = "declaratie_antwoord_prestaties"     # the JW325's rejected prestaties (synthetic_data/claims.py)


def accepted(tables: Tables, prestaties: pl.DataFrame) -> pl.DataFrame:
    """The claim lines the gemeente did not reject in a JW325: the registry checks the administration's accepted
    claims (a rejected line was already refused with its retourcode). Without the JW325 lines (a dataset that lacks
    the table, e.g. a task's hand-out) every line is checked. Row numbers (`_row`) stay those of the whole table."""
    rej = tables.get(REJECTED_LINES)
    if rej is None or rej.height == 0:
        return prestaties
    key = ["agb_code", "referentie_nummer"]
    return prestaties.join(rej.select(key), on=key, how="anti", maintain_order="left")


def checked_rows(tables: Tables, table: str) -> pl.DataFrame:
    """The rows of `table` the rules check, with `_row` (the GX engine validates the same rows)."""
    return _rows(tables, table)


def _where(tables: Tables, table: str, bad: pl.Expr, **explain: pl.Expr) -> pl.DataFrame:
    """Rows of `table` where `bad` is true (a null `bad` is no violation), with explanatory columns."""
    return _rows(tables, table).with_columns(**explain).filter(bad.fill_null(False))


def _tw_cols(tables: Tables, **renames: str) -> pl.DataFrame:
    """Latest toewijzing versions: the key and the given columns renamed (column=alias)."""
    tw = tables["toewijzingen"]
    return _shared("latest_toewijzing", (tw,), lambda: latest_toewijzing(tw)).select(
        *TOEWIJZING, *[pl.col(c).alias(a) for c, a in renames.items()])


# -------------------------------------------------------------------------------------------- toewijzing fields

@derived("reden13_only_when_einddatum_eq_ingangsdatum", "toewijzingen",
         show=["reden_wijziging", "ingangsdatum", "einddatum"])
def reden13(tables: Tables) -> pl.DataFrame:
    return _where(tables, "toewijzingen",
                  (pl.col("reden_wijziging") == "13") & pl.col("einddatum").ne_missing(pl.col("ingangsdatum")))


def _omvang(table: str) -> Derived:
    def check(tables: Tables) -> pl.DataFrame:
        pairs = [f"{e}/{f}" for e, fs in codelists()["eenheid_frequenties"].items() for f in fs]
        filled = pl.col("eenheid").is_not_null() | pl.col("frequentie").is_not_null()
        allowed = (pl.col("eenheid") + "/" + pl.col("frequentie")).is_in(pairs).fill_null(False)
        return _where(tables, table, filled & ~allowed)
    return check


for _t in ["toewijzingen", "verzoeken", "producten"]:
    derived(f"eenheid_frequentie_{_t}", _t, show=["eenheid", "frequentie"])(_omvang(_t))


# every table whose records carry a ProductCategorie and ProductCode (TR381 holds in every message that has them)
PRODUCT_TABLES = ["toewijzingen", "trajecten", "verzoeken", "zorgstarts", "zorgstops", "prestaties"]


def _product_code_in_categorie(table: str) -> Derived:
    def check(tables: Tables) -> pl.DataFrame:
        regio = tables["gemeenten"].select("gemeente_code", "inkoopregio")
        lijst = tables["producten"].select("inkoopregio", "product_categorie", "product_code")
        return (
            _rows(tables, table).filter(pl.col("product_code").is_not_null())
            .join(regio, on="gemeente_code", how="left")
            .join(lijst, on=["inkoopregio", "product_categorie", "product_code"], how="anti", nulls_equal=False)
        )
    return check


for _t in PRODUCT_TABLES:
    derived(f"product_code_in_categorie_{_t}", _t, show=["gemeente_code", "product_categorie", "product_code"])(
        _product_code_in_categorie(_t))


# -------------------------------------------------------------------------------------- verzoeken and start/stop

@derived("verwijzer_agb_of_naam", "verzoeken", show=["verwijzer_type", "verwijzer_zorgverlenercode", "verwijzer_naam"])
def verwijzer_agb_of_naam(tables: Tables) -> pl.DataFrame:
    return _where(tables, "verzoeken", pl.col("verwijzer_type").is_in(VERWIJZER_MET_AGB)
                  & pl.col("verwijzer_zorgverlenercode").is_null() & pl.col("verwijzer_naam").is_null())


@derived("verwijzer_geen_agb_bij_ander_type", "verzoeken", show=["verwijzer_type", "verwijzer_zorgverlenercode"])
def verwijzer_geen_agb(tables: Tables) -> pl.DataFrame:
    return _where(tables, "verzoeken", ~pl.col("verwijzer_type").is_in(VERWIJZER_MET_AGB).fill_null(True)
                  & pl.col("verwijzer_zorgverlenercode").is_not_null())


def _status_aanlevering(table: str) -> Derived:
    def check(tables: Tables) -> pl.DataFrame:
        return _where(tables, table, ~pl.col("status_aanlevering").is_in(["1", "3"]).fill_null(False))
    return check


for _t in ["zorgstarts", "zorgstops"]:
    derived(f"status_aanlevering_1_of_3_{_t}", _t, show=["status_aanlevering"])(_status_aanlevering(_t))


# ------------------------------------------------------------------------------------------ declaratie periods

@derived("declaratieperiode_kalendermaand", "declaraties", show=["begindatum", "einddatum"])
def declaratieperiode(tables: Tables) -> pl.DataFrame:
    b, e = pl.col("begindatum"), pl.col("einddatum")
    ok = (b.dt.day() == 1) & (e == b.dt.month_end()) & (b >= dt.date(2021, 1, 1))
    return _where(tables, "declaraties", ~ok.fill_null(False))


@derived("productperiode_een_kalendermaand", "prestaties", show=["begindatum", "einddatum"])
def productperiode_maand(tables: Tables) -> pl.DataFrame:
    b, e = pl.col("begindatum"), pl.col("einddatum")
    return _where(tables, "prestaties", ~(b.dt.truncate("1mo") == e.dt.truncate("1mo")).fill_null(False))


@derived("productperiode_grenzen", "prestaties", show=["toewijzing_nummer", "begindatum", "einddatum"])
def productperiode_grenzen(tables: Tables) -> pl.DataFrame:
    stops = tables["zorgstops"].group_by(TOEWIJZING).agg(pl.col("einddatum").alias("stop_einddata"))
    # issue 12 (flows): care restarted after a temporary stop (reden 20) is claimed from the restart's Begindatum
    starts = tables["zorgstarts"].group_by(TOEWIJZING).agg(pl.col("begindatum").alias("start_begindata"))
    j = (_rows(tables, "prestaties")
         .join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum", einddatum="tw_einddatum"), on=TOEWIJZING, how="left")
         .join(stops, on=TOEWIJZING, how="left").join(starts, on=TOEWIJZING, how="left"))
    b, e = pl.col("begindatum"), pl.col("einddatum")
    start_ok = ((b.dt.day() == 1) | (b == pl.col("tw_ingangsdatum")).fill_null(False)
                | pl.col("start_begindata").list.contains(b).fill_null(False))
    end_ok = (
        (e == e.dt.month_end())
        | (e == pl.col("tw_einddatum")).fill_null(False)
        | pl.col("stop_einddata").list.contains(e).fill_null(False)
    )
    return j.with_columns(start_ok.alias("start_ok"), end_ok.alias("end_ok")).filter(
        ~(pl.col("start_ok") & pl.col("end_ok")).fill_null(False))


# --------------------------------------------------------------------------------------------------- amounts

@derived("bedrag_is_volume_maal_tarief", "prestaties",
         show=["eenheid", "geleverd_volume", "product_tarief", "ingediend_bedrag"])
def bedrag_volume_tarief(tables: Tables) -> pl.DataFrame:
    euro = pl.col("eenheid") == "83"
    expected = pl.when(euro).then(pl.col("geleverd_volume")).otherwise(pl.col("geleverd_volume") * pl.col("product_tarief"))
    return _where(tables, "prestaties", pl.col("ingediend_bedrag").ne_missing(pl.col("verwacht_bedrag")),
                  verwacht_bedrag=expected)


@derived("totaalbedrag_is_som_prestaties", "declaraties", show=["debet_credit", "totaal_bedrag"])
def totaalbedrag(tables: Tables) -> pl.DataFrame:
    sums = tables["prestaties"].group_by(DECLARATIE).agg(signed("ingediend_bedrag").sum().alias("som_prestaties"))
    j = _rows(tables, "declaraties").join(sums, on=DECLARATIE, how="left").with_columns(
        pl.col("som_prestaties").fill_null(0), signed("totaal_bedrag").alias("totaal_signed"))
    return j.filter(pl.col("totaal_signed") != pl.col("som_prestaties"))


# the amount of each table that carries a DebetCredit sign (CS325)
SIGNED_AMOUNTS = {"prestaties": "ingediend_bedrag", "declaraties": "totaal_bedrag",
                  "declaratie_antwoorden": "totaal_toegekend_bedrag"}


def _bedrag_nul_is_debet(table: str) -> Derived:
    def check(tables: Tables) -> pl.DataFrame:
        return _where(tables, table,
                      (pl.col(SIGNED_AMOUNTS[table]) == 0) & pl.col("debet_credit").ne_missing(pl.lit("D")))
    return check


for _t, _amount in SIGNED_AMOUNTS.items():
    derived(f"bedrag_nul_is_debet_{_t}", _t, show=[_amount, "debet_credit"])(_bedrag_nul_is_debet(_t))


@derived("vorig_referentie_alleen_en_altijd_bij_credit", "prestaties",
         show=["debet_credit", "vorig_referentie_nummer"])
def vorig_referentie(tables: Tables) -> pl.DataFrame:
    return _where(tables, "prestaties",
                  (pl.col("debet_credit") == "C") != pl.col("vorig_referentie_nummer").is_not_null())


# ------------------------------------------------------------------------------------------ toewijzing numbering

@derived("toewijzing_nummer_uniek_per_gemeente", "toewijzingen", show=["bsn", "agb_code", "product_code"])
def toewijzing_nummer_uniek(tables: Tables) -> pl.DataFrame:
    mixed = pl.any_horizontal(pl.col(c).n_unique().over(TOEWIJZING) > 1 for c in ["bsn", "agb_code", "product_code"])
    dup = pl.struct("gemeente_code", "toewijzing_nummer", "versie").is_duplicated()
    return _where(tables, "toewijzingen", pl.col("andere_partij") | pl.col("versie_dubbel"),
                  andere_partij=mixed, versie_dubbel=dup)


@derived("geen_overlappende_toewijzingen", "toewijzingen",
         show=["bsn", "agb_code", "product_code", "ingangsdatum", "einddatum"])
def geen_overlap(tables: Tables) -> pl.DataFrame:
    """Flags the latest version row of a toewijzing that starts while another one for the same client, aanbieder
    and product runs (withdrawn ones excluded)."""
    tw = _rows(tables, "toewijzingen")
    # issue 12: an aspecifiek toewijzing (no ProductCode) stacks on one of the same categorie: null codes match
    same = ["gemeente_code", "bsn", "agb_code", "product_categorie", "product_code"]
    lt = latest_toewijzing(tw).filter(pl.col("reden_wijziging").ne_missing(pl.lit("13"))).with_columns(
        pl.col("einddatum").fill_null(FAR_FUTURE).alias("_eind"))
    other = lt.select(*same, pl.col("toewijzing_nummer").alias("ander_nummer"),
                      pl.col("ingangsdatum").alias("ander_ingangsdatum"), pl.col("_eind").alias("ander_einddatum"))
    pairs = lt.join(other, on=same, how="inner", nulls_equal=True)
    # the stacked one is the toewijzing that starts later (on equal starts: the higher number), not the one it lands on
    later = (pl.col("ingangsdatum") > pl.col("ander_ingangsdatum")) | (
        (pl.col("ingangsdatum") == pl.col("ander_ingangsdatum")) & (pl.col("toewijzing_nummer") > pl.col("ander_nummer")))
    return pairs.filter((pl.col("toewijzing_nummer") != pl.col("ander_nummer"))
                        & (pl.col("ingangsdatum") <= pl.col("ander_einddatum"))
                        & (pl.col("ander_ingangsdatum") <= pl.col("_eind")) & later)


@derived("toewijzing_referentie_bestaat", "toewijzingen", show=["agb_code", "referentie_aanbieder", "bsn"])
def toewijzing_referentie(tables: Tables) -> pl.DataFrame:
    k = ["gemeente_code", "agb_code", "referentie_aanbieder", "bsn"]
    # issue 12 (flows): a JW301 honours a JW315 (verzoeken) or a JW317 (wijzigingsverzoeken)
    v = pl.concat([tables["verzoeken"].select(k), tables["wijzigingsverzoeken"].select(k)]).unique()
    return _rows(tables, "toewijzingen").filter(pl.col("referentie_aanbieder").is_not_null()).join(
        v, on=["gemeente_code", "agb_code", "referentie_aanbieder", "bsn"], how="anti")


# ------------------------------------------------------------------------------------------------ start / stop

def _bij_bestaande_toewijzing(table: str) -> Derived:
    def check(tables: Tables) -> pl.DataFrame:
        parties = tables["toewijzingen"].select("gemeente_code", "toewijzing_nummer", "bsn", "agb_code").unique()
        return _rows(tables, table).join(parties, on=["gemeente_code", "toewijzing_nummer", "bsn", "agb_code"],
                                         how="anti", nulls_equal=False)
    return check


for _t, _msg in [("zorgstarts", "start"), ("zorgstops", "stop")]:
    derived(f"{_msg}_bij_bestaande_toewijzing", _t, show=["bsn"])(_bij_bestaande_toewijzing(_t))


@derived("een_actuele_start_per_toewijzing", "zorgstarts", show=["dagtekening", "status_aanlevering"])
def een_actuele_start(tables: Tables) -> pl.DataFrame:
    stops = tables["zorgstops"].filter(pl.col("status_aanlevering") == "1").group_by(STARTKEY).agg(
        pl.col("einddatum").max().alias("stop_einddatum"))
    s = (_rows(tables, "zorgstarts").filter(pl.col("status_aanlevering") == "1").join(stops, on=STARTKEY, how="left")
         .sort(*TOEWIJZING, "begindatum", "dagtekening", ROW))
    s = s.with_columns(
        pl.col("begindatum").shift(1).over(TOEWIJZING).alias("vorige_begindatum"),
        pl.col("stop_einddatum").shift(1).over(TOEWIJZING).alias("vorige_stop_einddatum"),
    )
    return s.filter(pl.col("vorige_begindatum").is_not_null() & (
        pl.col("vorige_stop_einddatum").is_null() | (pl.col("begindatum") <= pl.col("vorige_stop_einddatum"))))


@derived("stop_heeft_eerdere_start", "zorgstops", show=["dagtekening"])
def stop_heeft_start(tables: Tables) -> pl.DataFrame:
    starts = tables["zorgstarts"].filter(pl.col("status_aanlevering") == "1").group_by(STARTKEY).agg(
        pl.col("dagtekening").min().alias("start_dagtekening"))
    j = _rows(tables, "zorgstops").join(starts, on=STARTKEY, how="left")
    return j.filter(pl.col("start_dagtekening").is_null() | (pl.col("start_dagtekening") > pl.col("dagtekening")))


@derived("start_begindatum_ge_toewijzing_ingangsdatum", "zorgstarts", show=["begindatum"])
def start_na_ingang(tables: Tables) -> pl.DataFrame:
    j = _rows(tables, "zorgstarts").join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum"), on=TOEWIJZING, how="left")
    return j.filter(pl.col("begindatum") < pl.col("tw_ingangsdatum"))


# ------------------------------------------------------------------------------------------ prestatie vs toewijzing

@derived("prestatie_bij_toewijzing_van_client", "prestaties", show=["gemeente_code", "toewijzing_nummer", "bsn"])
def prestatie_bij_toewijzing(tables: Tables) -> pl.DataFrame:
    tw = tables["toewijzingen"].select(*TOEWIJZING, "bsn", "agb_code").unique().group_by(TOEWIJZING).agg(
        pl.col("bsn").alias("tw_bsn"), pl.col("agb_code").alias("tw_agb"))
    j = _rows(tables, "prestaties").join(tw, on=TOEWIJZING, how="left")
    ok = pl.col("tw_bsn").list.contains(pl.col("bsn")) & pl.col("tw_agb").list.contains(pl.col("agb_code"))
    return j.filter(~ok.fill_null(False))


@derived("prestatie_product_als_toewijzing", "prestaties",
         show=["toewijzing_nummer", "product_categorie", "product_code", "eenheid"])
def prestatie_product(tables: Tables) -> pl.DataFrame:
    tw = _tw_cols(tables, product_categorie="tw_product_categorie", product_code="tw_product_code", eenheid="tw_eenheid",
                  budget="tw_budget")
    j = _rows(tables, "prestaties").join(tw, on=TOEWIJZING, how="inner")
    # issue 12: an aspecifiek toewijzing with a Budget has no Omvang, hence no Eenheid: its claims are in euro's (83)
    eenheid = pl.when(pl.col("tw_budget").is_not_null()).then(pl.lit("83")).otherwise(pl.col("tw_eenheid"))
    return j.filter(
        pl.col("product_categorie").ne_missing(pl.col("tw_product_categorie"))
        # issue 13: an aspecifiek toewijzing leaves the code open (iJw Toewijzingsvarianten): its claims declare the
        # contract's code of the categorie (JW323 requires one), so only a specifiek toewijzing's code is compared
        | (pl.col("tw_budget").is_null() & pl.col("product_code").ne_missing(pl.col("tw_product_code")))
        | pl.col("eenheid").ne_missing(eenheid)
    )


@derived("productperiode_binnen_toewijzing", "prestaties", show=["toewijzing_nummer", "begindatum", "einddatum"])
def productperiode_binnen_toewijzing(tables: Tables) -> pl.DataFrame:
    j = _rows(tables, "prestaties").join(_tw_cols(tables, ingangsdatum="tw_ingangsdatum", einddatum="tw_einddatum"),
                                         on=TOEWIJZING, how="inner")
    return j.filter((pl.col("begindatum") < pl.col("tw_ingangsdatum"))
                    | (pl.col("tw_einddatum").is_not_null() & (pl.col("einddatum") > pl.col("tw_einddatum"))))


@derived("prestatie_niet_na_zorgstop", "prestaties", show=["toewijzing_nummer", "einddatum"])
def prestatie_niet_na_stop(tables: Tables) -> pl.DataFrame:
    k = ["gemeente_code", "agb_code", "toewijzing_nummer"]
    stops = tables["zorgstops"].filter((pl.col("status_aanlevering") == "1") & (pl.col("reden_beeindiging") != "20"))
    stops = stops.group_by(k).agg(pl.col("einddatum").max().alias("stop_einddatum"))
    j = _rows(tables, "prestaties").join(stops, on=k, how="inner")
    return j.filter(pl.col("einddatum") > pl.col("stop_einddatum"))


@derived("geleverd_volume_binnen_toegewezen", "prestaties",
         show=["toewijzing_nummer", "begindatum", "einddatum", "eenheid", "geleverd_volume"])
def geleverd_volume(tables: Tables) -> pl.DataFrame:
    j = _rows(tables, "prestaties").join(_tw_cols(tables, volume="tw_volume", frequentie="tw_frequentie", budget="tw_budget"),
                                         on=TOEWIJZING, how="inner").with_columns(volume_cap().alias("max_volume"))
    # issue 12: a Budget toewijzing has no Omvang to pro-rate; TR369 checks its claims against the budget
    over = pl.col("max_volume").is_null() | (pl.col("geleverd_volume") > pl.col("max_volume") + 1e-9)
    return j.filter(pl.col("tw_budget").is_null() & over)


@derived("som_volume_binnen_totaal", "prestaties", show=["toewijzing_nummer", "debet_credit", "geleverd_volume"])
def som_volume(tables: Tables) -> pl.DataFrame:
    tw = _tw_cols(tables, volume="tw_volume", frequentie="tw_frequentie").filter(pl.col("tw_frequentie") == "6")
    j = _rows(tables, "prestaties").join(tw, on=TOEWIJZING, how="inner").with_columns(
        signed("geleverd_volume").sum().over(TOEWIJZING).alias("netto_volume"))
    return j.filter(pl.col("netto_volume") > pl.col("tw_volume"))


# --------------------------------------------------------------------------------------------- claim identities

@derived("declaratie_nummer_uniek_alfanumeriek", "declaraties", show=[])
def declaratie_nummer(tables: Tables) -> pl.DataFrame:
    fmt = pl.col("declaratie_nummer").str.contains(r"^[A-Za-z0-9]{1,12}$").fill_null(False)
    return _where(tables, "declaraties", pl.col("nummer_dubbel") | ~pl.col("nummer_formaat_ok"),
                  nummer_dubbel=pl.struct(*DECLARATIE).is_duplicated(), nummer_formaat_ok=fmt)


@derived("een_actieve_debet", "prestaties", show=["gemeente_code", "toewijzing_nummer", "begindatum", "debet_credit"])
def een_actieve_debet(tables: Tables) -> pl.DataFrame:
    grp = ["agb_code", "gemeente_code", "toewijzing_nummer", "begindatum"]
    actief = ((pl.col("debet_credit") == "D").sum().over(grp).cast(pl.Int64)
              - (pl.col("debet_credit") == "C").sum().over(grp).cast(pl.Int64))
    return _where(tables, "prestaties", pl.col("actieve_debets") > 1, actieve_debets=actief)


def _credits_with_debet(tables: Tables) -> pl.DataFrame:
    """Credit prestaties (with `_row`) next to the debet their VorigReferentieNummer names (debet_* columns)."""
    return _shared("credits_with_debet", (tables["prestaties"], tables.get(REJECTED_LINES), tables["declaraties"]),
                   lambda: _build_credits_with_debet(tables))


def _build_credits_with_debet(tables: Tables) -> pl.DataFrame:
    p = _rows(tables, "prestaties")
    periode = tables["declaraties"].select(*DECLARATIE, pl.col("begindatum").alias("declaratie_begindatum"))
    debets = p.filter(pl.col("debet_credit") == "D").join(periode, on=DECLARATIE, how="left").select(
        "agb_code", pl.col("referentie_nummer").alias("vorig_referentie_nummer"),
        *[pl.col(c).alias(f"debet_{c}") for c in
          ["declaratie_nummer", "declaratie_begindatum", "gemeente_code", "bsn", "toewijzing_nummer", "begindatum",
           "einddatum", "ingediend_bedrag"]],
    )
    credits = p.filter(pl.col("debet_credit") == "C").join(periode, on=DECLARATIE, how="left")
    return credits.join(debets, on=["agb_code", "vorig_referentie_nummer"], how="left")


@derived("credit_op_eerdere_debet", "prestaties", show=["vorig_referentie_nummer", "declaratie_nummer"])
def credit_op_debet(tables: Tables) -> pl.DataFrame:
    c = _credits_with_debet(tables)
    same = ["gemeente_code", "bsn", "toewijzing_nummer", "begindatum", "einddatum", "ingediend_bedrag"]
    mismatch = pl.any_horizontal(pl.col(a).ne_missing(pl.col(f"debet_{a}")) for a in same)
    bad = (
        pl.col("debet_declaratie_nummer").is_null()
        | mismatch
        | (pl.col("debet_declaratie_begindatum") > pl.col("declaratie_begindatum")).fill_null(True)
        | pl.struct("agb_code", "vorig_referentie_nummer").is_duplicated()
    )
    return c.filter(bad)


@derived("credit_niet_in_declaratie_van_debet", "prestaties", show=["vorig_referentie_nummer", "declaratie_nummer"])
def credit_niet_in_zelfde(tables: Tables) -> pl.DataFrame:
    c = _credits_with_debet(tables)
    return c.filter(pl.col("declaratie_nummer") == pl.col("debet_declaratie_nummer")).select(
        ROW, "vorig_referentie_nummer", "declaratie_nummer", *dictionary_key("prestaties"), "debet_declaratie_nummer")


@derived("tarief_is_contracttarief", "prestaties", show=["gemeente_code", "product_code", "eenheid", "product_tarief"])
def contracttarief(tables: Tables) -> pl.DataFrame:
    # issue 12: the tarief of the contract period that holds the begindatum, the aanbieder's own where it has one
    j = contract_tarief(_rows(tables, "prestaties").filter(pl.col("eenheid").ne_missing(pl.lit("83"))),
                        tables["producten"], tables["gemeenten"])
    return j.filter(pl.col("product_tarief").ne_missing(pl.col("contract_tarief")))


@derived("prestatie_heeft_declaratie", "prestaties", show=["declaratie_nummer", "gemeente_code"])
def prestatie_heeft_declaratie(tables: Tables) -> pl.DataFrame:
    d = tables["declaraties"].select(*DECLARATIE, "gemeente_code")
    return _rows(tables, "prestaties").join(d, on=[*DECLARATIE, "gemeente_code"], how="anti")


@derived("productperiode_niet_na_declaratieperiode", "prestaties", show=["declaratie_nummer", "einddatum"])
def niet_na_declaratieperiode(tables: Tables) -> pl.DataFrame:
    d = tables["declaraties"].select(*DECLARATIE, pl.col("einddatum").alias("declaratie_einddatum"))
    j = _rows(tables, "prestaties").join(d, on=DECLARATIE, how="inner")
    return j.filter(pl.col("einddatum") > pl.col("declaratie_einddatum"))


# --------------------------------------------------------------------------------------------------- timeliness

def _late(tables: Tables, table: str, date: str, days: int) -> pl.DataFrame:
    """Rows sent (dagtekening) before `date` or more than `days` werkdagen after it."""
    return late_sent(_rows(tables, table), date, days)


@derived("start_binnen_5_werkdagen", "zorgstarts", show=["dagtekening"])
def start_tijdig(tables: Tables) -> pl.DataFrame:
    return _late(tables, "zorgstarts", "begindatum", 5)


@derived("stop_binnen_5_werkdagen", "zorgstops", show=["einddatum", "dagtekening"])
def stop_tijdig(tables: Tables) -> pl.DataFrame:
    return _late(tables, "zorgstops", "einddatum", 5)


@derived("antwoord_op_verzoek_binnen_5_werkdagen", "verzoeken", show=["dagtekening"])
def antwoord_tijdig(tables: Tables) -> pl.DataFrame:
    """The first answer (JW319, or the first JW301 honouring the verzoek) within 5 werkdagen (a rejection on the
    woonplaatsbeginsel within 2 weeks, OP359); after an "in onderzoek" JW319 the next answer within 5 more. Verzoeken
    without any answer in the data are not judged."""
    return _antwoord_te_laat(tables, "verzoeken")


def _antwoord_te_laat(tables: Tables, table: str) -> pl.DataFrame:
    """Requests of `table` (verzoeken or wijzigingsverzoeken) answered late (OP274 / OP346)."""
    return late_answers(_rows(tables, table), tables["antwoorden"], tables["toewijzingen"])


@derived("declaratie_antwoord_binnen_10_werkdagen", "declaratie_antwoorden", show=["dagtekening"])
def declaratie_antwoord_tijdig(tables: Tables) -> pl.DataFrame:
    return late_declaratie_antwoorden(_rows(tables, "declaratie_antwoorden"), tables["declaraties"])


@derived("een_antwoord_per_declaratie", "declaraties", show=["gemeente_code"])
def een_antwoord(tables: Tables) -> pl.DataFrame:
    """Every declaratie (unique key) has exactly one JW325 of the same gemeente. Answers without a declaratie are rows
    of declaratie_antwoorden and are not reported here."""
    a = tables["declaratie_antwoorden"].group_by(DECLARATIE).agg(
        pl.len().alias("aantal_antwoorden"), pl.col("gemeente_code").alias("antwoord_gemeenten"))
    j = _rows(tables, "declaraties").join(a, on=DECLARATIE, how="left").with_columns(
        pl.col("aantal_antwoorden").fill_null(0), pl.len().over(DECLARATIE).alias("aantal_declaraties"))
    return j.filter((pl.col("aantal_antwoorden") != 1) | (pl.col("aantal_declaraties") != 1)
                    | ~pl.col("antwoord_gemeenten").list.contains(pl.col("gemeente_code")).fill_null(False))


@derived("antwoord_op_bestaande_declaratie", "declaratie_antwoorden", show=["gemeente_code"])
def antwoord_op_declaratie(tables: Tables) -> pl.DataFrame:
    """The other half of `een_antwoord_per_declaratie`: a JW325 without a JW323 of the same aanbieder, number and
    gemeente."""
    d = tables["declaraties"].select(*DECLARATIE, "gemeente_code")
    return _rows(tables, "declaratie_antwoorden").join(d, on=[*DECLARATIE, "gemeente_code"], how="anti",
                                                       nulls_equal=False)


# ------------------------------------------------------------------------------------------------ client data

@derived("geboortedatum_voor_zorg", "jeugdigen", show=["geboortedatum"])
def geboortedatum_voor_zorg(tables: Tables) -> pl.DataFrame:
    """The birth date lies before the youth's first care in the gemeente, and less than 23 years before it."""
    first = tables["trajecten"].group_by("gemeente_code", "client_id").agg(pl.col("begindatum").min().alias("eerste_zorg"))
    j = _rows(tables, "jeugdigen").join(first, on=["gemeente_code", "client_id"], how="left")
    return j.filter((pl.col("geboortedatum") > pl.col("eerste_zorg"))
                    | (pl.col("geboortedatum") <= pl.col("eerste_zorg").dt.offset_by("-23y")))


@derived("geboortedatum_als_in_verzoek", "jeugdigen", show=["bsn", "geboortedatum"])
def geboortedatum_als_in_verzoek(tables: Tables) -> pl.DataFrame:
    """The registered birth date equals the one the aanbieder sent in the youth's JW315 requests to that gemeente."""
    v = tables["verzoeken"].select("gemeente_code", "bsn", pl.col("geboortedatum").alias("verzoek_geboortedatum")).unique()
    j = _rows(tables, "jeugdigen").join(v, on=["gemeente_code", "bsn"], how="inner")
    return j.filter(pl.col("geboortedatum") != pl.col("verzoek_geboortedatum"))


@derived("een_registratie_per_bsn", "jeugdigen", show=["bsn", "achternaam"])
def een_registratie_per_bsn(tables: Tables) -> pl.DataFrame:
    """A BSN is registered once per gemeente. Of a second registration of the same BSN (e.g. with a typo in the
    name) the one the gemeente's trajecten refer to is kept (else the lowest client_id); the others are flagged."""
    in_care = tables["trajecten"].select("gemeente_code", "client_id").unique().with_columns(pl.lit(True).alias("in_zorg"))
    j = (_rows(tables, "jeugdigen").filter(pl.col("bsn").is_not_null())
         .join(in_care, on=["gemeente_code", "client_id"], how="left").with_columns(pl.col("in_zorg").fill_null(False))
         .sort("gemeente_code", "bsn", pl.col("in_zorg"), "client_id", descending=[False, False, True, False]))
    return j.filter(pl.int_range(pl.len()).over("gemeente_code", "bsn") > 0)


# --- issue 12: domains (aspecifiek toewijzingen with a Budget)

@derived("omvang_of_budget", "toewijzingen", show=["product_categorie", "volume", "budget"])
def omvang_of_budget(tables: Tables) -> pl.DataFrame:
    both = pl.col("volume").is_not_null() & pl.col("budget").is_not_null()
    no_product = pl.col("budget").is_null() & pl.col("product_categorie").is_null()
    return _where(tables, "toewijzingen", pl.col("omvang_en_budget") | pl.col("geen_product"),
                  omvang_en_budget=both, geen_product=no_product)


@derived("omvang_bij_productcode", "toewijzingen", show=["product_code", "volume"])
def omvang_bij_productcode(tables: Tables) -> pl.DataFrame:
    return _where(tables, "toewijzingen", pl.col("product_code").is_null() != pl.col("volume").is_null(),
                  heeft_omvang=pl.col("volume").is_not_null())


@derived("einddatum_bij_budget", "toewijzingen", show=["budget", "einddatum"])
def einddatum_bij_budget(tables: Tables) -> pl.DataFrame:
    return _where(tables, "toewijzingen", pl.col("budget").is_not_null() & pl.col("einddatum").is_null(),
                  heeft_budget=pl.col("budget").is_not_null())


@derived("som_binnen_budget", "prestaties", show=["toewijzing_nummer", "debet_credit", "ingediend_bedrag"])
def som_binnen_budget(tables: Tables) -> pl.DataFrame:
    tw = _tw_cols(tables, budget="tw_budget").filter(pl.col("tw_budget").is_not_null())
    j = _rows(tables, "prestaties").join(tw, on=TOEWIJZING, how="inner").with_columns(
        signed("ingediend_bedrag").sum().over(TOEWIJZING).alias("netto_bedrag"))
    return j.filter(pl.col("netto_bedrag") > pl.col("tw_budget"))


# ------------------------------------------------------------------------- issue 12: flows (JW317, 307(20), WPB)

@derived("antwoord_op_wijzigingsverzoek_binnen_5_werkdagen", "wijzigingsverzoeken", show=["dagtekening"])
def antwoord_vow_tijdig(tables: Tables) -> pl.DataFrame:
    """OP346: the first answer to a JW317 (JW319, or the JW301 carrying its ReferentieAanbieder) within 5 werkdagen,
    after an "in onderzoek" JW319 the next within 5 more; unanswered JW317s are not judged."""
    return _antwoord_te_laat(tables, "wijzigingsverzoeken")


@derived("reden_afwijzing_alleen_bij_afwijzing", "antwoorden", show=["verzoek_antwoord", "reden_afwijzing"])
def reden_afwijzing_bij_afwijzing(tables: Tables) -> pl.DataFrame:
    return _where(tables, "antwoorden",
                  (pl.col("verzoek_antwoord") == "1") != pl.col("reden_afwijzing").is_not_null())


@derived("woonplaatsbeginsel_bij_reden_8", "antwoorden",
         show=["gemeente_code", "reden_afwijzing", "woonplaatsbeginsel_gemeente"])
def woonplaatsbeginsel_bij_reden_8(tables: Tables) -> pl.DataFrame:
    wpg = pl.col("woonplaatsbeginsel_gemeente")
    return _where(tables, "antwoorden", (pl.col("reden_afwijzing") == "8")
                  & (wpg.is_null() | (wpg == pl.col("gemeente_code"))).fill_null(True))


@derived("geen_woonplaatsbeginsel_zonder_reden_8", "antwoorden", show=["reden_afwijzing", "woonplaatsbeginsel_gemeente"])
def geen_woonplaatsbeginsel(tables: Tables) -> pl.DataFrame:
    return _where(tables, "antwoorden", pl.col("reden_afwijzing").ne_missing(pl.lit("8"))
                  & pl.col("woonplaatsbeginsel_gemeente").is_not_null())


@derived("woonplaatsbeginsel_binnen_2_weken", "antwoorden", show=["dagtekening"])
def woonplaatsbeginsel_tijdig(tables: Tables) -> pl.DataFrame:
    k = ["gemeente_code", "agb_code", "referentie_aanbieder"]
    v = tables["verzoeken"].select(*k, pl.col("dagtekening").alias("verzoek_dagtekening"))
    j = _rows(tables, "antwoorden").filter(pl.col("reden_afwijzing") == "8").join(v, on=k, how="inner")
    j = j.with_columns(werkdagen(j, "verzoek_dagtekening", "dagtekening"))
    return j.filter((pl.col("dagtekening") < pl.col("verzoek_dagtekening")) | (pl.col("werkdagen") > 10))


def _stop_sequence(tables: Tables) -> pl.DataFrame:
    """The first submissions of the JW307s per start key in the order they were sent, with what came before."""
    return _shared("stop_sequence", (tables["zorgstops"],), lambda: _build_stop_sequence(tables))


def _build_stop_sequence(tables: Tables) -> pl.DataFrame:
    tijdelijk = pl.col("reden_beeindiging") == "20"
    s = _rows(tables, "zorgstops").filter(pl.col("status_aanlevering") == "1").sort(
        *STARTKEY, "dagtekening", "einddatum", ROW)
    return s.with_columns(
        tijdelijk.cast(pl.Int64).cum_sum().shift(1).over(STARTKEY).fill_null(0).alias("eerdere_tijdelijke_stops"),
        (~tijdelijk).cast(pl.Int64).cum_sum().shift(1).over(STARTKEY).fill_null(0).alias("eerdere_definitieve_stops"),
        pl.col("einddatum").cum_max().shift(1).over(STARTKEY).alias("eerdere_einddatum"),
    )


@derived("geen_tweede_tijdelijke_stop", "zorgstops", show=["reden_beeindiging", "dagtekening"])
def geen_tweede_tijdelijke_stop(tables: Tables) -> pl.DataFrame:
    return _stop_sequence(tables).filter((pl.col("reden_beeindiging") == "20") & (pl.col("eerdere_tijdelijke_stops") > 0))


@derived("geen_stop_na_definitieve_stop", "zorgstops", show=["reden_beeindiging", "dagtekening"])
def geen_stop_na_definitieve(tables: Tables) -> pl.DataFrame:
    return _stop_sequence(tables).filter(pl.col("eerdere_definitieve_stops") > 0)


@derived("einddatum_volgende_stop_niet_eerder", "zorgstops", show=["einddatum", "dagtekening"])
def einddatum_volgende_stop(tables: Tables) -> pl.DataFrame:
    return _stop_sequence(tables).filter(pl.col("einddatum") < pl.col("eerdere_einddatum"))
