"""Flows next to the main care lifecycle: JW317 wijzigingsverzoeken and the gemeente's answers, temporary stops
(JW307 reden 20) with restarts, and JW315 requests rejected on the woonplaatsbeginsel after a move.

Everything here is normal process, not a fault, and keeps the hard iJw rules. Per-row randomness comes from keyed
hashes of the row's own identifiers (tags 250-299), so a gemeente's rows do not depend on the other gemeenten in the
run; the move-related rows use identifiers both gemeenten of a move know (origin gemeente, person, move day).
Parameters: care_model.yaml `flows` (each an estimate, with its reason there).

- `after_move_requests`: for a share of the youth who move within the inkoopregio the aanbieder first sends the JW315
  to the old gemeente, which rejects it with RedenAfwijzingVerzoek 8 naming the new one within 2 weeks (OP359); the
  request to the new gemeente goes out after that rejection.
- `plan_vow` / `apply_vow` / `vow_versions`: during care the aanbieder asks for more volume, a later einddatum or a new
  product (JW317, RedenVerzoek WJ758). The gemeente decides with a small logistic model (`vow_probability`, terms in
  care_model.yaml) and answers within 5 werkdagen (OP346, with realistic lateness): a JW301 carrying the request's
  ReferentieAanbieder (TR379) or a JW319 (afgewezen with a WJ759 reason, or in onderzoek first). A granted change of
  Omvang is an intrekking plus a new ToewijzingNummer (IV066), except for frequentie 6 (a new version); a later
  einddatum is a new version (RedenWijziging 04). The JW318 (technical retour of the JW317) is not stored.
- `plan_pauses` / `apply_pauses`: a share of long care pauses: JW307 reden 20, later a JW305 with a later Begindatum
  on the same toewijzing (restart) and the definitive JW307 on that start; or 305 -> 307(20) -> 307(definitive). No
  claim line falls in the pause (lines that touch it are cut at its edges, volume pro rata).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from .domains import second_products_taken
from .messages import _busday, _to_date
from .privacy import D_TOEWIJZING, REFERENTIE_AANBIEDER, TOEWIJZING_NUMMER_RANGE, keyed_uniform, opaque_code, opaque_number
from .reference import care_model, producten_catalogus

# keyed-hash tags (range 250-299 of issue 12 / flows)
(H_VOW, H_VOW_KIND, H_VOW_DAY, H_VOW_AANBIEDER, H_VOW_SIZE, H_VOW_DECIDE, H_VOW_ONDERZOEK, H_VOW_DELAY, H_VOW_LATE,
 H_VOW_REDEN, H_VOW_DELAY2, H_VOW_RVERZOEK, H_VOW_PRODUCT, H_VOW_DUR, H_VOW_SHORTEN, H_VOW_VOL, H_VOW_LATE2,
 H_VOW_LATE_AMOUNT, H_VOW_LATE_AMOUNT2) = range(250, 269)
H_PAUSE, H_PAUSE_AT, H_PAUSE_LEN, H_PAUSE_DEF, H_PAUSE_MSG1, H_PAUSE_MSG2 = range(270, 276)
H_WP, H_WP_LEAD, H_WP_ANS, H_WP_NEXT = range(280, 284)
# opaque-number domains of the new identifiers (kept apart from privacy's 201-205)
D_VOW, D_WOONPLAATS = 290, 291
# ToewijzingNummer count of a toewijzing that a JW317 creates: its parent's count plus this offset (never a count of
# the simulation, which stays far below it), so its number is unique and fixed whichever years are generated.
SEQ_OFFSET = 5_000_000
_TW_SEQ_BASE = 1_000_000
VERBLIJF = ["pleegzorg", "gezinsgericht", "gesloten_plaatsing", "overig_verblijf"]
VOW_KINDS = ["volume", "einddatum", "nieuw_product"]


def params() -> dict:
    return care_model()["flows"]


def _int(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Int64).to_numpy()


def _pick(u: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """An integer in [lo, hi] from a uniform."""
    return lo + np.floor(u * (hi - lo + 1)).astype(np.int64)


def _delays(seed: int, key: tuple, tag: int, late_tag: int, amount_tag: int) -> np.ndarray:
    """Answer delay in werkdagen: mostly within the norm, a share late (a long tail up to the late range's end)."""
    f = params()
    on_time = _pick(keyed_uniform(seed, tag, *key), *f["vow_answer_werkdagen"])
    ul = keyed_uniform(seed, late_tag, *key)
    late = _pick(keyed_uniform(seed, amount_tag, *key), *f["vow_late_werkdagen"])
    return np.where(ul < f["vow_late_share"], late, on_time)


def _ref(seed: int, domain: int, ref: pl.Series) -> pl.Series:
    """A new ReferentieAanbieder: a keyed bijection of the trajectory's own (VOT) reference in its own domain."""
    return opaque_code(opaque_number(seed, domain, _int(ref), size=10 ** REFERENTIE_AANBIEDER[1]), REFERENTIE_AANBIEDER)


# ------------------------------------------------------------------------------------- woonplaatsbeginsel (moves)

def after_move_requests(seed: int, df: pl.DataFrame) -> pl.DataFrame:
    """`df` with the JW315s sent to the old gemeente after a move (rejected rows of the origin gemeente, reden 8,
    `_woonplaats` = the new gemeente) and the request to the new gemeente moved after that rejection."""
    f = params()
    jw315 = pl.col("in_ijw") & (pl.col("path") == "jw315") & (pl.col("product") >= 0)
    origin_half = jw315 & pl.col("dest").is_not_null() & (pl.col("gemeente_code") == pl.col("origin_code"))
    dest_half = jw315 & (pl.col("oorsprong") == "verhuizing") & (pl.col("gemeente_code") != pl.col("origin_code"))
    move = pl.when(origin_half).then(pl.col("end")).otherwise(pl.col("begin") - 1).alias("_move")
    df = df.with_columns(pl.lit(None, pl.String).alias("_woonplaats"))
    sel = df.with_row_index("_i").filter(origin_half | dest_half).with_columns(move)
    if not sel.height:
        return df
    key = (_int(sel["origin_code"]), sel["person_index"].to_numpy(), sel["_move"].to_numpy())
    wrong = keyed_uniform(seed, H_WP, *key) < f["woonplaats_wrong_share"]
    w = sel["_move"].to_numpy() - _pick(keyed_uniform(seed, H_WP_LEAD, *key), *f["woonplaats_lead_days"])
    rejected_on = _busday(w, _pick(keyed_uniform(seed, H_WP_ANS, *key), *f["woonplaats_answer_werkdagen"]))
    next_request = _busday(rejected_on, _pick(keyed_uniform(seed, H_WP_NEXT, *key), 1, 3))
    sel = sel.with_columns(pl.Series("_wrong", wrong), pl.Series("_w", w), pl.Series("_rej", rejected_on),
                           pl.Series("_next", next_request)).filter("_wrong")
    # the old gemeente's side: a rejected request for care from the day after the move
    olds = sel.filter(pl.col("gemeente_code") == pl.col("origin_code"))
    pseudo = olds.with_columns(
        (pl.col("_move") + 1).alias("begin"), (pl.col("_move") + 365).alias("end"),
        (pl.col("_move") + 365).alias("planned_end"), pl.lit(True).alias("rejected"),
        pl.lit("8").alias("reden_afwijzing"), pl.lit(False).alias("_onderzoek"),
        pl.col("_w").alias("_req_date"), pl.col("_rej").alias("_ans_date"), pl.col("_rej").alias("_ans2_date"),
        _ref(seed, D_WOONPLAATS, olds["_ref_aanbieder"]).alias("_ref_aanbieder"),
        (pl.col("traject_id") + "-WPB").alias("traject_id"), pl.lit(None, pl.Int64).alias("toewijzing_nummer"),
        pl.lit(None, pl.Int64).alias("_tw_seq"), pl.col("dest").alias("_woonplaats"),
    ).drop("_i", "_move", "_wrong", "_w", "_rej", "_next")
    # the new gemeente's side: its request goes out after the rejection
    news = sel.filter(pl.col("gemeente_code") != pl.col("origin_code")).select("_i", "_next")
    if news.height:
        hit = pl.int_range(pl.len()).is_in(news["_i"].implode())
        d = df.with_row_index("_i").filter(hit).join(news, on="_i", how="left").with_columns(
            pl.max_horizontal("_req_date", "_next").alias("_req_date"))
        ans = _busday(d["_req_date"].to_numpy(), d["_ans_delay"].to_numpy())
        ans2 = _busday(ans, d["_onderzoek_delay"].to_numpy())
        d = d.with_columns(pl.Series("_ans_date", ans), pl.Series("_ans2_date", ans2)).drop("_i", "_next")
        # the tables are sorted by their key when they are built, so the row order here does not matter
        df = pl.concat([df.filter(~hit), d], how="vertical_relaxed")
    return pl.concat([df, pseudo.select(df.columns)], how="vertical_relaxed")


def antwoorden_columns(antwoorden: pl.DataFrame, df: pl.DataFrame) -> pl.DataFrame:
    """The VOT answers with the columns of the flows: `verzoek_soort` JW315 and the woonplaatsbeginsel gemeente."""
    wp = df.filter(pl.col("_woonplaats").is_not_null()).select(
        "agb_code", pl.col("_ref_aanbieder").alias("referentie_aanbieder"),
        pl.col("_woonplaats").alias("woonplaatsbeginsel_gemeente"))
    return antwoorden.join(wp, on=["agb_code", "referentie_aanbieder"], how="left").with_columns(
        pl.lit("JW315").alias("verzoek_soort"),
        pl.when(pl.col("reden_afwijzing") == "8").then("woonplaatsbeginsel_gemeente").alias("woonplaatsbeginsel_gemeente"))


# --------------------------------------------------------------------------------------------- JW317 and answers

def vow_probability(kind: pl.Expr, increase: pl.Expr, extra_months: pl.Expr, verblijf: pl.Expr, age: pl.Expr,
                    years_in_care: pl.Expr, reden_verzoek: pl.Expr, aanbieder_effect: pl.Expr) -> pl.Expr:
    """P(granted) of a JW317: the logistic model of care_model.yaml `flows.vow_model` (the decision's ceiling)."""
    m = params()["vow_model"]
    z = (
        kind.replace_strict(m["intercept"], return_dtype=pl.Float64)
        + pl.when(kind == "volume").then(increase * m["per_unit_increase"]).otherwise(0.0)
        + pl.when(kind == "einddatum").then(extra_months * m["per_extra_month"]).otherwise(0.0)
        + verblijf.cast(pl.Float64) * m["verblijf"]
        + (age >= 18).cast(pl.Float64) * m["age_18_plus"]
        + years_in_care * m["per_year_in_care"]
        + (reden_verzoek == "1").cast(pl.Float64) * m["reden_clientsituatie"]
        + aanbieder_effect
    )
    return 1.0 / (1.0 + (-z).exp())


def aanbieder_effect(seed: int, agb: pl.Series) -> pl.Series:
    """The aanbieder's offset on the log-odds: a keyed uniform with mean 0 and sd `aanbieder_sd`."""
    u = keyed_uniform(seed, H_VOW_AANBIEDER, _int(agb))
    return pl.Series("_aanbieder_effect", (u - 0.5) * np.sqrt(12.0) * params()["vow_model"]["aanbieder_sd"])


def _version_end(k: pl.Expr) -> pl.Expr:
    """Einddatum (day) of toewijzing version k of a trajectory, as messages.toewijzingen cuts them (yearly)."""
    return pl.min_horizontal(pl.col("planned_end"), pl.col("begin") + 365 * (k + 1) - 1)


def plan_vow(seed: int, df: pl.DataFrame, producten: pl.DataFrame) -> pl.DataFrame:
    """One row per JW317 sent in the window: the parent trajectory's columns, what is asked, the features, the model
    probability `_p` and the decision (`_granted`), with the answer dates."""
    f = params()
    base = df.filter(
        pl.col("in_ijw") & ~pl.col("rejected") & pl.col("_tw_seq").is_not_null() & (pl.col("product") >= 0)
        & (pl.col("end") - pl.col("begin") >= 90) & (pl.col("begin") <= pl.col("_we")) & (pl.col("end") >= pl.col("_ws"))
    )
    if not base.height:
        return base.clear()
    key = (_int(base["gemeente_code"]), base["_tw_seq"].to_numpy())
    years = (base["end"] - base["begin"] + 1).to_numpy() / 365.25
    occurs = keyed_uniform(seed, H_VOW, *key) < np.minimum(1.0, f["vow_per_care_year"] * years)
    # the other draws only for the trajectories that send one (keyed per row: the same values)
    base, key = base.filter(pl.Series(occurs)), tuple(k[occurs] for k in key)
    u = lambda tag: keyed_uniform(seed, tag, *key)  # noqa: E731
    shares = np.array([f["vow_kind_shares"][k] for k in VOW_KINDS], dtype=float)
    kind = np.minimum(np.searchsorted(np.cumsum(shares) / shares.sum(), u(H_VOW_KIND), side="right"), 2)
    lo, hi = f["vow_volume_increase"]
    mlo, mhi = f["vow_einddatum_months"]
    b = base.with_columns(
        pl.Series("_kind", VOW_KINDS).gather(kind), pl.Series("_u_day", u(H_VOW_DAY)),
        pl.Series("_increase", lo + u(H_VOW_SIZE) * (hi - lo)),
        pl.Series("_months", _pick(u(H_VOW_SIZE), mlo, mhi)),
        pl.when(pl.Series(u(H_VOW_RVERZOEK) < f["vow_reden_zorgplan_share"])).then(pl.lit("2")).otherwise(pl.lit("1"))
        .alias("_reden_verzoek"),
        pl.Series("_u_product", u(H_VOW_PRODUCT)), pl.Series("_u_dur", u(H_VOW_DUR)), pl.Series("_u_vol", u(H_VOW_VOL)),
    )
    # the day of the JW317: a later einddatum is asked 3-6 weeks before the current one, other changes during care
    during = pl.col("begin") + 30 + (pl.col("_u_day") * (pl.col("end") - pl.col("begin") - 90)).floor().cast(pl.Int64)
    b = b.with_columns(
        pl.when(pl.col("_kind") == "einddatum")
        .then(pl.col("end") - 21 - (pl.col("_u_day") * 21).floor().cast(pl.Int64)).otherwise(during).alias("_V"))
    b = b.with_columns(_to_date(pl.col("_V") + 10).dt.offset_by("1mo").dt.truncate("1mo").cast(pl.Int32).cast(pl.Int64)
                       .alias("_D"),
                       ((pl.col("_V") - pl.col("begin")) // 365).alias("_k"))
    b = b.with_columns(_version_end(pl.col("_k")).alias("_cur_eind"))
    # a new product: another product of the same care form in the region's contract
    b = _new_product(b, producten)
    eligible = (
        pl.when(pl.col("_kind") == "einddatum")
        .then((pl.col("einde_reden") == "volgens_plan") & (pl.col("end") == pl.col("planned_end"))
              & (pl.col("end") == pl.col("_cur_eind")))
        .when(pl.col("_kind") == "nieuw_product").then(pl.col("_new_product").is_not_null() & (pl.col("_D") <= pl.col("end") - 30))
        # more volume: not for an arrangement (eenheid 82, frequentie 6), which is one unit whatever its size
        .otherwise((pl.col("_D") <= pl.col("end") - 30) & ~((pl.col("eenheid") == "82") & (pl.col("frequentie") == "6")))
    )
    # Every JW317 of care in the window, also one sent before it: its effect on later care must not depend on the
    # years asked for. A new product stays inside its request's year (see _new_product); only those are asked in it.
    same_year = _to_date(pl.col("_D")).dt.year() == _to_date(pl.col("_V")).dt.year()
    in_years = (pl.col("_kind") != "nieuw_product") | ((pl.col("_V") >= pl.col("_ws")) & same_year)
    b = b.filter(eligible & in_years & (pl.col("_V") <= pl.col("_we")) & (pl.col("_V") > pl.col("begin")))
    # a new product the youth already gets (or may get as a second product) at that aanbieder would stack (OP259);
    # read on the asking youths' rows only (both are row-wise)
    new = b.filter(pl.col("_kind") == "nieuw_product")
    theirs = df.join(new.select("gemeente_code", "bsn").unique(), on=["gemeente_code", "bsn"], how="semi")
    taken = pl.concat([theirs.select("gemeente_code", "bsn", "agb_code", "product"),
                       second_products_taken(seed, theirs)]).rename({"product": "_new_product"})
    b = pl.concat([b.filter(pl.col("_kind") != "nieuw_product"),
                   new.join(taken, on=["gemeente_code", "bsn", "agb_code", "_new_product"], how="anti")])
    if not b.height:
        return b
    key = (_int(b["gemeente_code"]), b["_tw_seq"].to_numpy())
    age = (pl.col("_V") - pl.col("birth")) / 365.25
    b = b.with_columns(
        aanbieder_effect(seed, b["agb_code"]),
        pl.col("hulpvorm").is_in(VERBLIJF).alias("_verblijf"), age.alias("_age"),
        ((pl.col("_V") - pl.col("begin")) / 365.25).alias("_years_in_care"),
        (pl.col("_months") - mlo).cast(pl.Float64).alias("_extra_months"),
    )
    b = b.with_columns(vow_probability(pl.col("_kind"), pl.col("_increase"), pl.col("_extra_months"), pl.col("_verblijf"),
                                       pl.col("_age"), pl.col("_years_in_care"), pl.col("_reden_verzoek"),
                                       pl.col("_aanbieder_effect")).alias("_p"))
    granted = keyed_uniform(seed, H_VOW_DECIDE, *key) < b["_p"].to_numpy()
    onderzoek = keyed_uniform(seed, H_VOW_ONDERZOEK, *key) < f["vow_onderzoek_share"]
    a1 = _busday(b["_V"].to_numpy(), _delays(seed, key, H_VOW_DELAY, H_VOW_LATE, H_VOW_LATE_AMOUNT))
    a2 = np.where(onderzoek, _busday(a1, _delays(seed, key, H_VOW_DELAY2, H_VOW_LATE2, H_VOW_LATE_AMOUNT2)), a1)
    redenen = f["vow_afwijzing_redenen"]
    rp = np.cumsum(list(redenen.values())) / sum(redenen.values())
    reden = np.array(list(redenen))[np.minimum(np.searchsorted(rp, keyed_uniform(seed, H_VOW_REDEN, *key), side="right"),
                                               len(redenen) - 1)]
    b = b.with_columns(
        pl.Series("_granted", granted), pl.Series("_vow_onderzoek", onderzoek), pl.Series("_A1", a1), pl.Series("_A2", a2),
        pl.when(pl.col("_age") >= 18).then(pl.lit("9")).otherwise(pl.Series(reden)).alias("_reden_afw"),
        _ref(seed, D_VOW, b["_ref_aanbieder"]).alias("_vow_ref"),
        pl.when(pl.col("_kind") == "volume").then((pl.col("_vol") * (1 + pl.col("_increase"))).ceil().cast(pl.Int64))
        .when(pl.col("_kind") == "nieuw_product").then("_new_vol").otherwise("_vol").alias("_ask_vol"),
        pl.when(pl.col("_kind") == "einddatum").then(pl.col("end") + (pl.col("_months") * 30.4375).round().cast(pl.Int64))
        .otherwise(_version_end((pl.col("_D") - pl.col("begin")) // 365)).alias("_ask_eind"),
    )
    # the route of a granted answer: a new version of the toewijzing, or new toewijzing rows through the builders
    return b.with_columns(
        pl.when((pl.col("_kind") == "einddatum") | ((pl.col("_kind") == "volume") & (pl.col("frequentie") == "6")))
        .then(pl.lit("versie")).otherwise(pl.lit("nieuw_nummer")).alias("_route"))


def _new_product(b: pl.DataFrame, producten: pl.DataFrame) -> pl.DataFrame:
    cat = producten_catalogus().select("product_index", "volume_min", "volume_max")
    # landelijk ingekochte zorg (55) is only delivered by the national aanbieders: never asked for at another one
    prods = producten.filter(pl.col("product_categorie") != "55").select(
        "inkoopregio", "hulpvorm", pl.col("product_index").cast(pl.Int64).alias("_np")).sort("inkoopregio", "hulpvorm", "_np")
    opts = prods.group_by("inkoopregio", "hulpvorm").agg(pl.col("_np").alias("_opts"))
    b = b.join(opts, on=["inkoopregio", "hulpvorm"], how="left")
    n_other = pl.col("_opts").list.len().fill_null(0) - 1
    k = (pl.col("_u_product") * n_other).floor().cast(pl.Int64)
    cand = pl.col("_opts").list.get(k, null_on_oob=True)
    skip = pl.col("_opts").list.get(k + 1, null_on_oob=True)   # step over the current product
    b = b.with_columns(pl.when(n_other >= 1).then(pl.when(cand >= pl.col("product")).then(skip).otherwise(cand))
                       .alias("_new_product")).drop("_opts")
    b = b.join(cat.rename({"product_index": "_new_product"}).with_columns(pl.col("_new_product").cast(pl.Int64)),
               on="_new_product", how="left")
    lo, hi = params()["vow_new_product_days"]
    return b.with_columns(
        (pl.col("volume_min") + (pl.col("_u_vol") * (pl.col("volume_max") - pl.col("volume_min") + 1)).floor()).cast(pl.Int64)
        .alias("_new_vol"),
        # granted for the contract year of the request at most, so a request never reaches into a later year: the
        # stacking check below reads the youth's other care, which a run of later years alone does not hold
        pl.min_horizontal("end", pl.col("_D") + lo + (pl.col("_u_dur") * (hi - lo)).floor().cast(pl.Int64),
                          pl.date(_to_date(pl.col("_V")).dt.year(), 12, 31).cast(pl.Int32).cast(pl.Int64))
        .alias("_new_end"),
    ).drop("volume_min", "volume_max")


def wijzigingsverzoeken(plan: pl.DataFrame, producten: pl.DataFrame, toewijzingen: pl.DataFrame) -> pl.DataFrame:
    """The JW317s as the gemeente holds them: one row per asked product (TeWijzigenProduct or NieuwProduct). A
    frequentie-6 volume is a total over the toewijzing: the asked one is the current total raised."""
    tw = toewijzingen.sort("versie").group_by("gemeente_code", "toewijzing_nummer").agg(
        pl.col("volume").last().alias("_tw_volume"))
    plan = plan.join(tw, on=["gemeente_code", "toewijzing_nummer"], how="left").with_columns(
        pl.when((pl.col("_kind") == "volume") & (pl.col("frequentie") == "6") & pl.col("_tw_volume").is_not_null())
        .then((pl.col("_tw_volume") * (1 + pl.col("_increase"))).ceil().cast(pl.Int64)).otherwise("_ask_vol")
        .alias("_ask_vol"))
    prod = producten.select("inkoopregio", pl.col("product_index").cast(pl.Int64).alias("_new_product"),
                            pl.col("product_categorie").alias("_np_cat"), pl.col("product_code").alias("_np_code"),
                            pl.col("eenheid").alias("_np_eenheid"), pl.col("frequentie").alias("_np_freq"))
    p = plan.join(prod, on=["inkoopregio", "_new_product"], how="left")
    new = pl.col("_kind") == "nieuw_product"
    return p.select(
        pl.col("_vow_ref").alias("referentie_aanbieder"), "gemeente_code", "agb_code", "bsn",
        pl.col("_reden_verzoek").alias("reden_verzoek"),
        pl.when(~new).then("toewijzing_nummer").alias("toewijzing_nummer"),
        pl.when(new).then("_np_cat").otherwise("product_categorie").alias("product_categorie"),
        pl.when(new).then("_np_code").otherwise("product_code").alias("product_code"),
        _to_date(pl.when(pl.col("_kind") == "einddatum").then(pl.col("begin")).otherwise(pl.col("_D"))).alias("gewenste_ingangsdatum"),
        _to_date(pl.when(new).then("_new_end").otherwise("_ask_eind")).alias("einddatum"),
        pl.col("_ask_vol").alias("volume"),
        pl.when(new).then("_np_eenheid").otherwise("eenheid").alias("eenheid"),
        pl.when(new).then("_np_freq").otherwise("frequentie").alias("frequentie"),
        _to_date(pl.col("_V")).alias("dagtekening"),
    )


def vow_antwoorden(plan: pl.DataFrame) -> pl.DataFrame:
    """JW319 answers to JW317s: in onderzoek (2) first for some, afgewezen (1) with a WJ759 reason when rejected."""
    base = [pl.col("_vow_ref").alias("referentie_aanbieder"), "gemeente_code", "agb_code", "bsn"]
    tail = [pl.lit(None, pl.String).alias("woonplaatsbeginsel_gemeente"), pl.lit("JW317").alias("verzoek_soort")]
    onderzoek = plan.filter(pl.col("_vow_onderzoek") & (pl.col("_A1") <= pl.col("_we"))).select(
        *base, pl.lit("2").alias("verzoek_antwoord"), pl.lit(None, pl.String).alias("reden_afwijzing"),
        _to_date(pl.col("_A1")).alias("dagtekening"), *tail)
    afwijzing = plan.filter(~pl.col("_granted") & (pl.col("_A2") <= pl.col("_we"))).select(
        *base, pl.lit("1").alias("verzoek_antwoord"), pl.col("_reden_afw").alias("reden_afwijzing"),
        _to_date(pl.col("_A2")).alias("dagtekening"), *tail)
    return pl.concat([onderzoek, afwijzing])


def apply_vow(seed: int, df: pl.DataFrame, plan: pl.DataFrame, producten: pl.DataFrame) -> pl.DataFrame:
    """`df` with the granted JW317s that create a new ToewijzingNummer: a higher Omvang (the old toewijzing ends the
    day before, JW307 reden 37 'in verband met wijzigingsverzoek', IV066) and a new product next to the care. The new
    rows copy their parent trajectory (so every per-trajectory draw is there) and carry the JW317's reference."""
    g = plan.filter(pl.col("_granted") & (pl.col("_route") == "nieuw_nummer"))
    if not g.height:
        return df
    lo, hi = TOEWIJZING_NUMMER_RANGE
    seq = g["_tw_seq"].to_numpy() + SEQ_OFFSET
    nummer = lo + opaque_number(seed, D_TOEWIJZING, seq - _TW_SEQ_BASE - 1, _int(g["gemeente_code"]), size=hi - lo)
    prod = producten.select(
        "inkoopregio", pl.col("product_index").cast(pl.Int64).alias("_new_product"),
        *[pl.col(c).alias(f"_np_{c}") for c in ["product_categorie", "product_code", "eenheid", "frequentie", "tarief",
                                                 "levering_min", "levering_max"]])
    g = g.join(prod, on=["inkoopregio", "_new_product"], how="left", maintain_order="left")
    new = pl.col("_kind") == "nieuw_product"
    rows = g.with_columns(
        (pl.col("traject_id") + "-W").alias("traject_id"), pl.Series("_tw_seq", seq),
        pl.Series("toewijzing_nummer", nummer), pl.col("_vow_ref").alias("_ref_aanbieder"), pl.lit("jw315").alias("path"),
        pl.col("_vow_onderzoek").alias("_onderzoek"), pl.col("_V").alias("_req_date"), pl.col("_A1").alias("_ans_date"),
        pl.col("_A2").alias("_ans2_date"), pl.col("_D").alias("begin"),
        pl.when(new).then("_new_end").otherwise("end").alias("end"),
        pl.when(new).then("_new_end").otherwise("planned_end").alias("planned_end"),
        pl.when(new).then(pl.lit("31")).otherwise("reden_beeindiging").alias("reden_beeindiging"),
        pl.when(new).then(pl.lit("volgens_plan")).otherwise("einde_reden").alias("einde_reden"),
        pl.when(new).then("_new_product").otherwise("product").alias("product"),
        pl.col("_ask_vol").alias("_vol"),
        *[pl.when(new).then(f"_np_{c}").otherwise(c).alias(c) for c in
          ["product_categorie", "product_code", "eenheid", "frequentie", "tarief", "levering_min", "levering_max"]],
    )
    # columns added to the frame after the JW317s were planned (e.g. a second product's host) stay empty here
    rows = rows.with_columns(pl.lit(None, dtype=df.schema[c]).alias(c) for c in df.columns if c not in rows.columns)
    rows = rows.select(df.columns)
    # a new product the youth already gets at that aanbieder would stack (OP259): such a request is not honoured so
    taken = df.select("gemeente_code", "bsn", "agb_code", "product")   # an anti join needs no unique()
    is_new = g["_kind"] == "nieuw_product"
    rows = pl.concat([rows.filter(~is_new),
                      rows.filter(is_new).join(taken, on=["gemeente_code", "bsn", "agb_code", "product"], how="anti")])
    split = g.filter(pl.col("_kind") == "volume").select("traject_id", pl.col("_D").alias("_split"))
    hit = pl.col("traject_id").is_in(split["traject_id"].implode())
    parents = df.filter(hit).join(split, on="traject_id", how="left").with_columns(
        (pl.col("_split") - 1).alias("end"), pl.lit("37").alias("reden_beeindiging")).drop("_split")
    # the tables are sorted by their key when they are built, so the row order here does not matter
    return pl.concat([df.filter(~hit), parents, rows], how="vertical_relaxed")


def answerable(plan: pl.DataFrame, toewijzingen: pl.DataFrame) -> pl.DataFrame:
    """The JW317s whose answer is a new version only where that answer comes after every version so far (else the
    version order would not follow the dates); applied whatever the decision, so the kept ones are no biased sample."""
    last = toewijzingen.group_by("gemeente_code", "toewijzing_nummer").agg(
        pl.col("toewijzingsdatum").max().cast(pl.Int32).cast(pl.Int64).alias("_last_date"))
    p = plan.join(last, on=["gemeente_code", "toewijzing_nummer"], how="left")
    return p.filter((pl.col("_route") != "versie") | (pl.col("_A2") > pl.col("_last_date")).fill_null(False)).drop(
        "_last_date")


def vow_versions(seed: int, plan: pl.DataFrame, toewijzingen: pl.DataFrame, zorgstops: pl.DataFrame) -> pl.DataFrame:
    """New JW301 versions that answer JW317s: a later einddatum (RedenWijziging 04; shortened again to the end of care
    after the JW307, 05) or a higher volume of a frequentie-6 toewijzing (12), both with the request's reference; and
    the intrekking (12) of a toewijzing replaced by a new number when the builders' shortening falls after the window."""
    cols = toewijzingen.columns
    latest = toewijzingen.sort("gemeente_code", "toewijzing_nummer", "versie").group_by(
        "gemeente_code", "toewijzing_nummer", maintain_order=True).last()
    last = latest.select(*cols)
    g = plan.filter(pl.col("_granted")).select(
        "gemeente_code", "toewijzing_nummer", "_kind", "_route", "_vow_ref", "_A2", "_increase", "_ask_eind", "_D", "end",
        "_we", "_tw_seq")
    out = []
    v = g.filter(pl.col("_route") == "versie").join(last, on=["gemeente_code", "toewijzing_nummer"], how="inner")
    # only when the answer comes after every version so far (else the version order would not follow the dates)
    v = v.filter((_to_date(pl.col("_A2")) > pl.col("toewijzingsdatum")) & (pl.col("_A2") <= pl.col("_we")))
    ext = pl.col("_kind") == "einddatum"
    first = v.with_columns(
        (pl.col("versie") + 1).alias("versie"), pl.col("_vow_ref").alias("referentie_aanbieder"),
        _to_date(pl.col("_A2")).alias("toewijzingsdatum"),
        pl.when(ext).then(_to_date(pl.col("_ask_eind"))).otherwise("einddatum").alias("einddatum"),
        pl.when(ext).then("volume").otherwise((pl.col("volume") * (1 + pl.col("_increase"))).ceil().cast(pl.Int64))
        .alias("volume"),
        pl.when(ext).then(pl.lit("04")).otherwise(pl.lit("12")).alias("reden_wijziging"),
    )
    out.append(first.select(cols))
    # care still ended on the old einddatum: the gemeente shortens the extension again after the JW307
    stops = zorgstops.group_by("gemeente_code", "toewijzing_nummer").agg(pl.col("dagtekening").max().alias("_stop_dag"))
    short = first.filter(ext).join(stops, on=["gemeente_code", "toewijzing_nummer"], how="inner")
    if short.height:
        delay = _pick(keyed_uniform(seed, H_VOW_SHORTEN, _int(short["gemeente_code"]), short["_tw_seq"].to_numpy()), 1, 10)
        short = short.with_columns((pl.col("_stop_dag").cast(pl.Int32).cast(pl.Int64) + pl.Series(delay)).alias("_sd"))
        short = short.filter(pl.col("_sd") <= pl.col("_we")).with_columns(
            (pl.col("versie") + 1).alias("versie"), pl.lit(None, pl.String).alias("referentie_aanbieder"),
            _to_date(pl.max_horizontal("_sd", pl.col("_A2") + 1)).alias("toewijzingsdatum"),
            _to_date(pl.col("end")).alias("einddatum"), pl.lit("05").alias("reden_wijziging"))
        out.append(short.select(cols))
    # the intrekking of a toewijzing whose Omvang went to a new number, when the builders' one is not in the data
    s = g.filter((pl.col("_route") == "nieuw_nummer") & (pl.col("_kind") == "volume")).join(
        last, on=["gemeente_code", "toewijzing_nummer"], how="inner").filter(
        pl.col("einddatum") > _to_date(pl.col("_D") - 1))
    if s.height:
        s = s.with_columns(
            (pl.col("versie") + 1).alias("versie"), pl.lit(None, pl.String).alias("referentie_aanbieder"),
            _to_date(pl.max_horizontal(pl.col("_A2"), pl.col("toewijzingsdatum").cast(pl.Int32).cast(pl.Int64) + 1,
                                       ).clip(upper_bound=pl.col("_we"))).alias("toewijzingsdatum"),
            _to_date(pl.col("_D") - 1).alias("einddatum"), pl.lit("12").alias("reden_wijziging"))
        out.append(s.select(cols))
    return pl.concat(out, how="vertical_relaxed")


# ----------------------------------------------------------------------------------- temporary stop and restart

def plan_pauses(seed: int, zorgstarts: pl.DataFrame, zorgstops: pl.DataFrame, we: int) -> pl.DataFrame:
    """Pauses of long care: per toewijzing with one start and at most one stop, the last day before the pause `_S`,
    the restart `_R` (null when the pause ends in a definitive stop) and the messages' send dates."""
    f = params()
    tw = ["gemeente_code", "toewijzing_nummer"]
    sk = ["gemeente_code", "agb_code", "toewijzing_nummer", "begindatum"]
    s = zorgstarts.filter((pl.col("status_aanlevering") == "1") & (pl.len().over(tw) == 1))
    st = zorgstops.filter(pl.col("status_aanlevering") == "1").filter(pl.len().over(tw) == 1).select(
        *sk, pl.col("einddatum").cast(pl.Int32).cast(pl.Int64).alias("_E"),
        pl.col("dagtekening").alias("_stop_dag"))
    j = s.join(st, on=sk, how="left").with_columns(
        pl.col("begindatum").cast(pl.Int32).cast(pl.Int64).alias("_B"))
    lo, hi = f["pause_days"]
    j = j.with_columns((pl.col("_E").fill_null(we) - pl.col("_B")).alias("_L")).filter(
        pl.col("_L") >= max(f["pause_min_care_days"], 30 + hi + 31))
    if not j.height:
        return j
    key = (_int(j["gemeente_code"]), j["toewijzing_nummer"].to_numpy())
    u = lambda tag: keyed_uniform(seed, tag, *key)  # noqa: E731
    gap = _pick(u(H_PAUSE_LEN), lo, hi)
    room = np.maximum(0, j["_L"].to_numpy() - 30 - gap - 31)
    S = j["_B"].to_numpy() + 30 + np.floor(u(H_PAUSE_AT) * room).astype(np.int64)
    definitive = j["_E"].is_not_null().to_numpy() & (u(H_PAUSE_DEF) < f["pause_definitive_share"])
    ml, mh = f["pause_message_werkdagen"]
    d1 = _busday(S, _pick(u(H_PAUSE_MSG1), ml, mh))
    R = S + gap + 1
    d2 = _busday(R, _pick(u(H_PAUSE_MSG2), ml, mh))
    j = j.with_columns(
        pl.Series("_chosen", u(H_PAUSE) < f["pause_share"]), pl.Series("_S", S),
        pl.Series("_R", np.where(definitive, -1, R)), pl.Series("_d1", d1), pl.Series("_d2", d2),
    ).filter("_chosen").with_columns(pl.when(pl.col("_R") >= 0).then("_R").alias("_R"))
    return j.filter(pl.col("_S") <= we)


def apply_pauses(plan: pl.DataFrame, zorgstarts: pl.DataFrame, zorgstops: pl.DataFrame, we: int
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """zorgstarts and zorgstops with the pauses: the JW307 reden 20, the restart JW305, and the definitive JW307 of a
    restarted care moved to the restart's Begindatum (its key)."""
    if not plan.height:
        return zorgstarts, zorgstops
    sk = ["gemeente_code", "agb_code", "toewijzing_nummer", "begindatum"]
    start_cols, stop_cols = zorgstarts.columns, zorgstops.columns
    temp = plan.with_columns(
        _to_date(pl.col("_S")).alias("einddatum"), pl.lit("20").alias("reden_beeindiging"),
        pl.lit("1").alias("status_aanlevering"),
        pl.max_horizontal(_to_date(pl.col("_d1")), pl.col("dagtekening")).alias("dagtekening"))
    restart = plan.filter(pl.col("_R").is_not_null() & (pl.col("_R") <= we))
    new_starts = restart.with_columns(
        _to_date(pl.col("_R")).alias("begindatum"),
        pl.min_horizontal(_to_date(pl.col("_d2")), pl.col("_stop_dag")).alias("dagtekening"))
    moved = restart.filter(pl.col("_E").is_not_null()).select(*sk, _to_date(pl.col("_R")).alias("_restart"))
    stops = zorgstops.join(moved, on=sk, how="left").with_columns(
        pl.coalesce("_restart", "begindatum").alias("begindatum")).drop("_restart")
    # restart beyond the window: the care is paused at its end; nothing after that is reported
    return (pl.concat([zorgstarts, new_starts.select(start_cols)], how="vertical_relaxed"),
            pl.concat([stops.select(stop_cols), temp.select(stop_cols)], how="vertical_relaxed"))


def cut_lines(lines: pl.DataFrame, plan: pl.DataFrame) -> pl.DataFrame:
    """Claim lines without the pause: lines inside it dropped, lines across its edges cut there with their volume
    and amount pro rata (a credit follows its debet, as both have the same volume)."""
    if not plan.height:
        return lines
    p = plan.select("gemeente_code", "toewijzing_nummer", _to_date(pl.col("_S")).alias("_ps"),
                    _to_date(pl.col("_R")).alias("_pr"))
    cols = lines.columns
    # only the lines of paused toewijzingen change (the tables are sorted by their key afterwards)
    # one integer per toewijzing (a struct is_in cost 2/3 of this function)
    tw = pl.col("gemeente_code").cast(pl.Int64) * TOEWIJZING_NUMMER_RANGE[1] + pl.col("toewijzing_nummer")
    hit = lines.select(tw.is_in(p.select(tw).to_series().implode()).fill_null(False)).to_series()
    rest, lines = lines.filter(~hit), lines.filter(hit)
    j = lines.join(p, on=["gemeente_code", "toewijzing_nummer"], how="left")
    b, e = pl.col("begindatum"), pl.col("einddatum")
    far = pl.date(9999, 12, 31)
    pr = pl.col("_pr").fill_null(far)
    nb = pl.when(pl.col("_ps").is_null()).then(b).when((b > pl.col("_ps")) & (b < pr) & (e >= pr)).then(pr).otherwise(b)
    ne = pl.when(pl.col("_ps").is_null()).then(e).when((b <= pl.col("_ps")) & (e > pl.col("_ps"))).then(pl.col("_ps")).otherwise(e)
    inside = pl.col("_ps").is_not_null() & (b > pl.col("_ps")) & (e < pr)
    j = j.filter(~inside.fill_null(False)).with_columns(nb.alias("_nb"), ne.alias("_ne"))
    old_days = (e - b).dt.total_days() + 1
    new_days = (pl.col("_ne") - pl.col("_nb")).dt.total_days() + 1
    new_vol = (pl.col("geleverd_volume") * new_days) // old_days
    j = j.with_columns(
        pl.when(new_days < old_days).then(new_vol).otherwise("geleverd_volume").alias("_nv"),
    ).with_columns(
        pl.when(pl.col("geleverd_volume") > 0)
        .then(pl.col("ingediend_bedrag") // pl.col("geleverd_volume") * pl.col("_nv")).otherwise("ingediend_bedrag")
        .alias("ingediend_bedrag"),
        pl.col("_nv").alias("geleverd_volume"), pl.col("_nb").alias("begindatum"), pl.col("_ne").alias("einddatum"),
    )
    return pl.concat([rest, j.filter(pl.col("geleverd_volume") > 0).select(cols)])
