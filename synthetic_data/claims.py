"""The gemeente's claim decisions: wrong claim lines, their rejection in the JW325, and the aanbieder's resubmission.

In normal practice an aanbieder sends a small share of claim lines that break a hard iJw rule (a volume over the
toewijzing, an old or indexed tariff, a product period outside the toewijzing, a typo in the ToewijzingNummer). The
gemeente rejects such a line in its JW325 with the retourcode of the rule (iJw 3.2 regels, Zorginstituut Nederland:
TR321 -> 9321, TR418 -> 0611, TR307/TR308 -> 9307/9308, TR338 -> 9338); the JW325 lists only the rejected
prestaties, its TotaalToegekendBedrag is the sum of the accepted lines and its header retourcode is 8001 only when
the whole declaratie was granted, else 0200 (basisschema LDT_RetourCode; the iJw 3.2 example JW325 of a partial
approval carries 0200). Most aanbieders then claim the line again, corrected and under a new ReferentieNummer, in a
later declaratie sent after the JW325; some give up.

The rejected lines stay in `prestaties` (the JW323 as received) and are listed in `declaratie_antwoord_prestaties`;
the rule registry checks only the accepted lines (expectations/derived.py `_rows`). Per-line randomness comes from
keyed hashes of the line's own reference key, so a gemeente's decisions do not depend on the other gemeenten.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from .dictionary import pack, sortable
from .ijw import latest_toewijzing, signed, volume_cap
from .messages import H_ANTW_DAY, H_DECL_DAY, _busday, _ref, _to_date, declaratie_nummers
from .model import model
from .privacy import TOEWIJZING_NUMMER_RANGE, keyed_uniform

# keyed-hash field tags (issue 12 range 300-349)
H_CLAIM_ERROR, H_CLAIM_REASON, H_CLAIM_SIZE, H_GIVE_UP, H_RESUBMIT_LAG, H_TW_TYPO = 301, 302, 303, 304, 305, 306
H_ANTW_LATE, H_ANTW_TAIL = 307, 308
RESUBMIT_KIND = 3                           # ReferentieNummer line kind of a resubmitted line (0-2: messages.py)
LINE_KEY = ["agb_code", "referentie_nummer"]
FULLY_GRANTED, PARTLY_GRANTED = "8001", "0200"
REJECTED_COLUMNS = ["declaratie_nummer", "agb_code", "gemeente_code", "referentie_nummer", "vorig_referentie_nummer",
                    "bsn", "toewijzing_nummer", "product_categorie", "product_code", "begindatum", "einddatum",
                    "geleverd_volume", "eenheid", "product_tarief", "ingediend_bedrag", "debet_credit", "retourcode"]


def _month_days(month: pl.Series) -> np.ndarray:
    return month.cast(pl.Int32).cast(pl.Int64).to_numpy()


def send_dates(seed: int, gemeente: np.ndarray, agb: np.ndarray, month: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JW323 dagtekening and JW325 dagtekening (int days) of the declaratie of (gemeente, aanbieder, month start).

    The JW323 goes out on a day of the following month; the JW325 mostly within the 10 werkdagen of OP090x4, a share
    later with an exponential tail."""
    p = model().params
    key = (np.asarray(gemeente, dtype=np.int64), np.asarray(agb, dtype=np.int64), np.asarray(month, dtype=np.int64))
    lo, hi = p["declaratie_dagtekening_day"]
    day = lo + (keyed_uniform(seed, H_DECL_DAY, *key) * (hi - lo + 1)).astype(np.int64) - 1
    lo2, hi2 = p["antwoord_werkdagen"]
    ans = lo2 + (keyed_uniform(seed, H_ANTW_DAY, *key) * (hi2 - lo2 + 1)).astype(np.int64)
    late = keyed_uniform(seed, H_ANTW_LATE, *key) < p["antwoord_late_share"]
    tail = np.minimum(np.floor(-np.log1p(-keyed_uniform(seed, H_ANTW_TAIL, *key)) * p["antwoord_late_tail_werkdagen"]),
                      50).astype(np.int64)
    ans = np.where(late, hi2 + 1 + tail, ans)
    nxt = (np.asarray(month, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]") + 1).astype("datetime64[D]")
    dt = (nxt - np.datetime64("1970-01-01", "D")).astype(np.int64) + day
    return dt, _busday(dt, ans)


def _reason(p: dict, u: np.ndarray) -> np.ndarray:
    names = list(p["claim_error_reasons"])
    w = np.array([p["claim_error_reasons"][n] for n in names], dtype=np.float64)
    idx = np.searchsorted(np.cumsum(w / w.sum()), u, side="right")
    return np.array(names, dtype=object)[np.minimum(idx, len(names) - 1)]


def decide(seed: int, lines: pl.DataFrame, toewijzingen: pl.DataFrame, last_year: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The claim lines as the aanbieders sent them (a share wrong, plus resubmissions) and the gemeente's rejected
    lines (`declaratie_antwoord_prestaties`, with retourcode). `lines` are messages.prestaties' lines (internal
    columns `_decl_month` and `_ref_key`); `toewijzingen` the generated toewijzingen table."""
    p = model().params
    # Only a first debet that no credit corrects (a rejected line has no credit of its own); the reference key
    # (`_ref_key`) then names the line.
    key = lines["_ref_key"].to_numpy()
    err = keyed_uniform(seed, H_CLAIM_ERROR, key) < p["claim_error_share"]
    corrected = lines["_ref_key"].filter(lines["debet_credit"] == "C")
    cand = lines.filter(pl.Series(err)).filter(
        (pl.col("debet_credit") == "D") & ~pl.col("_ref_key").is_in(corrected.implode()))
    tw_keys = ["gemeente_code", "toewijzing_nummer"]
    tw = latest_toewijzing(toewijzingen.join(cand.select(tw_keys).unique(), on=tw_keys, how="semi")).select(
        "gemeente_code", "toewijzing_nummer", pl.col("ingangsdatum").alias("_tw_in"), pl.col("einddatum").alias("_tw_eind"),
        pl.col("volume").alias("tw_volume"), pl.col("frequentie").alias("tw_frequentie"))
    cand = cand.join(tw, on=["gemeente_code", "toewijzing_nummer"], how="inner").with_columns(
        volume_cap().alias("_cap"))
    ck = cand["_ref_key"].to_numpy()
    cand = cand.with_columns(
        pl.Series("_reason", _reason(p, keyed_uniform(seed, H_CLAIM_REASON, ck)), dtype=pl.String),
        pl.Series("_u", keyed_uniform(seed, H_CLAIM_SIZE, ck)),
        pl.Series("_typo", (TOEWIJZING_NUMMER_RANGE[0] + keyed_uniform(seed, H_TW_TYPO, ck)
                            * (TOEWIJZING_NUMMER_RANGE[1] - TOEWIJZING_NUMMER_RANGE[0])).astype(np.int64)),
    )
    # Where the drawn mistake cannot show on this line (a period error needs a toewijzing edge inside the month),
    # the aanbieder makes a volume mistake instead, else a tariff mistake, else a ToewijzingNummer typo.
    month_start, month_end = pl.col("begindatum").dt.truncate("1mo"), pl.col("einddatum").dt.month_end()
    starts_mid = (pl.col("begindatum") == pl.col("_tw_in")) & (pl.col("begindatum") != month_start)
    ends_mid = (pl.col("einddatum") == pl.col("_tw_eind")).fill_null(False) & (pl.col("einddatum") != month_end)
    ok = {
        "9321": (pl.col("tw_frequentie") != "6") & (pl.col("eenheid") != "83") & pl.col("_cap").is_not_null(),
        "0611": pl.col("eenheid") != "83",
        "9307": starts_mid | ends_mid,
        "9338": pl.lit(True),
    }
    reason = pl.col("_reason")
    applicable = pl.any_horizontal((reason == r) & c for r, c in ok.items())
    cand = cand.with_columns(
        pl.when(applicable).then(reason).when(ok["9321"]).then(pl.lit("9321")).when(ok["0611"]).then(pl.lit("0611"))
        .otherwise(pl.lit("9338")).alias("_reason"))
    cand = cand.with_columns(
        pl.when((reason == "9307") & ~starts_mid).then(pl.lit("9308")).otherwise(reason).alias("retourcode"))
    rc = pl.col("retourcode")
    vol = (pl.when(rc == "9321").then(pl.col("_cap").floor().cast(pl.Int64) + 1
                                      + (pl.col("_u") * pl.max_horizontal(pl.lit(1.0), pl.col("_cap") * 0.3)).floor()
                                      .cast(pl.Int64))
           .otherwise(pl.col("geleverd_volume")))
    tarief = (pl.when(rc == "0611")
              .then(pl.col("product_tarief") + pl.max_horizontal(pl.lit(1), (pl.col("product_tarief") * (0.02 + 0.04 * pl.col("_u"))).round().cast(pl.Int64)))
              .otherwise(pl.col("product_tarief")))
    wrong = cand.with_columns(
        vol.alias("geleverd_volume"), tarief.alias("product_tarief"),
        pl.when(rc == "9307").then(month_start).otherwise(pl.col("begindatum")).alias("begindatum"),
        pl.when(rc == "9308").then(month_end).otherwise(pl.col("einddatum")).alias("einddatum"),
        pl.when(rc == "9338").then(pl.col("_typo")).otherwise(pl.col("toewijzing_nummer")).alias("toewijzing_nummer"),
    ).with_columns(
        pl.when(pl.col("eenheid") == "83").then(pl.col("ingediend_bedrag"))
        .otherwise(pl.col("geleverd_volume") * pl.col("product_tarief")).alias("ingediend_bedrag"))
    # a typo that hits a real toewijzing of the gemeente is no typo: that line stays right
    clash = wrong.filter(pl.col("retourcode") == "9338").join(toewijzingen, on=tw_keys, how="semi")
    wrong = wrong.join(clash.select("_ref_key"), on="_ref_key", how="anti")
    cand = cand.join(wrong.select("_ref_key"), on="_ref_key", how="semi")

    # Resubmission: the original (right) line under a new ReferentieNummer, in a declaratie sent after the JW325.
    wk = cand["_ref_key"].to_numpy()
    give_up = keyed_uniform(seed, H_GIVE_UP, wk) < p["claim_give_up_share"]
    lo, hi = p["claim_resubmit_months"]
    lag = lo + (keyed_uniform(seed, H_RESUBMIT_LAG, wk) * (hi - lo + 1)).astype(np.int64)
    g = cand["gemeente_code"].cast(pl.Int64).to_numpy()
    a = cand["agb_code"].cast(pl.Int64).to_numpy()
    m = cand["_decl_month"].to_numpy().astype("datetime64[M]")
    _, answered = send_dates(seed, g, a, (m.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64))
    for _ in range(4):      # a late JW325 pushes the resubmission to a later declaratie
        sent, _ = send_dates(seed, g, a, ((m + lag).astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64))
        lag = np.where(sent <= answered, lag + 1, lag)
    new_month = (m + lag).astype("datetime64[D]")
    in_window = new_month <= np.datetime64(f"{last_year}-12-01")
    again = cand.with_columns(pl.Series("_decl_month", new_month).cast(pl.Date)).filter(
        pl.Series(~give_up & in_window))
    again = again.with_columns(_ref(seed, again["_ref_key"], RESUBMIT_KIND).alias("referentie_nummer"))
    again = again.with_columns(declaratie_nummers(seed, again).alias("declaratie_nummer"))
    again = again.select(lines.columns)

    # `_rejected` marks the rejected lines for `declaraties` (the tables are sorted by key afterwards)
    gone = lines["_ref_key"].is_in(wrong["_ref_key"].implode())
    out = pl.concat([
        lines.filter(~gone).with_columns(pl.lit(False).alias("_rejected")),
        wrong.select(lines.columns).with_columns(pl.lit(True).alias("_rejected")),
        again.with_columns(pl.lit(False).alias("_rejected")),
    ])
    rejected = wrong.select(*[c for c in REJECTED_COLUMNS if c != "declaratie_nummer"], "_decl_month")
    return out, rejected


def declaraties(seed: int, lines: pl.DataFrame, rejected: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """JW323 headers (one per aanbieder, gemeente and month) and their JW325 answers: the granted total is the signed
    sum of the lines not rejected; header retourcode 8001 when nothing was rejected, else 0200."""
    if "_rejected" in lines.columns:        # marked by `decide`
        pass
    elif rejected is None or rejected.height == 0:
        lines = lines.with_columns(pl.lit(False).alias("_rejected"))
    else:
        lines = lines.join(rejected.select(*LINE_KEY).with_columns(pl.lit(True).alias("_rejected")), on=LINE_KEY,
                           how="left", maintain_order="left").with_columns(pl.col("_rejected").fill_null(False))
    # the DeclaratieNummer is a bijection of (gemeente, month) per aanbieder: grouping by it alone is the same
    # the signed amounts computed once, so the groups sum plain columns (the granted one is 0 on a rejected line)
    amount = signed("ingediend_bedrag")
    x = lines.select("agb_code", "declaratie_nummer", "gemeente_code", "_decl_month", "_rejected", amount.alias("_a"),
                     pl.when(pl.col("_rejected")).then(0).otherwise(amount).alias("_g"))
    aggs = [pl.col("gemeente_code").first(), pl.col("_decl_month").first(), pl.col("_a").sum().alias("_total"),
            pl.col("_g").sum().alias("_granted"), pl.col("_rejected").any().alias("_partly")]
    packed = pack([sortable(lines["agb_code"]), sortable(lines["declaratie_nummer"])])
    if len(packed) > 1:
        d = x.group_by("agb_code", "declaratie_nummer").agg(*aggs)
    else:   # one integer key groups the same rows as the two strings, at half the cost
        d = x.with_columns(pl.Series("_k", packed[0])).group_by("_k").agg(
            pl.col("agb_code").first(), pl.col("declaratie_nummer").first(), *aggs).drop("_k")
    dt, ans = send_dates(seed, d["gemeente_code"].cast(pl.Int64).to_numpy(), d["agb_code"].cast(pl.Int64).to_numpy(),
                         _month_days(d["_decl_month"]))
    d = d.with_columns(pl.Series("_dt", dt), pl.Series("_ans", ans))
    sign = lambda c: pl.when(pl.col(c) >= 0).then(pl.lit("D")).otherwise(pl.lit("C"))  # noqa: E731
    head = d.select(
        "declaratie_nummer", "agb_code", "gemeente_code",
        pl.col("_decl_month").alias("begindatum"),
        pl.col("_decl_month").dt.month_end().alias("einddatum"),
        _to_date(pl.col("_dt")).alias("dagtekening"),
        pl.col("_total").abs().alias("totaal_bedrag"),
        sign("_total").alias("debet_credit"),
    )
    answer = d.select(
        "declaratie_nummer", "agb_code", "gemeente_code", _to_date(pl.col("_ans")).alias("dagtekening"),
        pl.col("_granted").abs().alias("totaal_toegekend_bedrag"), sign("_granted").alias("debet_credit"),
        pl.when("_partly").then(pl.lit(PARTLY_GRANTED)).otherwise(pl.lit(FULLY_GRANTED)).alias("retourcode"),
    )
    return head, answer


def rejected_lines(rejected: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """`declaratie_antwoord_prestaties`: the rejected lines with the DeclaratieNummer of the JW323 they came in."""
    # only the lines of those ReferentieNummers take part (a set lookup, not a hash table of every line)
    decl = lines.select(*LINE_KEY, "declaratie_nummer").filter(
        pl.col("referentie_nummer").is_in(rejected["referentie_nummer"].implode()))
    return rejected.join(decl, on=LINE_KEY, how="left").select(REJECTED_COLUMNS)
