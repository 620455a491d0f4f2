"""The gemeente's first answer to a JW315 verzoek om toewijzing: a multinomial logit with irreducible noise.

Every feature is one the hand-out shows, directly or through history: product and productcategorie, verwijzer type,
age at the requested start, sex, requested duration and volume, aanbieder (whether it holds a contract for that
product, learnable from its past answers) and whether the youth had care here before. The coefficients and their
reasons are in care_model.yaml `request_decision`. The answer is drawn from the model's probabilities, so no
learner can do better than the model itself: the task `verzoek_triage` reports that score as its ceiling.

First answer: toewijzing (JW301), afwijzing (JW319 code 1) or in onderzoek (JW319 code 2). A request in onderzoek is
later rejected with the odds of a direct answer (afwijzing : toewijzing), else granted.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .model import DAYS_PER_MONTH, model
from .privacy import keyed_uniform
from .reference import care_model, producten_catalogus

H_CONTRACT = 450          # keyed hash: does the aanbieder hold a contract for the product (per seed, regio)
REDENEN = np.array([3, 4, 6, 7])   # RedenAfwijzingVerzoek (WJ759) a minor's rejection can carry; 9 at 18+
OORSPRONG_NIEUW, OORSPRONG_HERHAALD, OORSPRONG_GELIJKTIJDIG = 0, 1, 2


@cache
def _spec() -> dict:
    return care_model()["request_decision"]


@cache
def _tables() -> dict[str, np.ndarray]:
    """Per-product, per-verwijzer and per-hulpvorm coefficient arrays (index -1 = no product: the appended 0)."""
    s, m = _spec(), model()
    codes = producten_catalogus()["product_code"].to_list()
    cm = care_model()
    per_code = lambda d: np.append([float(d.get(c, 0.0)) for c in codes], 0.0)  # noqa: E731
    per_vw = lambda d: np.array([float(d.get(v, 0.0)) for v in m.verwijzers])  # noqa: E731
    verblijf = np.array([bool(cm["hulpvormen"].get(h, {}).get("verblijf", False)) for h in m.hulpvormen])
    a, o = s["afwijzing"], s["onderzoek"]
    dys = a["dyslexie"]
    return {
        "afw_product": per_code(a["product"]), "afw_verwijzer": per_vw(a["verwijzer"]),
        "afw_huisarts_product": per_code(a["huisarts_product"]),
        "ond_verwijzer": per_vw(o["verwijzer"]), "ond_product": per_code(o.get("product", {})),
        "verblijf": verblijf, "huisarts": np.array([v == "huisarts" for v in m.verwijzers]),
        "dyslexie": np.append([c in dys["products"] for c in codes], False),
        "ggz": np.append([(c or "").startswith("54") for c in codes], False),   # an aspecifiek product has no code
        "vmin": np.append(producten_catalogus()["volume_min"].to_numpy(), 1).astype(float),
        "vmax": np.append(producten_catalogus()["volume_max"].to_numpy(), 1).astype(float),
    }


def no_contract(seed: int, regio_index: int, aanbieder: np.ndarray, product: np.ndarray) -> np.ndarray:
    """True where the aanbieder holds no contract for the product (a fixed share of the pairs, keyed per seed)."""
    u = keyed_uniform(seed, H_CONTRACT, regio_index, np.asarray(aanbieder, dtype=np.int64),
                      np.asarray(product, dtype=np.int64))
    return (u < _spec()["afwijzing"]["geen_contract_share"]) & (np.asarray(product) >= 0)


def probabilities(seed: int, regio_index: int, cells: np.ndarray, product: np.ndarray, aanbieder: np.ndarray,
                  age: np.ndarray, girl: np.ndarray, months: np.ndarray, volume: np.ndarray,
                  oorsprong: np.ndarray) -> dict[str, np.ndarray]:
    """The model's probabilities of each first answer, and the linear parts that pick the reden afwijzing.

    `age` in years at the requested start, `months` the requested duration, `volume` the requested volume (per
    period, as in the catalogue's volume range), `oorsprong` 0 nieuw, 1 herhaald, 2 gelijktijdig (or more: a
    follow-up, never rejected). Returns p_toewijzing, p_afwijzing, p_onderzoek (first answer) and the parts."""
    s, m, t = _spec(), model(), _tables()
    a, o = s["afwijzing"], s["onderzoek"]
    nv = len(m.verwijzers)
    hv, vw = cells // nv, cells % nv
    verblijf = t["verblijf"][hv]
    adult = age >= 18
    long = np.maximum(months - a["duration_free_months"], 0.0)
    rel = np.clip((volume - t["vmin"][product]) / np.maximum(t["vmax"][product] - t["vmin"][product], 1), 0, 1)
    dys_age = t["dyslexie"][product] & ((age < a["dyslexie"]["age"][0]) | (age >= a["dyslexie"]["age"][1]))
    parts = {   # reden afwijzing -> its share of the linear predictor (>= 0)
        3: np.where(no_contract(seed, regio_index, aanbieder, product), a["geen_contract"], 0.0),
        4: a["duration_per_month"] * long + a["volume_top"] * rel,
        6: np.where(oorsprong == OORSPRONG_HERHAALD, a["herhaald"], 0.0),
        7: np.maximum(t["afw_product"][product] + t["huisarts"][vw] * t["afw_huisarts_product"][product]
                      + np.where(dys_age, a["dyslexie"]["outside"], 0.0), 0.0),
    }
    eta_afw = (a["intercept"] + t["afw_verwijzer"][vw] + sum(parts.values())
               + np.where(adult, a["adult"] + np.where(verblijf, a["adult_verblijf"], 0.0), 0.0)
               + np.where(girl, a["meisje"], 0.0))
    eta_ond = (o["intercept"] + t["ond_verwijzer"][vw] + t["ond_product"][product]
               + np.where(verblijf, o["verblijf"], 0.0)
               + np.where(oorsprong == OORSPRONG_NIEUW, o["nieuw"], 0.0)
               + np.where(oorsprong == OORSPRONG_HERHAALD, o["herhaald"], 0.0)
               + o["duration_per_month"] * long
               + np.where((age >= o["age_band"][0]) & (age < o["age_band"][1]), o["age_band_effect"], 0.0)
               + np.where(girl & t["ggz"][product], o["meisje_ggz"], 0.0))
    # a companion (oorsprong 2) and a follow-up are never rejected (the care was granted with the trajectory beside it)
    never = oorsprong >= OORSPRONG_GELIJKTIJDIG
    e_afw = np.where(never, 0.0, np.exp(eta_afw))
    e_ond = np.exp(eta_ond)
    z = 1.0 + e_afw + e_ond
    return {"p_toewijzing": 1.0 / z, "p_afwijzing": e_afw / z, "p_onderzoek": e_ond / z,
            "parts": parts, "adult": adult}


def decide(u3: np.ndarray, pr: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (rejected, reden_afwijzing, in_onderzoek) from the probabilities, given three uniforms per request
    (`u3`, shape 3 x n)."""
    u, u_later, u_reden = u3
    p_afw, p_ond, p_tw = pr["p_afwijzing"], pr["p_onderzoek"], pr["p_toewijzing"]
    onderzoek = u < p_ond
    direct = (u >= p_ond) & (u < p_ond + p_afw)
    later = onderzoek & (u_later < p_afw / np.maximum(p_afw + p_tw, 1e-300))
    rejected = direct | later
    # the reden: the causes weighted by base share x exp(their part of the predictor)
    base = _spec()["reden_base"]
    w = np.stack([float(base[int(r)]) * np.exp(pr["parts"][int(r)]) for r in REDENEN], axis=1)
    c = np.cumsum(w, axis=1)
    pick = (u_reden[:, None] * c[:, -1:] >= c).sum(axis=1)
    reden = np.where(pr["adult"], 9, REDENEN[np.minimum(pick, len(REDENEN) - 1)])
    return rejected, reden.astype(np.int64), onderzoek


