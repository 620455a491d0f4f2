"""Derive the iJw message tables from the simulated trajectories, in bulk over all gemeenten at once.

Every operation is row-wise or grouped within a gemeente, so a gemeente's rows do not depend on which other
gemeenten are in the run. Per-row randomness (delivered volume, corrections, send dates) comes from keyed hashes
of the row's own identifiers, never from a shared stream.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .dictionary import stable_order
from .model import model
from .privacy import (D_DECLARATIE, D_PRESTATIE, D_TOEWIJZING, DECLARATIE_NUMMER, REFERENTIE_NUMMER,
                      TOEWIJZING_NUMMER_RANGE, keyed_hash, keyed_uniform, opaque_code, opaque_number)
from .providers import with_claim_tarief
from .reference import care_model
from .simulate import _TW_SEQ_BASE, running_max

_EPOCH = np.datetime64("1970-01-01", "D")
# keyed-hash field tags
H_LEVERING, H_CORRECTIE, H_DECL_DAY, H_ANTW_DAY = 101, 102, 103, 104
# --- issue 12: timing (utilisation, month noise, etmaal absence, declaratie and correction lags, correction size)
H_UTIL, H_MONTH_NOISE, H_DECL_LAG, H_CORR_LAG, H_CORR_UP, H_CORR_SIZE = range(200, 206)


def _to_date(days: pl.Expr) -> pl.Expr:
    return days.cast(pl.Int32).cast(pl.Date)


def _busday(days: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Date (as int days) plus `offset` werkdagen (Mon-Fri; public holidays are not modelled)."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    return (np.busday_offset(d, np.asarray(offset, dtype=np.int64), roll="forward") - _EPOCH).astype(np.int64)


def _with_busday(df: pl.DataFrame, name: str, day_col: str, offset_col: str) -> pl.DataFrame:
    return df.with_columns(pl.Series(name, _busday(df[day_col].to_numpy(), df[offset_col].to_numpy())))


def enrich(traj: pl.DataFrame, producten: pl.DataFrame, aanbieders: pl.DataFrame, regio_of: pl.DataFrame,
           first_year: int, last_year: int) -> pl.DataFrame:
    """Attach care form, referrer, product and aanbieder attributes, the iJw flag and the toewijzing number."""
    m = model()
    nv = len(m.verwijzers)
    cells = pl.DataFrame({
        "cell": np.arange(len(m.joint)),
        "hulpvorm": [m.hulpvormen[c // nv] for c in range(len(m.joint))],
        "verwijzer": [m.verwijzers[c % nv] for c in range(len(m.joint))],
        "verwijzer_type": [m.verwijzer_code[c % nv] for c in range(len(m.joint))],
        "path": [m.path[c % nv] for c in range(len(m.joint))],
    })
    einde = pl.DataFrame({"einde_cat": np.arange(-1, len(m.einde)), "einde_reden": ["verhuizing", *m.einde]})
    prod = producten.select(
        "inkoopregio", pl.col("product_index").cast(pl.Int64).alias("product"), "product_categorie", "product_code",
        "eenheid", "frequentie", "tarief", "levering_min", "levering_max",
    )
    pool = aanbieders.select("inkoopregio", pl.int_range(pl.len()).over("inkoopregio").alias("aanbieder"), "agb_code")
    df = (
        traj.join(regio_of, on="gemeente_code", how="left")
        .join(cells, on="cell", how="left")
        .join(einde, on="einde_cat", how="left")
        .join(prod, on=["inkoopregio", "product"], how="left")
        .join(pool, on=["inkoopregio", "aanbieder"], how="left")
    )
    ws = int((np.datetime64(f"{first_year}-01-01") - _EPOCH).astype(np.int64))
    we = int((np.datetime64(f"{last_year}-12-31") - _EPOCH).astype(np.int64))
    df = df.with_columns(pl.lit(ws).alias("_ws"), pl.lit(we).alias("_we"))
    # Send date of the JW315 and of the answer(s), used by several tables.
    df = df.with_columns((pl.col("begin") - pl.col("_req_lead")).alias("_req_date"))
    df = _with_busday(df, "_ans_date", "_req_date", "_ans_delay")
    return _with_busday(df, "_ans2_date", "_ans_date", "_onderzoek_delay")


def in_window() -> pl.Expr:
    return (pl.col("begin") <= pl.col("_we")) & (pl.col("end") >= pl.col("_ws"))


def trajecten(df: pl.DataFrame) -> pl.DataFrame:
    # lazy, so the filter copies only the selected columns of the wide frame
    return df.lazy().filter(~pl.col("rejected") & in_window()).select(
        "traject_id", "gemeente_code", "client_id", "bsn", "hulpvorm", "verwijzer", "verwijzer_type", "in_ijw",
        "oorsprong",
        pl.when("in_ijw").then("product_categorie").alias("product_categorie"),
        pl.when("in_ijw").then("product_code").alias("product_code"),
        "agb_code", "toewijzing_nummer",
        _to_date(pl.col("begin")).alias("begindatum"),
        _to_date(pl.col("planned_end")).alias("geplande_einddatum"),
        _to_date(pl.col("end")).alias("einddatum"),
        "einde_reden", "reden_beeindiging",
    ).collect()


def _ijw_rows() -> pl.Expr:
    return pl.col("in_ijw") & ~pl.col("rejected") & in_window()


def _ijw(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(_ijw_rows())


def _timing(df: pl.DataFrame) -> pl.DataFrame:
    """--- issue 12: timing. Columns the toewijzing, start and claim tables share: `_ing` (the toewijzing Ingangsdatum,
    before the care start `begin` by the waiting time), `_tw_end` (the unshortened toewijzing end), `_plan0` and
    `_late` (care that runs past its first planned Einddatum, covered by a verlenging), `_first_date` (the day the
    first JW301 is sent) and `_start_msg` (the JW305 dagtekening: never before that JW301). A frame that has them
    already (`with_timing`) is returned as it is: every column is row-wise or grouped within a gemeente."""
    if "_start_msg" in df.columns:
        return df
    df = _ingang(df)
    tm = care_model()["timing"]
    kmax = (pl.col("end") - pl.col("begin")) // 365
    tw_end = pl.min_horizontal("planned_end", pl.col("begin") + 365 * (kmax + 1) - 1)
    # Care past the first plan: the first plan ended `_later_days` before the end, inside the last year's toewijzing.
    plan0 = pl.col("end") - pl.col("_later_days")
    late = (pl.col("_later") & (pl.col("planned_end") == pl.col("end")) & (tw_end == pl.col("end"))
            & (plan0 >= pl.col("begin") + 365 * kmax + 14) & (plan0 >= pl.col("_ing") + 28))
    # The first JW301: the answer to the JW315, or the gemeente's own decision (before the Ingangsdatum, or after it
    # when backdated); a late answer to a care start in the window is in the window too.
    backdated = (pl.col("_bd_u") < pl.col("path").replace_strict(tm["backdated"], default=0.0, return_dtype=pl.Float64)) & (
        pl.col("_ing") + pl.col("_bd_lag") <= pl.col("_we"))
    first = (
        pl.when(pl.col("path") == "jw315").then(pl.when("_onderzoek").then("_ans2_date").otherwise("_ans_date"))
        .when(backdated).then(pl.col("_ing") + pl.col("_bd_lag"))
        .otherwise(pl.col("_ing") - pl.col("_tw_lead"))
    )
    first = pl.when(pl.col("begin") <= pl.col("_we")).then(pl.min_horizontal(first, "_we")).otherwise(first)
    df = df.with_columns(late.alias("_late"), plan0.alias("_plan0"), first.alias("_first_date"))
    start = _busday(df["begin"].to_numpy(), df["_start_delay"].to_numpy())
    return df.with_columns(pl.Series("_start_msg", np.maximum(start, df["_first_date"].to_numpy())))


def _ingang(df: pl.DataFrame) -> pl.DataFrame:
    """`_ing` and `_tw_end` of `_timing` alone (all the JW315 requests need); a timed frame is returned as it is."""
    if "_start_msg" in df.columns:
        return df
    kmax = (pl.col("end") - pl.col("begin")) // 365
    tw_end = pl.min_horizontal("planned_end", pl.col("begin") + 365 * (kmax + 1) - 1)
    wait = pl.when(pl.col("oorsprong") == "verhuizing").then(0).otherwise("_wait")
    df = df.with_columns((pl.col("begin") - wait).alias("_ing"), tw_end.alias("_tw_end"))
    # No toewijzing may start while an earlier one of the youth for the same product at the same aanbieder runs
    # (OP259): the waiting time ends at the day after it.
    key = ["gemeente_code", "bsn", "agb_code", "product_code"]
    ijw = pl.col("in_ijw") & ~pl.col("rejected")
    # Written back by row: a second product shares its host's traject_id, so a youth with two such pairs would have
    # matched each of its rows twice by traject_id (duplicate toewijzingen, TR332).
    maybe = df.with_row_index("_tr").select(
        "_tr", *key, "traject_id", "begin", "_ing", "_tw_end", (ijw & pl.struct(*key).is_duplicated()).alias("_dup"),
    ).filter("_dup").drop("_dup")
    if maybe.height:
        prev = pl.col("_tw_end").cum_max().shift(1).over(key)
        fix = maybe.sort(*key, "begin", "traject_id").select(
            "_tr", pl.min_horizontal("begin", pl.max_horizontal("_ing", prev + 1)).alias("_ing_fix")).drop_nulls()
        df = df.with_columns(df["_ing"].scatter(fix["_tr"], fix["_ing_fix"]))
    return df


def with_timing(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with the timing columns the toewijzing, start, stop and claim tables share, computed once for all four."""
    return _timing(df)


