"""Rates and distributions derived from the calibration targets and the care model, computed once per process."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl

from .reference import calibration, care_model, producten_catalogus

AGE_BANDS = {"0-3": (0, 4), "4-7": (4, 8), "8-11": (8, 12), "12-17": (12, 18), "18-22": (18, 23)}
DAYS_PER_MONTH = 30.4375


def _ipf(affinity: np.ndarray, rows: np.ndarray, cols: np.ndarray, iters: int = 500) -> np.ndarray:
    """Iterative proportional fitting: the joint closest to `affinity` with the given row and column sums."""
    m = affinity.astype(float).copy()
    for _ in range(iters):
        m *= (rows / np.maximum(m.sum(1), 1e-300))[:, None]
        m *= (cols / np.maximum(m.sum(0), 1e-300))[None, :]
    return m / m.sum()


@dataclass(frozen=True)
class Model:
    hulpvormen: list[str]
    verwijzers: list[str]
    joint: np.ndarray              # P(hulpvorm, verwijzer), flattened row-major
    in_ijw_hulpvorm: np.ndarray    # bool per hulpvorm
    path: list[str]                # per verwijzer: direct / jw315 / none
    verwijzer_code: list[str]
    duration_bins: np.ndarray      # (lo, hi) months
    duration_p: np.ndarray
    duration_p_verblijf: np.ndarray
    verblijf_hulpvorm: np.ndarray  # bool per hulpvorm
    mean_duration_years: float
    einde: list[str]               # calibration categories
    einde_p: np.ndarray
    age_bands: list[tuple[int, int]]
    age_p: np.ndarray
    boy_p: np.ndarray
    starts_per_youth: float        # started trajecten per youth 0-22 per year (before rejections)
    params: dict
    # --- issue 12: domains
    domain_hulpvormen: list[str]   # hulpvormen outside the CBS jeugdhulp shares (JB, JR), appended to `hulpvormen`
    band_given_hulpvorm: np.ndarray  # P(age band | hulpvorm), rows sum to 1 (zero rows for the domain hulpvormen)


@cache
def model() -> Model:
    cal, cm = calibration(), care_model()
    hv = list(cal["started_trajecten_by_hulpvorm"]["shares"])
    vw = list(cal["verwijzer_share_of_trajecten"]["shares"])
    rows = np.array([cal["started_trajecten_by_hulpvorm"]["shares"][h] for h in hv])
    cols = np.array([cal["verwijzer_share_of_trajecten"]["shares"][v] for v in vw])
    p = cm["parameters"]
    ages = cal["age_distribution_of_youth_at_start"]["bands"]
    # Rejected JW315 requests never become trajectories: draw those referrers a little more often to compensate.
    p18 = ages["18-22"] / sum(ages.values())
    reject = p["request_reject_share"] * (1 - p18) + p["request_reject_share_18plus"] * p18
    is_jw315 = np.array([cm["verwijzers"][v]["path"] == "jw315" for v in vw])
    cols = np.where(is_jw315, cols / (1 - reject), cols)
    aff = np.array([cm["affinity"][h] for h in hv])
    joint = _ipf(aff, rows / rows.sum(), cols / cols.sum())

    dur = cal["ended_trajecten_duration"]
    bins, probs = [], []
    for label, share in dur["bins_months"].items():
        lo, _, hi = label.partition("-")
        bins.append((float(lo.rstrip("+")), float(hi) if hi else float(dur["longest_months"])))
        probs.append(share)
    bins, probs = np.array(bins), np.array(probs) / sum(probs)
    pv = np.array(list(cm["duration_bins_verblijf"].values()))
    verblijf = np.array([cm["hulpvormen"][h]["verblijf"] for h in hv])
    p_verblijf = float((rows / rows.sum())[verblijf].sum())
    mean_months = (bins.mean(axis=1) * (probs * (1 - p_verblijf) + pv / pv.sum() * p_verblijf)).sum()
    mean_years = float(mean_months / 12)

    boys = cal["sex_share_boys"]["by_age_band"]
    einde = cal["reden_beeindiging"]["shares"]
    # Steady state: youth in care in a year = starts x (1 + mean duration) / trajecten per youth.
    tpy = cal["trajecten_per_youth_per_year"]["value"]
    starts = cal["prevalence_lt23"]["value"] * tpy / (1 + mean_years)
    # Provider switches and moves add trajectories of their own (a follow-up, and two halves per move).
    switch = einde["onbekend"] / sum(einde.values()) * cm["einde_redenen"]["onbekend"]["codes"]["38"]
    moves = 2 * p["move_share_per_year"] * (1 + mean_years) / tpy
    starts /= 1 + switch + moves
    p_jw315 = float(joint.reshape(len(hv), len(vw))[:, is_jw315].sum())
    # --- issue 12: domains. JB/JR hulpvormen are appended with zero weight in the jeugdhulp joint (cells keep their
    # index); their starts are drawn apart (synthetic_data/domains.py). Age given hulpvorm: fitted to both marginals.
    age_p = np.array(list(ages.values())) / sum(ages.values())
    hv_p = joint.reshape(len(hv), len(vw)).sum(1)
    band_hv = _ipf(np.array([cm["age_by_hulpvorm"][h] for h in hv]) + 1e-12, hv_p, age_p)
    band_hv = band_hv / band_hv.sum(1, keepdims=True)
    dom = list(cm["domain_hulpvormen"])
    dom_rows = np.zeros((len(dom), len(vw)))
    joint = np.vstack([joint.reshape(len(hv), len(vw)), dom_rows])
    band_hv = np.vstack([band_hv, np.zeros((len(dom), len(age_p)))])
    hv_spec = {**cm["hulpvormen"], **cm["domain_hulpvormen"]}
    verblijf = np.array([hv_spec[h]["verblijf"] for h in hv + dom])
    # youth with only a JB/JR maatregel also count as youth in care: fewer jeugdhulp starts keep the prevalence
    dm = cm["domains"]
    only_domain = (1 - dm["with_jeugdhulp_share"]) * sum(
        cal[f"share_of_youth_in_care_{d}"]["value"] for d in dom if f"share_of_youth_in_care_{d}" in cal)
    starts *= 1 - only_domain
    # crisis (categorie 46) is short (domains.crisis): the other trajectories of its care forms take the rest of the
    # CBS duration bins, so the durations of all trajectories together still meet them (crisis lasts < 3 months)
    cat = producten_catalogus()
    crisis_w = lambda h: float(cat.filter((pl.col("hulpvorm") == h) & (pl.col("product_categorie") == "46"))["gewicht"].sum()
                               / max(cat.filter(pl.col("hulpvorm") == h)["gewicht"].sum(), 1e-12))  # noqa: E731
    shares = rows / rows.sum()
    c_v = sum(sh * crisis_w(h) for h, sh, v in zip(hv, shares, verblijf) if v) / max(shares[verblijf[:len(hv)]].sum(), 1e-12)
    nonv = ~verblijf[:len(hv)]
    c_a = sum(sh * crisis_w(h) for h, sh, n in zip(hv, shares, nonv) if n) / max(shares[nonv].sum(), 1e-12)
    pv = pv / pv.sum()

    def _rest(p: np.ndarray, c: float) -> np.ndarray:
        q = p.copy()
        q[0] = max(q[0] - c, 0.0)
        return q / q.sum()
    probs_rest, pv_rest = _rest(probs, c_a), _rest(pv, c_v)
    hv = hv + dom
    return Model(
        domain_hulpvormen=dom,
        band_given_hulpvorm=band_hv,
        hulpvormen=hv,
        verwijzers=vw,
        joint=joint.ravel(),
        in_ijw_hulpvorm=np.array([hv_spec[h]["in_ijw"] for h in hv]),
        path=[cm["verwijzers"][v]["path"] for v in vw],
        verwijzer_code=[cm["verwijzers"][v]["code"] for v in vw],
        duration_bins=bins,
        duration_p=probs_rest,
        duration_p_verblijf=pv_rest,
        verblijf_hulpvorm=verblijf,
        mean_duration_years=mean_years,
        einde=list(einde),
        einde_p=np.array(list(einde.values())) / sum(einde.values()),
        age_bands=[AGE_BANDS[b] for b in ages],
        age_p=np.array(list(ages.values())) / sum(ages.values()),
        boy_p=np.array([boys[b] for b in ages]),
        starts_per_youth=starts / (1 - p_jw315 * reject),
        params=p,
    )


@cache
def products_by_hulpvorm() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """hulpvorm -> (product_index array, probabilities); products of weight 0 (a second product only) are left out."""
    return {h: (v["index"], v["p"]) for h, v in product_weights().items()}


@cache
def product_weights() -> dict[str, dict[str, np.ndarray]]:
    """hulpvorm -> product index, base probability, weight per age band (boys, girls: products x bands) and age bounds
    (issue 12: products by age and sex; care_model.yaml `product_age_weights`, producten.csv leeftijd_min/_max)."""
    cat = producten_catalogus()
    aw = {str(k): v for k, v in care_model()["product_age_weights"].items()}   # 54001 parses as an int
    nb = len(AGE_BANDS)
    out = {}
    for h in model().hulpvormen:
        sub = cat.filter((pl.col("hulpvorm") == h) & (pl.col("gewicht") > 0))
        if not sub.height:
            continue
        w = sub["gewicht"].to_numpy().astype(float)
        codes = sub["product_code"].to_list()
        age = np.array([aw.get(c, {}).get("age", [1.0] * nb) for c in codes], dtype=float)
        girl = age * np.array([aw.get(c, {}).get("girl", [1.0] * nb) for c in codes], dtype=float)
        out[h] = {"index": sub["product_index"].to_numpy(), "p": w / w.sum(),
                  "boy_w": (w / w.sum())[:, None] * age, "girl_w": (w / w.sum())[:, None] * girl,
                  "lo": sub["leeftijd_min"].to_numpy(), "hi": sub["leeftijd_max"].to_numpy()}
    return out
