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
    # Spending: net claimed eurocents in the year per youth in care, of the lines the gemeente accepted.
    p = tables["prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    rejected = tables.get("declaratie_antwoord_prestaties")
    if rejected is not None:
        p = p.join(rejected.select("agb_code", "referentie_nummer"), on=["agb_code", "referentie_nummer"], how="anti")
    net = p.select(pl.when(pl.col("debet_credit") == "D").then("ingediend_bedrag").otherwise(-pl.col("ingediend_bedrag")).sum()).item()
    spend = cal["spending_per_youth_in_care_eur"]
    lo, hi = spend["range"]
    out.append(Measure("spending_per_youth_in_care_eur", net / 100 / persons, spend["value"], (hi - lo) / 2))
    out += _claim_decisions(tables, cal, y0, y1)
    return out


# --- issue 12: claims
def _claim_decisions(tables: dict[str, pl.DataFrame], cal: dict, y0: pl.Expr, y1: pl.Expr) -> list[Measure]:
    """Share of the year's claim lines the gemeente rejected, and of its JW325s sent after 10 werkdagen."""
    if "declaratie_antwoord_prestaties" not in tables or "declaratie_antwoorden" not in tables:
        return []
    from .ijw import werkdagen

    out = []
    lines = tables["prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    rej = tables["declaratie_antwoord_prestaties"].filter(pl.col("begindatum").is_between(y0, y1))
    c = cal["claim_rejected_share"]
    out.append(Measure("claim_rejected_share", rej.height / max(lines.height, 1), c["value"], c["tolerance"]))
    d = tables["declaraties"].filter(pl.col("begindatum").is_between(y0, y1)).select(
        "agb_code", "declaratie_nummer", pl.col("dagtekening").alias("_sent"))
    a = tables["declaratie_antwoorden"].join(d, on=["agb_code", "declaratie_nummer"], how="inner")
    late = (werkdagen(a, "_sent", "dagtekening") > 10).mean() if a.height else 0.0
    c = cal["declaratie_antwoord_late_share"]
    out.append(Measure("declaratie_antwoord_late_share", float(late or 0.0), c["value"], c["tolerance"]))
    return out
