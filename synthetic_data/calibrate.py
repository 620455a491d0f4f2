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
    out += _flow_measures(tables, cal, y0, y1)   # --- issue 12: flows
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
