"""Compare a generated dataset with the CBS calibration targets (calibration.yaml)."""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .ijw import latest_toewijzing
from .model import DAYS_PER_MONTH
from .reference import calibration


@dataclass(frozen=True)
class Measure:
    metric: str
    generated: float
    target: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return abs(self.generated - self.target) <= self.tolerance


def _shares(df: pl.DataFrame, col: str) -> dict[str, float]:
    counts = df[col].value_counts()
    total = counts["count"].sum()
    return {k: c / total for k, c in counts.iter_rows()}


def measure(tables: dict[str, pl.DataFrame], year: int, scale: float = 1.0) -> list[Measure]:
    """Generated value, target and tolerance of every calibration metric for one generated year."""
    cal = calibration()
    t_all = tables["trajecten"]
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    active_all = t_all.filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0))
    # issue 12: JB/JR maatregelen count for the prevalence (jeugdzorg) but not in the CBS jeugdhulp shares
    t = t_all.filter(~pl.col("hulpvorm").is_in(DOMAIN_HULPVORMEN))
    active = t.filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0))
    started = t.filter(pl.col("begindatum").is_between(y0, y1))
    ended = t.filter(pl.col("einddatum").is_between(y0, y1) & (pl.col("einde_reden") != "verhuizing"))
    g = tables["gemeenten"]
    youth = (g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]).sum() * scale
    persons = active_all.select("client_id").n_unique()
    out = [
        Measure("prevalence_lt23", persons / youth, cal["prevalence_lt23"]["value"], cal["prevalence_lt23"]["tolerance"]),
        Measure("trajecten_per_youth_per_year", active.height / active.select("client_id").n_unique(),
                cal["trajecten_per_youth_per_year"]["value"], cal["trajecten_per_youth_per_year"]["tolerance"]),
    ]
    for block, col, frame in [("started_trajecten_by_hulpvorm", "hulpvorm", started),
                              ("verwijzer_share_of_trajecten", "verwijzer", started),
                              ("reden_beeindiging", "einde_reden", ended)]:
        got = _shares(frame, col)
        for k, v in cal[block]["shares"].items():
            out.append(Measure(f"{block}.{k}", got.get(k, 0.0), v, cal[block]["tolerance"]))
    dur = cal["ended_trajecten_duration"]
    months = ((ended["einddatum"] - ended["begindatum"]).dt.total_days() + 1) / DAYS_PER_MONTH
    for label, v in dur["bins_months"].items():
        lo, _, hi = label.partition("-")
        lo, hi = float(lo.rstrip("+")), float(hi) if hi else float("inf")
        out.append(Measure(f"duration.{label}", float(((months >= lo) & (months < hi)).mean()), v, dur["tolerance"]))
    out.append(Measure("duration.share_lt_1y", float((months < 12).mean()), dur["share_lt_1y"], dur["tolerance"]))
    # Sex and age of the youth in care in the year.
    people = tables["jeugdigen"].join(active_all.select("gemeente_code", "client_id").unique(), on=["gemeente_code", "client_id"])
    sex = cal["sex_share_boys"]
    out.append(Measure("sex_share_boys", float((people["geslacht"] == "1").mean()), sex["value"], sex["tolerance"]))
    # Spending: net claimed eurocents in the year per youth in care, of the lines the gemeente accepted.
    p = tables["prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    rejected = tables.get("declaratie_antwoord_prestaties")
    if rejected is not None:
        p = p.join(rejected.select("agb_code", "referentie_nummer"), on=["agb_code", "referentie_nummer"], how="anti")
    net = p.select(pl.when(pl.col("debet_credit") == "D").then("ingediend_bedrag").otherwise(-pl.col("ingediend_bedrag")).sum()).item()
    spend = cal["spending_per_youth_in_care_eur"]
    lo, hi = spend["range"]
    out.append(Measure("spending_per_youth_in_care_eur", net / 100 / persons, spend["value"], (hi - lo) / 2))
    out += domain_measures(tables, year)
    out += _prevalence_spread(active, g, cal["prevalence_spread_twente"])   # issue 12: market
    out += _flow_measures(tables, cal, y0, y1)   # --- issue 12: flows
    out += _claim_decisions(tables, cal, y0, y1)
    out.extend(_request_answers(tables, y0, y1, cal))   # issue 12: triage
    return out


# --- issue 12: claims
def _claim_decisions(tables: dict[str, pl.DataFrame], cal: dict, y0: pl.Expr, y1: pl.Expr) -> list[Measure]:
    """Share of the year's claim lines the gemeente rejected, and of its JW325s sent after 10 werkdagen."""
    if "declaratie_antwoord_prestaties" not in tables or "declaratie_antwoorden" not in tables:
        return []
    from .ijw import late_declaratie_antwoorden

    out = []
    lines = tables["prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    rej = tables["declaratie_antwoord_prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    c = cal["claim_rejected_share"]
    out.append(Measure("claim_rejected_share", rej.height / max(lines.height, 1), c["value"], c["tolerance"]))
    d = tables["declaraties"].filter(pl.col("begindatum").is_between(y0, y1)).select("agb_code", "declaratie_nummer")
    a = tables["declaratie_antwoorden"].join(d, on=["agb_code", "declaratie_nummer"], how="inner")
    late = late_declaratie_antwoorden(a, tables["declaraties"]).height / a.height if a.height else 0.0
    c = cal["declaratie_antwoord_late_share"]
    out.append(Measure("declaratie_antwoord_late_share", float(late or 0.0), c["value"], c["tolerance"]))
    return out


def _flow_measures(tables: dict[str, pl.DataFrame], cal: dict, y0: pl.Expr, y1: pl.Expr) -> list[Measure]:
    """issue 12 (flows): the share of decided JW317s that the gemeente grants, and the temporary stops per start."""
    out = []
    k = ["gemeente_code", "agb_code", "referentie_aanbieder"]
    w = tables["wijzigingsverzoeken"].filter(pl.col("dagtekening").is_between(y0, y1))
    granted = w.join(tables["toewijzingen"].select(k).unique(), on=k, how="semi").height
    rejected = w.join(tables["antwoorden"].filter((pl.col("verzoek_antwoord") == "1")
                                                  & (pl.col("verzoek_soort") == "JW317")).select(k), on=k, how="semi").height
    c = cal["jw317_granted_share"]
    out.append(Measure("jw317_granted_share", granted / max(1, granted + rejected), c["value"], c["tolerance"]))
    stops = tables["zorgstops"].filter(pl.col("einddatum").is_between(y0, y1))
    starts = tables["zorgstarts"].filter(pl.col("begindatum").is_between(y0, y1)).height
    c = cal["temporary_stops_per_start"]
    out.append(Measure("temporary_stops_per_start", stops.filter(pl.col("reden_beeindiging") == "20").height
                       / max(1, starts), c["value"], c["tolerance"]))
    return out


# --- issue 12: domains
DOMAIN_HULPVORMEN = ["jeugdbescherming", "jeugdreclassering"]


def domain_shares(tables: dict[str, pl.DataFrame], year: int) -> dict[str, float]:
    """Share of youth in care in `year` (distinct BSN with an active trajectory) with a JB, JR, crisis, vervoer or
    landelijk trajectory or toewijzing, and the boys' share among youth with JR."""
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    t = tables["trajecten"].filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0))
    n = t.select("bsn").n_unique()
    tw = latest_toewijzing(tables["toewijzingen"]).filter(
        (pl.col("ingangsdatum") <= y1) & (pl.col("einddatum") >= y0) & pl.col("reden_wijziging").ne_missing(pl.lit("13")))

    def share(frame: pl.DataFrame, cond: pl.Expr) -> float:
        return frame.filter(cond).select("bsn").n_unique() / max(n, 1)
    jr = t.filter(pl.col("hulpvorm") == "jeugdreclassering").select("gemeente_code", "client_id").unique()
    boys = tables["jeugdigen"].join(jr, on=["gemeente_code", "client_id"])
    return {
        "jeugdbescherming": share(t, pl.col("hulpvorm") == "jeugdbescherming"),
        "jeugdreclassering": share(t, pl.col("hulpvorm") == "jeugdreclassering"),
        "crisis": share(t, pl.col("product_categorie") == "46"),
        "vervoer": share(tw, pl.col("product_code") == "42A03"),
        "landelijk": share(t, pl.col("product_categorie") == "55"),
        "boys_jeugdreclassering": float((boys["geslacht"] == "1").mean()) if boys.height else 0.0,
    }