# the columns `toewijzingen` reads (of the toewijzing, its versions, shortening and withdrawal)
_TW_INPUT = [
    "gemeente_code", "toewijzing_nummer", "agb_code", "bsn", "path", "_ref_aanbieder", "product_categorie", "product_code",
    "_vol", "eenheid", "frequentie", "begin", "end", "planned_end", "_ws", "_we", "in_ijw", "rejected", "_late", "_plan0",
    "_tw_end", "_ext_u", "_ext_lag", "_ext_lead", "_first_date", "_stop_delay", "_start_msg", "_shorten",
    "_shorten_delay", "einde_reden", "reden_beeindiging", "_deleted", "_tw_seq", "_ing", "_del_shift", "_del_days",
    "_tw_time",
]


def toewijzingen(df: pl.DataFrame, seed: int | None = None) -> pl.DataFrame:
    """JW301 versions: the first toewijzing, a verlenging (reden 04) each year and past the first plan, a shortening
    after an early stop, and (given `seed`) toewijzingen withdrawn before care started (reden 13)."""
    cm = care_model()
    tm = cm["timing"]
    # only the columns the versions need, and the version frames carry the row `_row` of `t` in place of the
    # attributes every version of a toewijzing shares (gathered once at the end: exploding and sorting the wide
    # frame was most of the time)
    df = _timing(df)
    t = _ijw(df.select(c for c in _TW_INPUT if c in df.columns)).with_columns(
        ((pl.col("end") - pl.col("begin")) // 365).alias("_kmax"), pl.int_range(pl.len()).alias("_row"))
    k, kmax, late = pl.col("_k"), pl.col("_kmax"), pl.col("_late")
    boundary = lambda j: pl.min_horizontal(pl.col("planned_end"), pl.col("begin") + 365 * j - 1)  # noqa: E731
    v = t.select(
        "_row", "gemeente_code", "toewijzing_nummer", "_kmax", "_late", "_plan0", "_tw_end", "planned_end", "begin",
        "_ext_u", "_ext_lag", "_ext_lead", "_we", "_first_date", "_ing", "_tw_time",
    ).with_columns(pl.int_ranges(0, kmax + 1 + late.cast(pl.Int64)).alias("_k")).explode("_k").with_columns(
        pl.when(late & (k == kmax)).then("_plan0").when(k > kmax).then("_tw_end").otherwise(boundary(k + 1)).alias("_eind"),
        pl.when(k > kmax).then("_plan0").otherwise(boundary(k)).alias("_prev_eind"),
    )
    # A verlenging is decided before the previous Einddatum, or (backdated) after it; the k-th verlenging of a
    # toewijzing is backdated when the golden-ratio rotation of its draw falls below the share.
    back = (((pl.col("_ext_u") + 0.6180339887 * k) % 1.0) < tm["backdated_verlenging_share"]) & (
        pl.col("_prev_eind") + pl.col("_ext_lag") <= pl.col("_we"))
    ext_date = pl.when(back).then(pl.col("_prev_eind") + pl.col("_ext_lag")).otherwise(pl.col("_prev_eind") - pl.col("_ext_lead"))
    # never before the first JW301; when claims in the window need the verlenging, it is in the window
    ext_date = pl.max_horizontal(ext_date, "_first_date")
    ext_date = pl.when(pl.col("_prev_eind") < pl.col("_we")).then(pl.min_horizontal(ext_date, "_we")).otherwise(ext_date)
    v = v.with_columns(
        pl.when(k == 0).then("_first_date").otherwise(ext_date).alias("_date"),
        pl.when(k > 0).then(pl.lit("04")).alias("reden_wijziging"),
        (k + 1).alias("versie"),
    ).with_columns(pl.col("_eind").alias("_vol_eind"))
    # An early stop: some gemeenten shorten the toewijzing to the end of care, after the JW307 came in.
    stop_msg = _stop_msg_days(t)
    reden_map = cm["wijziging_bij_einde"]
    short = t.with_columns(pl.Series("_stop_msg", stop_msg)).filter(
        pl.col("_shorten") & (pl.col("end") < pl.col("_tw_end"))
    ).with_columns(
        pl.col("end").alias("_eind"),
        (pl.col("_stop_msg") + pl.col("_shorten_delay")).alias("_date"),
        pl.when(pl.col("einde_reden") == "verhuizing").then(pl.lit("07"))
        .otherwise(pl.col("reden_beeindiging").replace_strict(reden_map, default="05"))
        .alias("reden_wijziging"),
        (pl.col("_kmax") + 2 + pl.col("_late").cast(pl.Int64)).alias("versie"),
        pl.col("_kmax").alias("_k"),
        pl.col("_tw_end").alias("_vol_eind"),
    )
    cols = ["_row", "gemeente_code", "toewijzing_nummer", "versie", "_ing", "_eind", "_date", "_tw_time", "reden_wijziging",
            "_vol_eind", "_we"]
    parts = [v.select(cols), short.select(cols)]
    if seed is not None:
        parts.append(_deleted(seed, t).select(cols))
    allv = pl.concat(parts)
    # iJw orders the versions of a toewijzing by date and time, so a later version is never dated before the one it
    # replaces: a shortening or verlenging decided before a backdated verlenging is sent after it (same day at the
    # latest; toewijzingstijd grows with versie). Before: 17 of 22,047 Twente 2024 seed 42 versions went back in time.
    allv = allv[stable_order(allv, ["gemeente_code", "toewijzing_nummer", "versie"])]
    gm, nr = allv["gemeente_code"].to_numpy(), allv["toewijzing_nummer"].to_numpy()
    new_tw = np.r_[True, (gm[1:] != gm[:-1]) | (nr[1:] != nr[:-1])][:allv.height]
    allv = allv.with_columns(pl.Series("_date", running_max(allv["_date"].to_numpy(), new_tw)))
    allv = allv.filter(pl.col("_date") <= pl.col("_we"))
    shared = t.select("agb_code", "bsn", "path", "_ref_aanbieder", "product_categorie", "product_code", "begin", "_vol",
                      "eenheid", "frequentie")
    allv = pl.concat([allv, shared[allv["_row"]]], how="horizontal")
    # frequentie 6 is a total over the toewijzing: one arrangement (eenheid 82) is one; hours and minutes are the rate
    # per 4 weeks over the care the toewijzing covers, growing with each verlenging (_vol is the rate per 4 weeks).
    total = pl.when(pl.col("eenheid") == "82").then("_vol").otherwise(
        (pl.col("_vol") * (pl.col("_vol_eind") - pl.col("begin") + 1) / 28).ceil().cast(pl.Int64))
    return allv.select(
        "gemeente_code", "toewijzing_nummer", "versie", "agb_code", "bsn",
        pl.when(pl.col("path") == "jw315").then("_ref_aanbieder").alias("referentie_aanbieder"),
        "product_categorie", "product_code",
        _to_date(pl.col("_date")).alias("toewijzingsdatum"),
        (pl.col("_tw_time") + pl.col("versie") * 7).map_batches(_hms, return_dtype=pl.String).alias("toewijzingstijd"),
        _to_date(pl.col("_ing")).alias("ingangsdatum"),
        _to_date(pl.col("_eind")).alias("einddatum"),
        pl.when(pl.col("frequentie") == "6").then(total).otherwise("_vol").alias("volume"),
        "eenheid", "frequentie", "reden_wijziging",
        # --- issue 12: domains. An aspecifiek toewijzing (eenheid 83, landelijk ingekochte zorg) carries a Budget in
        # eurocent over the whole toewijzing (its monthly amount `_vol` x months, 28-day months so the claims fit)
        # and no Omvang (CD077-CD079, CD080).
        pl.when(pl.col("eenheid") == "83")
        .then((pl.col("_vol") * (pl.col("_vol_eind") - pl.col("begin") + 1) / 28).ceil().cast(pl.Int64))
        .alias("budget"),
    ).with_columns(
        pl.when(pl.col("eenheid") != "83").then(pl.col(c)).alias(c) for c in ("volume", "eenheid", "frequentie")
    )


def _deleted(seed: int, t: pl.DataFrame) -> pl.DataFrame:
    """A toewijzing issued with the wrong Ingangsdatum and withdrawn (version 2, RedenWijziging 13, Einddatum =
    Ingangsdatum, CS335) a few days later; the gemeente reissued it as the toewijzing that care starts on. Never
    started, never claimed. Its number is the keyed bijection of the trajectory's count in the upper half of the range."""
    lo, hi = TOEWIJZING_NUMMER_RANGE
    d = t.filter(pl.col("_deleted"))
    idx = d["_tw_seq"].to_numpy() - _TW_SEQ_BASE - 1 + (hi - lo) // 2
    nummer = lo + opaque_number(seed, D_TOEWIJZING, idx, d["gemeente_code"].cast(pl.Int64).to_numpy(), size=hi - lo)
    d = d.with_columns(
        pl.Series("toewijzing_nummer", nummer, dtype=pl.Int64).cast(t.schema["toewijzing_nummer"]),
        (pl.col("_ing") + pl.col("_del_shift")).alias("_ing"),
        (pl.col("_first_date") + pl.col("_del_days")).alias("_del_date"),
        pl.col("_tw_time") - 600,
    ).filter(pl.col("_del_date") <= pl.col("_we"))
    eind1 = pl.max_horizontal(pl.min_horizontal("planned_end", pl.col("begin") + 364), "_ing")
    v1 = d.with_columns(pl.lit(1).alias("versie"), eind1.alias("_eind"), pl.col("_first_date").alias("_date"),
                        pl.lit(None, pl.String).alias("reden_wijziging"), eind1.alias("_vol_eind"))
    v2 = d.with_columns(pl.lit(2).alias("versie"), pl.col("_ing").alias("_eind"), pl.col("_del_date").alias("_date"),
                        pl.lit("13").alias("reden_wijziging"), eind1.alias("_vol_eind"))
    return pl.concat([v1, v2]).with_columns(pl.col("versie").cast(pl.Int64))


def _hms_formula(secs: pl.Series) -> pl.Series:
    return (
        (secs // 3600).cast(pl.String).str.zfill(2) + ":" + (secs % 3600 // 60).cast(pl.String).str.zfill(2)
        + ":" + (secs % 60).cast(pl.String).str.zfill(2)
    )


@cache
def _hms_of_day() -> pl.Series:
    """"HH:MM:SS" of every second of a day, formatted once."""
    return _hms_formula(pl.Series(np.arange(86400, dtype=np.int64)))


def _hms(s: pl.Series) -> pl.Series:
    secs = s % 86400
    if secs.len() and (secs.min() or 0) >= 0:
        return _hms_of_day().gather(secs)
    return _hms_formula(secs)


def _lifecycle_cols() -> list:
    return [
        "gemeente_code", "agb_code", "bsn", "toewijzing_nummer", "product_categorie", "product_code",
        _to_date(pl.col("_ing")).alias("toewijzing_ingangsdatum"), _to_date(pl.col("begin")).alias("begindatum"),
    ]


def _stop_msg_days(t: pl.DataFrame) -> np.ndarray:
    """JW307 send date: `_stop_delay` werkdagen after the end (a share late), never before the JW305."""
    return np.maximum(_busday(t["end"].to_numpy(), t["_stop_delay"].to_numpy()), t["_start_msg"].to_numpy())


def zorgstarts(df: pl.DataFrame) -> pl.DataFrame:
    return _timing(df).lazy().filter(_ijw_rows()).select(
        *_lifecycle_cols(), pl.lit("1").alias("status_aanlevering"), _to_date(pl.col("_start_msg")).alias("dagtekening"),
    ).collect()


def zorgstops(df: pl.DataFrame) -> pl.DataFrame:
    t = _timing(df).lazy().filter(_ijw_rows()).filter(pl.col("end") <= pl.col("_we")).select(
        "gemeente_code", "agb_code", "bsn", "toewijzing_nummer", "product_categorie", "product_code", "_ing", "begin",
        "end", "reden_beeindiging", "_stop_delay", "_start_msg").collect()
    t = t.with_columns(pl.Series("_msg", _stop_msg_days(t)))
    return t.select(
        *_lifecycle_cols(), _to_date(pl.col("end")).alias("einddatum"), "reden_beeindiging",
        pl.lit("1").alias("status_aanlevering"), _to_date(pl.col("_msg")).alias("dagtekening"),
    )


def _requests(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    """JW315 requests: granted ones of trajectories in the window, rejected ones sent in the window (columns `cols`,
    all when none are named)."""
    granted = pl.col("in_ijw") & ~pl.col("rejected") & in_window()
    rejected = pl.col("rejected") & pl.col("_req_date").is_between(pl.col("_ws"), pl.col("_we"))
    q = df.lazy().filter((pl.col("path") == "jw315") & (granted | rejected)).with_columns(
        pl.col("_ref_aanbieder").alias("referentie_aanbieder"))
    return (q.select(*cols) if cols else q).collect()


def verzoeken(df: pl.DataFrame, jeugdigen: pl.DataFrame, verwijzer_pool: pl.DataFrame) -> pl.DataFrame:
    r = _requests(
        _ingang(df), "referentie_aanbieder", "gemeente_code", "agb_code", "bsn", "product_categorie", "product_code",
        "_ing", "planned_end", "begin", "frequentie", "eenheid", "_vol", "verwijzer_type", "person_index", "_req_date")
    people = jeugdigen.select("gemeente_code", "bsn", "geboortedatum", "geslacht")
    r = r.join(people, on=["gemeente_code", "bsn"], how="left")
    # Referrer name and AGB-like code: one of the gemeente's synthetic referrers of that type.
    r = r.join(verwijzer_pool, on=["gemeente_code", "verwijzer_type"], how="left").with_columns(
        pl.col("_namen").list.get(pl.col("person_index") % pl.col("_namen").list.len()).alias("verwijzer_naam"),
        pl.col("_codes").list.get(pl.col("person_index") % pl.col("_codes").list.len()).alias("verwijzer_zorgverlenercode"),
    )
    return r.select(
        "referentie_aanbieder", "gemeente_code", "agb_code", "bsn", "geboortedatum", "geslacht",
        "product_categorie", "product_code",
        _to_date(pl.col("_ing")).alias("toewijzing_ingangsdatum"),
        _to_date(pl.min_horizontal("planned_end", pl.col("begin") + 364)).alias("toewijzing_einddatum"),
        pl.when((pl.col("frequentie") == "6") & (pl.col("eenheid") != "82"))
        .then((pl.col("_vol") * (pl.min_horizontal("planned_end", pl.col("begin") + 364) - pl.col("begin") + 1) / 28).ceil().cast(pl.Int64))
        .otherwise("_vol").alias("volume"),
        "eenheid", "frequentie", "verwijzer_type", "verwijzer_naam", "verwijzer_zorgverlenercode",
        _to_date(pl.col("_req_date")).alias("dagtekening"),
    )


def antwoorden(df: pl.DataFrame) -> pl.DataFrame:
    r = _requests(df, "referentie_aanbieder", "gemeente_code", "agb_code", "bsn", "_onderzoek", "rejected",
                  "reden_afwijzing", "_ans_date", "_ans2_date")
    base = ["referentie_aanbieder", "gemeente_code", "agb_code", "bsn"]
    onderzoek = r.filter("_onderzoek").select(
        *base, pl.lit("2").alias("verzoek_antwoord"), pl.lit(None, pl.String).alias("reden_afwijzing"),
        _to_date(pl.col("_ans_date")).alias("dagtekening"),
    )
    afwijzing = r.filter("rejected").select(
        *base, pl.lit("1").alias("verzoek_antwoord"), pl.col("reden_afwijzing"),
        _to_date(pl.when("_onderzoek").then("_ans2_date").otherwise("_ans_date")).alias("dagtekening"),
    )
    return pl.concat([onderzoek, afwijzing])


def _month_index(month: pl.Expr) -> pl.Expr:
    """Months since January 2000 (0-999: a digit group of the identifier keys)."""
    return ((month.dt.year() - 2000) * 12 + month.dt.month() - 1).cast(pl.Int64)


def _ref(seed: int, key: pl.Series, kind: int) -> pl.Series:
    """ReferentieNummer of line kind `kind` (0 debet, 1 credit, 2 re-debet) for the keys of `prestaties`."""
    return opaque_code(opaque_number(seed, D_PRESTATIE, key.to_numpy() + kind, size=10 ** REFERENTIE_NUMMER[1]),
                       REFERENTIE_NUMMER)


def _months(seed: int, tag: int, dist: dict, *key) -> pl.Series:
    """A lag in months drawn from {months: share} by a keyed uniform of the row's key."""
    months = np.array([int(k) for k in dist])
    cum = np.cumsum(np.array(list(dist.values()), dtype=float))
    pick = np.minimum(np.searchsorted(cum / cum[-1], keyed_uniform(seed, tag, *key), side="right"), len(months) - 1)
    return pl.Series(months[pick], dtype=pl.Int64)


def _split_uniforms(seed: int, tag: int, *key) -> list[np.ndarray]:
    """Four uniforms [0, 1) of 16 bits each from one keyed hash of the row's key."""
    h = keyed_hash(seed, tag, *key)
    return [((h >> np.uint64(16 * i)) & np.uint64(0xFFFF)).astype(np.float64) / 65536.0 for i in range(4)]


def _month_days_of(month_idx: np.ndarray) -> np.ndarray:
    """Months since January 1970 -> the int day of their first day."""
    return (month_idx.astype("datetime64[M]").astype("datetime64[D]") - _EPOCH).astype(np.int64)


def prestaties(seed: int, df: pl.DataFrame) -> pl.DataFrame:
    """Monthly claim lines: one debet per toewijzing and month, a few corrected by credit + new debet later.

    Built on numpy index arrays: the month lines are row numbers into the toewijzing frame `t` and the identifier
    strings are gathered once at the end (the lines are a few million rows on nl; carrying the strings through every
    step cost most of the time)."""
    p = model().params
    tm = care_model()["timing"]
    t = _ijw(_timing(df).select(
        "gemeente_code", "agb_code", "bsn", "toewijzing_nummer", "_tw_seq", "product_categorie", "product_code", "eenheid",
        "frequentie", "_vol", "_ing", "begin", "end", "_ws", "_we", "in_ijw", "rejected",
    )).drop("in_ijw", "rejected")
    # --- issue 12: timing. Utilisation: a level per toewijzing (Kumaraswamy quantile of a keyed uniform), times the
    # calendar month's factor and month noise, capped at the toegewezen volume pro-rated to the care days.
    util, by_cat, totaal = tm["utilisation"], tm["utilisation_by_categorie"], tm["utilisation_totaal"]
    ab = [pl.when(pl.col("frequentie") == "6").then(pl.lit(float(totaal[x])))
          .otherwise(pl.col("product_categorie").replace_strict({c: float(v[x]) for c, v in by_cat.items()},
                                                                default=float(util[x]), return_dtype=pl.Float64))
          for x in ("a", "b")]
    g_t, agb_t = (t[c].cast(pl.Int64).to_numpy() for c in ("gemeente_code", "agb_code"))
    u_tw = pl.lit(pl.Series(keyed_uniform(seed, H_UTIL, g_t, t["_tw_seq"].to_numpy())))
    level_t = t.select(((1 - (1 - u_tw) ** (1 / ab[1])) ** (1 / ab[0])).alias("_level"))["_level"].to_numpy()
    col = {c: t[c].to_numpy() for c in ("_tw_seq", "_vol", "_ing", "begin", "end", "_ws", "_we")}
    flag = {f"{c}{v}": t.select((pl.col(c) == v).fill_null(False))[c].to_numpy()
            for c, v in (("eenheid", "14"), ("eenheid", "82"), ("frequentie", "2"), ("frequentie", "4"), ("frequentie", "6"))}
    # one line per calendar month of the care in the window (months counted from January 1970)
    to_month = lambda d: d.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)  # noqa: E731
    first_m = to_month(np.maximum(col["begin"], col["_ws"]))
    n_m = to_month(np.minimum(col["end"], col["_we"])) - first_m + 1
    if (n_m < 1).any():
        raise ValueError("prestaties: a toewijzing in the window ends before it begins")
    i = np.repeat(np.arange(t.height), n_m)
    mon = first_m[i] + np.arange(len(i)) - np.repeat(np.cumsum(n_m) - n_m, n_m)
    # The ProductPeriode starts on the 1st or on the toewijzing Ingangsdatum (TR387); the care days in it start at the
    # care start, which the waiting time puts after the Ingangsdatum.
    lo_m, hi_m = (int(first_m.min()), int((first_m + n_m).max())) if t.height else (0, 0)
    month_day = _month_days_of(np.arange(lo_m, hi_m + 1))        # first days of the months, looked up by index
    m0, m1 = month_day[mon - lo_m], month_day[mon + 1 - lo_m]
    begin, vol = col["begin"][i], col["_vol"][i]
    pb = np.maximum(m0, col["_ing"][i])
    pe = np.minimum(m1 - 1, col["end"][i])
    dim = m1 - m0
    days = pe - np.maximum(pb, begin) + 1
    g, seq = g_t[i], col["_tw_seq"][i]
    # one keyed hash per line gives four 16-bit uniforms: month noise, etmaal absence and its days, rounding
    noise_u, absent_u, days_u, round_u = _split_uniforms(seed, H_MONTH_NOISE, g, seq, m0)
    nlo, nhi = tm["month_noise"]
    factor = np.array(tm["month_factor"])[mon % 12] * (nlo + (nhi - nlo) * noise_u)
    alo, ahi = tm["etmaal_absent_days"]
    absent = np.where(absent_u < tm["etmaal_absent_share"], alo + (days_u * (ahi - alo + 1)).astype(np.int64), 0)
    u = np.clip(level_t[i] * factor, 0.0, 1.0)
    e14, e82, f2, f4, f6 = (flag[k][i] for k in ("eenheid14", "eenheid82", "frequentie2", "frequentie4", "frequentie6"))
    cap = np.where(e14, days.astype(np.float64),                   # an etmaal is a day in care
                   np.where(f2, vol * days / 7, np.where(f4, vol * days / dim, vol * days / 28)))
    single = e82 & f6
    cap_floor = np.floor(cap).astype(np.int64)
    # stochastic rounding (unbiased, unlike the floor), never above the cap
    volume = np.where(
        e14, np.maximum(days - absent, 1),
        np.where(single, ((m0 <= begin) & (begin < m1)).astype(np.int64),   # one arrangement, claimed at the start
                 np.where(e82, cap_floor,                                   # an arrangement per whole month
                          np.minimum(np.floor(cap * u + round_u), np.floor(cap)).astype(np.int64))))
    keep = np.flatnonzero(volume > 0)
    i, mon, m0, m1, pb, pe, g, seq, volume = (a[keep] for a in (i, mon, m0, m1, pb, pe, g, seq, volume))
    cap_n = np.where(single, 1, cap_floor)[keep]
    # issue 12: the tariff of the contract period (and aanbieder) of the line, looked up once per toewijzing and year
    year = mon // 12 + 1970
    past = np.flatnonzero(pb >= m1)           # an Ingangsdatum after the month (none expected): its own year
    year[past] = pb[past].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    y0 = int(year.min()) if len(year) else 2000
    span = int(year.max()) - y0 + 1 if len(year) else 1
    jan1 = (np.arange(y0, y0 + span) - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    per_year = t.select("gemeente_code", "product_code", "agb_code")[np.repeat(np.arange(t.height), span)].with_columns(
        pl.Series("_day", np.tile(jan1, t.height), dtype=pl.Int64))
    tarief = with_claim_tarief(seed, per_year, "_day")["tarief"]
    if tarief.len() != per_year.height:
        raise ValueError("prestaties: the contract holds a product twice")
    tarief = tarief.gather(i * span + (year - y0))
    # ReferentieNummer: a keyed bijection of (gemeente, toewijzing count, month, line kind); the kind (debet, credit,
    # re-debet) is part of the key, never of the number. A credit's VorigReferentieNummer is its debet's number.
    ref_key = ((g * 10_000_000 + seq - 1_000_001) * 1000 + (mon - 360)) * 4
    # The first debet is declared with the delivery month's declaratie or, late, with a later one (_decl_month).
    decl = mon + _months(seed, H_DECL_LAG, tm["declaratie_lag_months"], g, seq, m0).to_numpy()
    ref0 = _ref(seed, pl.Series(ref_key), 0)
    # Corrections: a few debets are reversed by a credit and claimed again, 1-6 declaratieperiodes later, with the
    # volume raised or lowered (within the cap; at least 1).
    c = np.flatnonzero(keyed_uniform(seed, H_CORRECTIE, g, seq, m0) < p["correction_share"])
    gc, sc, mc = g[c], seq[c], m0[c]
    up = keyed_uniform(seed, H_CORR_UP, gc, sc, mc) < tm["correction_up_share"]
    slo, shi = tm["correction_size"]
    vol = volume[c]
    delta = np.maximum(1, np.round(vol * (slo + (shi - slo) * keyed_uniform(seed, H_CORR_SIZE, gc, sc, mc)))).astype(np.int64)
    raised, lowered = np.minimum(vol + delta, cap_n[c]), np.maximum(vol - delta, 1)
    new_vol = np.where(up & (raised > vol), raised, np.where(lowered < vol, lowered, np.maximum(raised, vol)))
    decl_c = decl[c] + _months(seed, H_CORR_LAG, tm["correction_lag_months"], gc, sc, mc).to_numpy()
    ok = _month_days_of(decl_c) <= col["_we"][i[c]]
    c, decl_c, new_vol = c[ok], decl_c[ok], new_vol[ok]
    kc = pl.Series(ref_key[c])
    nd, nc = len(i), len(c)
    src = np.concatenate([np.arange(nd), c, c])           # the debet line each line (debet, credit, re-debet) is of
    vorig = pl.concat([pl.repeat(None, nd, dtype=pl.String, eager=True), ref0.gather(c),
                       pl.repeat(None, nc, dtype=pl.String, eager=True)])
    decl_all = np.concatenate([decl, decl_c, decl_c])
    strings = t.select("agb_code", "gemeente_code", "bsn", "toewijzing_nummer", "product_categorie", "product_code",
                       "eenheid")[i[src]]
    lines = strings.with_columns(
        pl.concat([ref0, _ref(seed, kc, 1), _ref(seed, kc, 2)]).alias("referentie_nummer"),
        vorig.alias("vorig_referentie_nummer"),
        _to_date(pl.lit(pl.Series(np.concatenate([pb, pb[c], pb[c]])))).alias("begindatum"),
        _to_date(pl.lit(pl.Series(np.concatenate([pe, pe[c], pe[c]])))).alias("einddatum"),
        pl.Series("geleverd_volume", np.concatenate([volume, volume[c], new_vol]), dtype=pl.Int64),
        tarief.gather(src).alias("product_tarief"),
        pl.Series("debet_credit", ["D", "C", "D"]).gather(np.repeat(np.arange(3), [nd, nc, nc])),
        _to_date(pl.lit(pl.Series(_month_days_of(decl_all)))).alias("_decl_month"),
        pl.Series("_ref_key", np.concatenate([ref_key, ref_key[c], ref_key[c]]), dtype=pl.Int64),
    )
    return lines.with_columns(
        _line_declaratie_codes(seed, g_t, agb_t, i[src], decl_all).alias("declaratie_nummer"),
        (pl.col("geleverd_volume") * pl.col("product_tarief")).alias("ingediend_bedrag"),
    ).select(
        "declaratie_nummer",
        "agb_code", "gemeente_code", "referentie_nummer", "vorig_referentie_nummer", "bsn", "toewijzing_nummer",
        "product_categorie", "product_code", "begindatum", "einddatum",
        "geleverd_volume", "eenheid", "product_tarief", "ingediend_bedrag", "debet_credit", "_decl_month", "_ref_key",
    )


def _line_declaratie_codes(seed: int, g_t: np.ndarray, agb_t: np.ndarray, row: np.ndarray, month: np.ndarray) -> pl.Series:
    """DeclaratieNummer of lines of toewijzing rows `row` (gemeente `g_t`, aanbieder `agb_t` per row) and declaratie
    month `month` (months since January 1970): computed once per (aanbieder, gemeente, month) cell, found without a
    sort of the lines (the pairs are few, the months a short range)."""
    if not len(row):
        return _declaratie_codes(seed, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    pairs, pair_of_row = np.unique(agb_t * 1_000_000 + g_t, return_inverse=True)
    lo = int(month.min())
    width = int(month.max()) - lo + 1
    cell = pair_of_row.ravel()[row] * width + (month - lo)
    used = np.zeros(len(pairs) * width, dtype=bool)
    used[cell] = True
    cells = np.flatnonzero(used)
    pair, mon = pairs[cells // width], cells % width + lo
    codes = opaque_code(opaque_number(seed, D_DECLARATIE, (pair % 1_000_000) * 1000 + (mon - 360), pair // 1_000_000,
                                      size=10 ** DECLARATIE_NUMMER[1]), DECLARATIE_NUMMER)
    return codes.gather((np.cumsum(used) - 1)[cell])


def _declaratie_codes(seed: int, decl_key: np.ndarray, agb: np.ndarray) -> pl.Series:
    """DeclaratieNummer of each (decl_key, agb) pair, computed once per distinct pair (a few per aanbieder and
    gemeente) and gathered back to the lines."""
    pair, inverse = np.unique(agb.astype(np.int64) * 10_000_000 + decl_key, return_inverse=True)
    codes = opaque_code(opaque_number(seed, D_DECLARATIE, pair % 10_000_000, pair // 10_000_000,
                                      size=10 ** DECLARATIE_NUMMER[1]), DECLARATIE_NUMMER)
    return codes.gather(inverse.ravel())


def declaratie_nummers(seed: int, lines: pl.DataFrame) -> pl.Series:
    """DeclaratieNummer: one per aanbieder, gemeente and month (`_decl_month`), a keyed bijection of (gemeente,
    month) per aanbieder."""
    decl_key = lines["gemeente_code"].cast(pl.Int64) * 1000 + lines.select(_month_index(pl.col("_decl_month"))).to_series()
    return _declaratie_codes(seed, decl_key.to_numpy(), lines["agb_code"].cast(pl.Int64).to_numpy())


def declaraties(seed: int, lines: pl.DataFrame, rejected: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """JW323 headers (one per aanbieder, gemeente and month) and their JW325 answers (synthetic_data/claims.py)."""
    from .claims import declaraties as build

    return build(seed, lines, rejected)
