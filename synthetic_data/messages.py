"""Derive the iJw message tables from the simulated trajectories, in bulk over all gemeenten at once.

Every operation is row-wise or grouped within a gemeente, so a gemeente's rows do not depend on which other
gemeenten are in the run. Per-row randomness (delivered volume, corrections, send dates) comes from keyed hashes
of the row's own identifiers, never from a shared stream.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from .model import model
from .privacy import D_DECLARATIE, D_PRESTATIE, DECLARATIE_NUMMER, REFERENTIE_NUMMER, keyed_uniform, opaque_code, opaque_number
from .reference import care_model

_EPOCH = np.datetime64("1970-01-01", "D")
# keyed-hash field tags
H_LEVERING, H_CORRECTIE, H_DECL_DAY, H_ANTW_DAY = 101, 102, 103, 104


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
    return df.filter(~pl.col("rejected") & in_window()).select(
        "traject_id", "gemeente_code", "client_id", "bsn", "hulpvorm", "verwijzer", "verwijzer_type", "in_ijw",
        "oorsprong",
        pl.when("in_ijw").then("product_categorie").alias("product_categorie"),
        pl.when("in_ijw").then("product_code").alias("product_code"),
        "agb_code", "toewijzing_nummer",
        _to_date(pl.col("begin")).alias("begindatum"),
        _to_date(pl.col("planned_end")).alias("geplande_einddatum"),
        _to_date(pl.col("end")).alias("einddatum"),
        "einde_reden", "reden_beeindiging",
    )


def _ijw(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.col("in_ijw") & ~pl.col("rejected") & in_window())


def toewijzingen(df: pl.DataFrame) -> pl.DataFrame:
    cm = care_model()
    t = _ijw(df).with_columns(
        pl.when(pl.col("path") == "jw315")
        .then(pl.when("_onderzoek").then("_ans2_date").otherwise("_ans_date"))
        .otherwise(pl.col("begin") - pl.col("_tw_lead"))
        .alias("_first_date"),
        ((pl.col("end") - pl.col("begin")) // 365).alias("_kmax"),
    )
    v = t.with_columns(pl.int_ranges(0, pl.col("_kmax") + 1).alias("_k")).explode("_k").with_columns(
        pl.min_horizontal(pl.col("planned_end"), pl.col("begin") + 365 * (pl.col("_k") + 1) - 1).alias("_eind"),
        pl.min_horizontal(pl.col("planned_end"), pl.col("begin") + 365 * pl.col("_k") - 1).alias("_prev_eind"),
    ).with_columns(
        pl.when(pl.col("_k") == 0).then("_first_date").otherwise(pl.col("_prev_eind") - pl.col("_ext_lead")).alias("_date"),
        pl.when(pl.col("_k") > 0).then(pl.lit("04")).alias("reden_wijziging"),
        (pl.col("_k") + 1).alias("versie"),
    ).with_columns(pl.col("_eind").alias("_vol_eind"))
    # An early stop: the gemeente shortens the toewijzing to the end of care, after the JW307 came in.
    stop_msg = _stop_msg_days(t)
    reden_map = cm["wijziging_bij_einde"]
    short = t.with_columns(pl.Series("_stop_msg", stop_msg)).filter(
        pl.col("end") < pl.min_horizontal("planned_end", pl.col("begin") + 365 * (pl.col("_kmax") + 1) - 1)
    ).with_columns(
        pl.col("end").alias("_eind"),
        (pl.col("_stop_msg") + pl.col("_shorten_delay")).alias("_date"),
        pl.when(pl.col("einde_reden") == "verhuizing").then(pl.lit("07"))
        .otherwise(pl.col("reden_beeindiging").replace_strict(reden_map, default="05"))
        .alias("reden_wijziging"),
        (pl.col("_kmax") + 2).alias("versie"),
        pl.col("_kmax").alias("_k"),
        pl.min_horizontal("planned_end", pl.col("begin") + 365 * (pl.col("_kmax") + 1) - 1).alias("_vol_eind"),
    )
    cols = ["gemeente_code", "toewijzing_nummer", "versie", "agb_code", "bsn", "path", "_ref_aanbieder", "product_categorie",
            "product_code", "begin", "_eind", "_date", "_tw_time", "_vol", "eenheid", "frequentie", "reden_wijziging",
            "_vol_eind", "_we"]
    allv = pl.concat([v.select(cols), short.select(cols)])
    # frequentie 6 is a total over the toewijzing: it grows with each verlenging (_vol is the rate per 4 weeks).
    return allv.filter(pl.col("_date") <= pl.col("_we")).select(
        "gemeente_code", "toewijzing_nummer", "versie", "agb_code", "bsn",
        pl.when(pl.col("path") == "jw315").then("_ref_aanbieder").alias("referentie_aanbieder"),
        "product_categorie", "product_code",
        _to_date(pl.col("_date")).alias("toewijzingsdatum"),
        (pl.col("_tw_time") + pl.col("versie") * 7).map_batches(_hms, return_dtype=pl.String).alias("toewijzingstijd"),
        _to_date(pl.col("begin")).alias("ingangsdatum"),
        _to_date(pl.col("_eind")).alias("einddatum"),
        pl.when(pl.col("frequentie") == "6")
        .then((pl.col("_vol") * (pl.col("_vol_eind") - pl.col("begin") + 1) / 28).ceil().cast(pl.Int64))
        .otherwise("_vol").alias("volume"),
        "eenheid", "frequentie", "reden_wijziging",
    )


def _hms(s: pl.Series) -> pl.Series:
    secs = s % 86400
    return (
        (secs // 3600).cast(pl.String).str.zfill(2) + ":" + (secs % 3600 // 60).cast(pl.String).str.zfill(2)
        + ":" + (secs % 60).cast(pl.String).str.zfill(2)
    )


def _lifecycle_cols() -> list:
    return [
        "gemeente_code", "agb_code", "bsn", "toewijzing_nummer", "product_categorie", "product_code",
        _to_date(pl.col("begin")).alias("toewijzing_ingangsdatum"), _to_date(pl.col("begin")).alias("begindatum"),
    ]


def _stop_msg_days(t: pl.DataFrame) -> np.ndarray:
    """JW307 send date: within 5 werkdagen of the end, and never before the JW305 of very short care."""
    start = _busday(t["begin"].to_numpy(), t["_start_delay"].to_numpy())
    return np.maximum(_busday(t["end"].to_numpy(), t["_stop_delay"].to_numpy()), start)


def zorgstarts(df: pl.DataFrame) -> pl.DataFrame:
    t = _with_busday(_ijw(df), "_msg", "begin", "_start_delay")
    return t.select(*_lifecycle_cols(), pl.lit("1").alias("status_aanlevering"), _to_date(pl.col("_msg")).alias("dagtekening"))


def zorgstops(df: pl.DataFrame) -> pl.DataFrame:
    t = _ijw(df).filter(pl.col("end") <= pl.col("_we"))
    t = t.with_columns(pl.Series("_msg", _stop_msg_days(t)))
    return t.select(
        *_lifecycle_cols(), _to_date(pl.col("end")).alias("einddatum"), "reden_beeindiging",
        pl.lit("1").alias("status_aanlevering"), _to_date(pl.col("_msg")).alias("dagtekening"),
    )


def _requests(df: pl.DataFrame) -> pl.DataFrame:
    """JW315 requests: granted ones of trajectories in the window, rejected ones sent in the window."""
    granted = pl.col("in_ijw") & ~pl.col("rejected") & in_window()
    rejected = pl.col("rejected") & pl.col("_req_date").is_between(pl.col("_ws"), pl.col("_we"))
    return df.filter((pl.col("path") == "jw315") & (granted | rejected)).with_columns(
        pl.col("_ref_aanbieder").alias("referentie_aanbieder"))


def verzoeken(df: pl.DataFrame, jeugdigen: pl.DataFrame, verwijzer_pool: pl.DataFrame) -> pl.DataFrame:
    r = _requests(df)
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
        _to_date(pl.col("begin")).alias("toewijzing_ingangsdatum"),
        _to_date(pl.min_horizontal("planned_end", pl.col("begin") + 364)).alias("toewijzing_einddatum"),
        pl.when(pl.col("frequentie") == "6")
        .then((pl.col("_vol") * (pl.min_horizontal("planned_end", pl.col("begin") + 364) - pl.col("begin") + 1) / 28).ceil().cast(pl.Int64))
        .otherwise("_vol").alias("volume"),
        "eenheid", "frequentie", "verwijzer_type", "verwijzer_naam", "verwijzer_zorgverlenercode",
        _to_date(pl.col("_req_date")).alias("dagtekening"),
    )


def antwoorden(df: pl.DataFrame) -> pl.DataFrame:
    r = _requests(df)
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


def _month_floor(days: pl.Expr) -> pl.Expr:
    return _to_date(days).dt.truncate("1mo")


def _month_index(month: pl.Expr) -> pl.Expr:
    """Months since January 2000 (0-999: a digit group of the identifier keys)."""
    return ((month.dt.year() - 2000) * 12 + month.dt.month() - 1).cast(pl.Int64)


def _ref(seed: int, key: pl.Series, kind: int) -> pl.Series:
    """ReferentieNummer of line kind `kind` (0 debet, 1 credit, 2 re-debet) for the keys of `prestaties`."""
    return opaque_code(opaque_number(seed, D_PRESTATIE, key.to_numpy() + kind, size=10 ** REFERENTIE_NUMMER[1]),
                       REFERENTIE_NUMMER)


def prestaties(seed: int, df: pl.DataFrame) -> pl.DataFrame:
    """Monthly claim lines: one debet per toewijzing and month, a few corrected by credit + new debet later."""
    p = model().params
    t = _ijw(df).select(
        "gemeente_code", "agb_code", "bsn", "toewijzing_nummer", "_tw_seq", "product_categorie", "product_code", "eenheid",
        "frequentie", "tarief", "levering_min", "levering_max", "_vol", "begin", "end", "_ws", "_we",
    ).with_columns(
        pl.date_ranges(
            _month_floor(pl.max_horizontal("begin", "_ws")), _month_floor(pl.min_horizontal("end", "_we")), "1mo"
        ).alias("_month")
    ).explode("_month")
    t = t.with_columns(
        pl.col("_month").cast(pl.Int32).cast(pl.Int64).alias("_m0"),
        pl.col("_month").dt.offset_by("1mo").cast(pl.Int32).cast(pl.Int64).alias("_m1"),
    ).with_columns(
        pl.max_horizontal("_m0", "begin").alias("_pb"),
        pl.min_horizontal(pl.col("_m1") - 1, "end").alias("_pe"),
        (pl.col("_m1") - pl.col("_m0")).alias("_dim"),
    ).with_columns((pl.col("_pe") - pl.col("_pb") + 1).alias("_days"))
    u = keyed_uniform(seed, H_LEVERING, t["gemeente_code"].cast(pl.Int64).to_numpy(),
                      t["_tw_seq"].to_numpy(), t["_m0"].to_numpy())
    t = t.with_columns(
        (pl.col("levering_min") + (pl.col("levering_max") - pl.col("levering_min")) * pl.Series(u)).alias("_u")
    )
    cap = (
        pl.when(pl.col("frequentie") == "2").then(pl.col("_vol") * pl.col("_days") / 7)
        .when(pl.col("frequentie") == "4").then(pl.col("_vol") * pl.col("_days") / pl.col("_dim"))
        .otherwise(pl.col("_vol") * pl.col("_days") / 28)
    )
    volume = (
        pl.when(pl.col("eenheid") == "14").then(pl.col("_days"))              # an etmaal is a day in care
        .when((pl.col("eenheid") == "82") & (pl.col("frequentie") == "6"))     # one arrangement, claimed at the start
        .then((pl.col("_pb") == pl.col("begin")).cast(pl.Int64))
        .otherwise((cap * pl.col("_u")).floor().cast(pl.Int64))
    )
    t = t.with_columns(volume.alias("geleverd_volume")).filter(pl.col("geleverd_volume") > 0)
    # ReferentieNummer: a keyed bijection of (gemeente, toewijzing count, month, line kind); the kind (debet, credit,
    # re-debet) is part of the key, never of the number. A credit's VorigReferentieNummer is its debet's number.
    t = t.with_columns(
        (((pl.col("gemeente_code").cast(pl.Int64) * 10_000_000 + pl.col("_tw_seq") - 1_000_001) * 1000
          + _month_index(pl.col("_month"))) * 4).alias("_ref_key"))
    debet = t.with_columns(
        _ref(seed, t["_ref_key"], 0).alias("referentie_nummer"),
        pl.lit(None, pl.String).alias("vorig_referentie_nummer"),
        pl.col("_month").alias("_decl_month"),
        pl.lit("D").alias("debet_credit"),
    )
    # Corrections: a few debets are reversed by a credit and claimed again in the next month's declaratie.
    uc = keyed_uniform(seed, H_CORRECTIE, t["gemeente_code"].cast(pl.Int64).to_numpy(),
                       t["_tw_seq"].to_numpy(), t["_m0"].to_numpy())
    corr = t.filter(
        (pl.Series(uc) < p["correction_share"]) & (pl.col("_m1") <= pl.col("_we"))
    ).with_columns(pl.col("_month").dt.offset_by("1mo").alias("_decl_month"))
    credit = corr.with_columns(
        _ref(seed, corr["_ref_key"], 1).alias("referentie_nummer"),
        _ref(seed, corr["_ref_key"], 0).alias("vorig_referentie_nummer"),
        pl.lit("C").alias("debet_credit"),
    )
    redebet = corr.with_columns(
        _ref(seed, corr["_ref_key"], 2).alias("referentie_nummer"),
        pl.lit(None, pl.String).alias("vorig_referentie_nummer"),
        pl.lit("D").alias("debet_credit"),
        pl.when(pl.col("geleverd_volume") > 1).then(pl.col("geleverd_volume") - 1).otherwise("geleverd_volume")
        .alias("geleverd_volume"),
    )
    lines = pl.concat([debet, credit, redebet], how="diagonal_relaxed")
    return lines.with_columns(declaratie_nummers(seed, lines).alias("declaratie_nummer")).select(
        "declaratie_nummer",
        "agb_code", "gemeente_code", "referentie_nummer", "vorig_referentie_nummer", "bsn", "toewijzing_nummer",
        "product_categorie", "product_code",
        _to_date(pl.col("_pb")).alias("begindatum"), _to_date(pl.col("_pe")).alias("einddatum"),
        "geleverd_volume", "eenheid", pl.col("tarief").alias("product_tarief"),
        (pl.col("geleverd_volume") * pl.col("tarief")).alias("ingediend_bedrag"), "debet_credit",
        pl.col("_decl_month"), "_ref_key",
    )


def declaratie_nummers(seed: int, lines: pl.DataFrame) -> pl.Series:
    """DeclaratieNummer: one per aanbieder, gemeente and month (`_decl_month`), a keyed bijection of (gemeente,
    month) per aanbieder."""
    decl_key = lines["gemeente_code"].cast(pl.Int64) * 1000 + lines.select(_month_index(pl.col("_decl_month"))).to_series()
    return opaque_code(opaque_number(seed, D_DECLARATIE, decl_key.to_numpy(), lines["agb_code"].cast(pl.Int64).to_numpy(),
                                     size=10 ** DECLARATIE_NUMMER[1]), DECLARATIE_NUMMER)


def declaraties(seed: int, lines: pl.DataFrame, rejected: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """JW323 headers (one per aanbieder, gemeente and month) and their JW325 answers (synthetic_data/claims.py)."""
    from .claims import declaraties as build

    return build(seed, lines, rejected)