def domain_measures(tables: dict[str, pl.DataFrame], year: int) -> list[Measure]:
    cal = calibration()
    got = domain_shares(tables, year)
    out = []
    for d in ("jeugdbescherming", "jeugdreclassering", "crisis", "vervoer", "landelijk"):
        c = cal[f"share_of_youth_in_care_{d}"]
        out.append(Measure(f"share_of_youth_in_care_{d}", got[d], c["value"], c["tolerance"]))
    c = cal["sex_share_boys_jeugdreclassering"]
    out.append(Measure("sex_share_boys_jeugdreclassering", got["boys_jeugdreclassering"], c["value"], c["tolerance"]))
    return out


def _prevalence_spread(active: pl.DataFrame, gemeenten: pl.DataFrame, target: dict) -> list[Measure]:
    """Prevalence of each sourced gemeente relative to the youth-weighted mean of the sourced ones in the run (only
    when all of them are in the run)."""
    codes = list(target["relative"])
    g = gemeenten.filter(pl.col("gemeente_code").is_in(codes))
    if g.height < len(codes):
        return []
    n = active.filter(pl.col("gemeente_code").is_in(codes)).group_by("gemeente_code").agg(
        pl.col("client_id").n_unique().alias("_n"))
    g = g.join(n, on="gemeente_code", how="left").with_columns(
        (pl.col("jeugd_0_14") + pl.col("jeugd_15_19") + pl.col("jeugd_20_22")).alias("_youth"), pl.col("_n").fill_null(0))
    mean = g["_n"].sum() / g["_youth"].sum()
    got = dict(zip(g["gemeente_code"], (g["_n"] / g["_youth"] / mean).to_list()))
    return [Measure(f"prevalence_spread_twente.{c}", got[c], v, target["tolerance"]) for c, v in target["relative"].items()]