def requested_months(begin: np.ndarray, planned_end: np.ndarray) -> np.ndarray:
    """The duration a JW315 asks for, in months: up to the planned end, at most a year (as in `verzoeken`)."""
    return (np.minimum(planned_end, begin + 364) - begin + 1) / DAYS_PER_MONTH


# ------------------------------------------------------------------------------------------- the model as a predictor

ANTWOORDEN = ("toewijzing", "afwijzing", "in_onderzoek")


def best_answers(p: np.ndarray) -> np.ndarray:
    """Index into ANTWOORDEN per row of the (n, 3) first-answer probabilities: the decision that maximises the
    macro-F1 the model itself expects (argmax of the class-weighted probabilities, the weights chosen on the
    probabilities alone, never on realised answers)."""
    p = np.asarray(p, dtype=float)
    if not len(p):
        return np.zeros(0, dtype=np.int64)
    support = p.sum(axis=0)
    grid = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0])
    best, best_f1 = np.argmax(p, axis=1), -1.0
    for wa in grid:
        for wo in grid:
            d = np.argmax(p * np.array([1.0, wa, wo]), axis=1)
            f1 = []
            for k in range(3):
                sel = d == k
                if support[k] <= 0 and not sel.any():
                    continue
                f1.append(2 * p[sel, k].sum() / (support[k] + sel.sum()))
            f = float(np.mean(f1))
            if f > best_f1 + 1e-12:
                best, best_f1 = d, f
    return best


def request_probabilities(config) -> pl.DataFrame:
    """gemeente_code, referentie_aanbieder and the model's first-answer probabilities p_toewijzing, p_afwijzing,
    p_onderzoek of every JW315 the simulation of `config` sends (simulation internals: for task ceilings, never for
    a hand-out). A request after a move keeps the flat in-onderzoek share and is never rejected."""
    from .generate import simulate

    m = model()
    nv = len(m.verwijzers)
    jw315 = pl.Series([m.path[c % nv] == "jw315" for c in range(len(m.joint))])
    share = float(care_model()["parameters"]["request_in_onderzoek_share"])
    s = simulate(config).filter(pl.col("cell").replace_strict(pl.Series(range(len(m.joint))), jw315))
    return s.select(
        "gemeente_code", pl.col("_ref_aanbieder").alias("referentie_aanbieder"),
        pl.col("_p_afwijzing").fill_null(0.0).alias("p_afwijzing"),
        pl.col("_p_onderzoek").fill_null(share).alias("p_onderzoek"),
    ).with_columns((1.0 - pl.col("p_afwijzing") - pl.col("p_onderzoek")).alias("p_toewijzing"))
