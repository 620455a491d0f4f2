"""The friction of the process as figures: what `zandbak calibration DIR --process` prints for one generated year.

These have no CBS target (the care model's own estimates drive them, synthetic_data/data/care_model.yaml); they are
measured from the tables a gemeente holds, the same way an analyst would, so the README's figures can be reproduced.
"""
from __future__ import annotations

import polars as pl

from .ijw import late_answers, late_declaratie_antwoorden, late_sent, latest_toewijzing, volume_cap

Tables = dict[str, pl.DataFrame]


def _q(s: pl.Series, q: float) -> float:
    return float(s.quantile(q, "nearest")) if s.len() else float("nan")


def process_figures(tables: Tables, year: int) -> list[tuple[str, float, str]]:
    """(figure, value, how it is measured) for `year`: lateness, waiting time, stops against the plan, claim lags,
    utilisation, rejections and retourcodes, care domains, tariffs, market concentration, prevalence spread."""
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    in_year = lambda c: pl.col(c).is_between(y0, y1)  # noqa: E731
    out: list[tuple[str, float, str]] = []
    add = lambda name, v, how: out.append((name, float(v), how))  # noqa: E731

    # Lateness (share of the year's messages after the term of their rule).
    starts = tables["zorgstarts"].filter(in_year("begindatum"))
    stops = tables["zorgstops"].filter(in_year("einddatum"))
    late_s = late_sent(starts, "begindatum", 5)
    late_e = late_sent(stops, "einddatum", 5)
    add("jw305_late_share", late_s.height / max(starts.height, 1), "JW305 sent > 5 werkdagen after Begindatum (OP271)")
    add("jw305_late_p90_werkdagen", _q(late_s["werkdagen"], 0.9), "p90 werkdagen of the late JW305s")
    add("jw307_late_share", late_e.height / max(stops.height, 1), "JW307 sent > 5 werkdagen after Einddatum (OP272)")
    add("jw307_late_max_werkdagen", float(late_e["werkdagen"].max() or 0), "longest delay of a JW307")
    req = tables["verzoeken"].filter(in_year("dagtekening"))
    late_a = late_answers(req, tables["antwoorden"], tables["toewijzingen"])
    add("jw315_answer_late_share", late_a.height / max(req.height, 1), "JW315 answered late (OP274)")
    if "declaraties" in tables:
        d = tables["declaraties"].filter(in_year("begindatum"))
        a = tables["declaratie_antwoorden"].join(d.select("agb_code", "declaratie_nummer"), on=["agb_code", "declaratie_nummer"])
        add("jw325_late_share", late_declaratie_antwoorden(a, tables["declaraties"]).height / max(a.height, 1),
            "JW325 sent > 10 werkdagen after its JW323 (OP090x4)")

    # Toewijzingen: backdated, waiting time, deleted, stops against the plan.
    tw = tables["toewijzingen"]
    first = tw.filter((pl.col("versie") == 1) & in_year("ingangsdatum"))
    add("toewijzing_backdated_share", (first["toewijzingsdatum"] > first["ingangsdatum"]).mean(),
        "first JW301 sent after its Ingangsdatum")
    wait = starts.join(first.select("gemeente_code", "toewijzing_nummer", "product_categorie"),
                       on=["gemeente_code", "toewijzing_nummer", "product_categorie"]).with_columns(
        (pl.col("begindatum") - pl.col("toewijzing_ingangsdatum")).dt.total_days().alias("_wait"))
    add("waiting_days_p50", _q(wait["_wait"], 0.5), "days from toewijzing Ingangsdatum to JW305 Begindatum, median")
    add("waiting_days_p90", _q(wait["_wait"], 0.9), "the same, p90")
    ggz = wait.filter(pl.col("product_categorie") == "54")["_wait"]
    add("waiting_days_p50_ggz", _q(ggz, 0.5), "median wait for jeugd-ggz (54)")
    add("toewijzing_deleted_share", (tw.filter(in_year("ingangsdatum"))["reden_wijziging"] == "13").sum()
        / max(first.height, 1), "toewijzingen withdrawn (RedenWijziging 13) per first toewijzing")
    last = latest_toewijzing(tw)
    s = stops.filter(pl.col("reden_beeindiging") != "20").join(
        last.select("gemeente_code", "toewijzing_nummer", pl.col("einddatum").alias("_tw_eind")),
        on=["gemeente_code", "toewijzing_nummer"])
    add("stop_before_toewijzing_end_share", (s["einddatum"] < s["_tw_eind"]).mean(),
        "definitive JW307 before the (last) toewijzing Einddatum")
    add("temporary_stops", float(stops.filter(pl.col("reden_beeindiging") == "20").height), "JW307 with reden 20")
    if "wijzigingsverzoeken" in tables:
        add("jw317_requests", float(tables["wijzigingsverzoeken"].filter(in_year("dagtekening")).height), "JW317 sent")

    # Claims: lag of the first debet, corrections, utilisation proxy, rejections.
    p = tables["prestaties"]
    decl = tables["declaraties"].select("agb_code", "declaratie_nummer", pl.col("begindatum").alias("_periode"))
    debet = p.filter((pl.col("debet_credit") == "D") & pl.col("vorig_referentie_nummer").is_null() & in_year("begindatum")).join(
        decl, on=["agb_code", "declaratie_nummer"]).with_columns(
        ((pl.col("_periode").dt.year() - pl.col("begindatum").dt.year()) * 12
         + pl.col("_periode").dt.month() - pl.col("begindatum").dt.month()).alias("_lag"))
    add("claim_lag_over_1_month_share", (debet["_lag"] > 1).mean(), "debets declared more than a month after delivery")
    add("claim_after_year_end_share", (debet["_periode"].dt.year() > year).mean(), "debets of the year declared the next year")
    credits = p.filter((pl.col("debet_credit") == "C") & in_year("begindatum"))
    add("correction_share", credits.height / max(debet.height, 1), "credit lines per first debet")
    cap = debet.join(last.select("gemeente_code", "toewijzing_nummer", pl.col("volume").alias("tw_volume"),
                                 pl.col("frequentie").alias("tw_frequentie")), on=["gemeente_code", "toewijzing_nummer"]).filter(
        pl.col("tw_frequentie").is_in(["2", "4"]) & (pl.col("eenheid") != "14")).with_columns(
        (pl.col("geleverd_volume") / volume_cap()).alias("_u"))
    for q in (0.1, 0.5, 0.9):
        add(f"utilisation_p{int(q * 100)}", _q(cap["_u"], q), "delivered / pro-rated toegewezen volume (per week/month lines)")
    monthly = debet.group_by(pl.col("begindatum").dt.month().alias("m")).agg(pl.col("geleverd_volume").sum())
    vol = dict(monthly.iter_rows())
    add("volume_july_over_march", vol.get(7, 0) / max(vol.get(3, 1), 1), "delivered volume July / March (holiday dip)")
    if "declaratie_antwoord_prestaties" in tables:
        rej = tables["declaratie_antwoord_prestaties"].filter(in_year("begindatum"))
        add("claim_rejected_share", rej.height / max(p.filter(in_year("begindatum")).height, 1),
            "claim lines rejected in a JW325")
        for code, n in rej["retourcode"].value_counts(sort=True).iter_rows():
            add(f"claim_rejected_retourcode_{code}", float(n), "rejected lines with this retourcode")
        da = tables["declaratie_antwoorden"]
        add("declaratie_partly_granted_share", (da["retourcode"] != "8001").mean(), "JW325s that reject a line")

    # Care domains among youth in care.
    t = tables["trajecten"].filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0))
    n = max(t.select("bsn").n_unique(), 1)
    for name, cond in [("jeugdbescherming", pl.col("hulpvorm") == "jeugdbescherming"),
                       ("jeugdreclassering", pl.col("hulpvorm") == "jeugdreclassering"),
                       ("crisis", pl.col("product_categorie") == "46"),
                       ("landelijk", pl.col("product_categorie") == "55")]:
        add(f"youth_share_{name}", t.filter(cond).select("bsn").n_unique() / n, "share of youth in care in the year")

    # Tariffs and market.
    pr = tables["producten"].filter(pl.col("agb_code").is_null())
    by_year = pr.group_by("product_code", pl.col("geldig_van").dt.year().alias("y")).agg(pl.col("tarief").first())
    a, b = by_year.filter(pl.col("y") == year), by_year.filter(pl.col("y") == year - 1)
    j = a.join(b, on="product_code")
    if j.height:
        add("tariff_index_vs_previous_year", (j["tarief"] / j["tarief_right"]).median(), "median regional tariff ratio")
    own = tables["producten"].filter(pl.col("agb_code").is_not_null() & (pl.col("geldig_van").dt.year() == year))
    if own.height:
        spread = own.group_by("product_code").agg((pl.col("tarief").max() / pl.col("tarief").min()).alias("r"))
        add("tariff_spread_per_aanbieder_max_over_min", spread["r"].max(), "largest max/min of per-aanbieder tariffs")
    share = t.group_by("agb_code").agg(pl.len().alias("n")).sort("n", descending=True).with_columns(
        (pl.col("n") / pl.col("n").sum()).alias("s"))
    add("market_top5_share", share["s"].head(5).sum(), "share of trajecten at the 5 largest aanbieders")
    add("market_hhi", float((share["s"] ** 2).sum() * 10_000), "Herfindahl-Hirschman index of trajecten")
    add("aanbieders_under_10_clients", float(t.group_by("agb_code").agg(pl.col("bsn").n_unique().alias("c"))
                                              .filter(pl.col("c") < 10).height), "aanbieders with fewer than 10 youth")

    # Prevalence per gemeente.
    g = tables["gemeenten"].with_columns((pl.col("jeugd_0_14") + pl.col("jeugd_15_19") + pl.col("jeugd_20_22")).alias("_y"))
    per = t.group_by("gemeente_code").agg(pl.col("client_id").n_unique().alias("_n")).join(g, on="gemeente_code").with_columns(
        (pl.col("_n") / pl.col("_y")).alias("_p"))
    if per.height > 1:
        add("prevalence_min", per["_p"].min(), "lowest share of youth 0-22 in care of a gemeente")
        add("prevalence_max", per["_p"].max(), "highest share")
    return out