# --- issue 12: triage
def _request_answers(tables: dict[str, pl.DataFrame], y0: pl.Expr, y1: pl.Expr, cal: dict) -> list[Measure]:
    """Shares of the JW315 requests sent in the year that were rejected (under 18, 18 or older) or first answered
    'in onderzoek'."""
    if "verzoeken" not in tables or "antwoorden" not in tables:
        return []
    key = ["agb_code", "referentie_aanbieder"]
    a = tables["antwoorden"].group_by(key).agg((pl.col("verzoek_antwoord") == "1").any().alias("_afgewezen"),
                                               (pl.col("verzoek_antwoord") == "2").any().alias("_onderzoek"))
    age = (pl.col("toewijzing_ingangsdatum") - pl.col("geboortedatum")).dt.total_days() / 365.25
    r = tables["verzoeken"].filter(pl.col("dagtekening").is_between(y0, y1)).join(
        a, on=key, how="left").with_columns(pl.col("_afgewezen", "_onderzoek").fill_null(False), (age >= 18).alias("_adult"))
    if r.height == 0:
        return []
    minor, adult = r.filter(~pl.col("_adult")), r.filter("_adult")
    m = lambda name, v: Measure(name, v, cal[name]["value"], cal[name]["tolerance"])  # noqa: E731
    return [m("request_rejected_share_lt18", float(minor["_afgewezen"].mean()) if minor.height else 0.0),
            m("request_rejected_share_18plus", float(adult["_afgewezen"].mean()) if adult.height else 0.0),
            m("request_in_onderzoek_share", float(r["_onderzoek"].mean()))]
