"""Compare a generated dataset with the CBS calibration targets (calibration.yaml)."""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

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
    t = tables["trajecten"]
    y0, y1 = pl.date(year, 1, 1), pl.date(year, 12, 31)
    active = t.filter((pl.col("begindatum") <= y1) & (pl.col("einddatum") >= y0))
    started = t.filter(pl.col("begindatum").is_between(y0, y1))
    ended = t.filter(pl.col("einddatum").is_between(y0, y1) & (pl.col("einde_reden") != "verhuizing"))
    g = tables["gemeenten"]
    youth = (g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]).sum() * scale
    persons = active.select("client_id").n_unique()
    out = [
        Measure("prevalence_lt23", persons / youth, cal["prevalence_lt23"]["value"], cal["prevalence_lt23"]["tolerance"]),
        Measure("trajecten_per_youth_per_year", active.height / persons,
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
    people = tables["jeugdigen"].join(active.select("gemeente_code", "client_id").unique(), on=["gemeente_code", "client_id"])
    sex = cal["sex_share_boys"]
    out.append(Measure("sex_share_boys", float((people["geslacht"] == "1").mean()), sex["value"], sex["tolerance"]))
    # Spending: net claimed eurocents in the year per youth in care.
    p = tables["prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    net = p.select(pl.when(pl.col("debet_credit") == "D").then("ingediend_bedrag").otherwise(-pl.col("ingediend_bedrag")).sum()).item()
    spend = cal["spending_per_youth_in_care_eur"]
    lo, hi = spend["range"]
    out.append(Measure("spending_per_youth_in_care_eur", net / 100 / persons, spend["value"], (hi - lo) / 2))
    out.extend(_request_answers(tables, y0, y1, cal))
    return out


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
