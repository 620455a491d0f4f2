"""The simulation: care trajectories per gemeente, month by month from the epoch to the last requested year.

One numpy Generator per (seed, gemeente, year) partition draws that year's starts; a separate stream per
(seed, gemeente, year) draws the youth who move to another gemeente of the same inkoopregio, so the receiving
gemeente can recompute its incoming youth without simulating the origin. Everything else is derived.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from . import decisions, domains
from .model import DAYS_PER_MONTH, model
from .people import FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR, birth_days, cohort_sizes
from .privacy import D_TOEWIJZING, D_VERZOEK, REFERENTIE_AANBIEDER, TOEWIJZING_NUMMER_RANGE, opaque_code, opaque_number
from .providers import region_index
from .reference import calibration, care_model, gemeenten_all, prevalence_factors, producten_catalogus

_EPOCH = np.datetime64("1970-01-01", "D")
_MOVE_STREAM = 7
_TW_SEQ_BASE = 1_000_000     # `_tw_seq` counts from 1_000_001 (the per-line hashes are keyed by it)
_FOLLOW_UP_TAG = 3


def _day(date: str) -> int:
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


class _Generator(np.random.Generator):
    """numpy's Generator with a cheaper `choice(k, n, p=p)` for the many small draws of a partition.

    Same algorithm as numpy's (cumulative p normalised by its last value, one `random(n)`, searchsorted right), so
    the same draws and the same stream state; numpy's argument checks, which cost four times the draw on arrays
    of a few dozen rows, run once per distinct p (its cdf is kept). Any other call goes to numpy unchanged.
    """
    _cdfs: dict[bytes, np.ndarray] = {}

    def choice(self, a, size=None, replace=True, p=None, axis=0, shuffle=True):
        if (p is None or not replace or size is None or not isinstance(a, (int, np.integer))
                or not isinstance(size, (int, np.integer))):
            return super().choice(a, size, replace, p, axis, shuffle)
        p = np.asarray(p, dtype=np.float64)
        k = (int(a), p.tobytes())
        cdf = self._cdfs.get(k)
        if cdf is None:
            super().choice(a, 0, True, p)   # numpy's checks of a and p (draws nothing); raises as numpy does
            cdf = p.cumsum()
            cdf /= cdf[-1]
            if len(self._cdfs) < 4096:
                self._cdfs[k] = cdf
        return cdf.searchsorted(self.random(size), side="right")


def _rng(*key: int) -> np.random.Generator:
    """The stream of a partition: numpy's default_rng(SeedSequence(key)) (PCG64), with the cheaper `choice`."""
    return _Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in key])))


@cache
def _age_band_bounds() -> tuple[np.ndarray, np.ndarray]:
    bands = model().age_bands
    return np.array([b[0] for b in bands]), np.array([b[1] for b in bands])


@cache
def _gemeente(code: str) -> dict:
    g = gemeenten_all().filter(pl.col("gemeente_code") == code).row(0, named=True)
    c = cohort_sizes().filter(pl.col("gemeente_code") == code).row(0, named=True)
    return {**g, "cohort_size": c["cohort_size"], "youth": g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]}


def _new_persons(rng, seed: int, gm: dict, scale: float, begin: np.ndarray, band_p: np.ndarray | None = None,
                 boy_p: np.ndarray | None = None):
    """Draw fresh persons of the gemeente's pool for starts at `begin`: age band, age, sex, then the person index.

    `band_p` (rows x bands) draws each row's age band from its own distribution (the band given the care form,
    issue 12), `boy_p` (per row) its sex; without them the CBS age and sex shares apply to every row."""
    m = model()
    n = len(begin)
    if band_p is None:
        band = rng.choice(len(m.age_p), n, p=m.age_p)
    else:   # one uniform per row, as rng.choice draws
        cdf = np.cumsum(band_p, 1)
        band = np.minimum((cdf < rng.random(n)[:, None] * cdf[:, -1:]).sum(1), len(m.age_p) - 1)
    band_lo, band_hi = _age_band_bounds()
    lo = band_lo[band]
    # The birthday comes from the person's hash and can add up to a year: draw the oldest band below 22 so nobody
    # starts care at 23 or older (the Jeugdwet ends there).
    hi = np.minimum(band_hi[band], 22)
    age_days = ((lo + rng.random(n) * (hi - lo)) * 365.25).astype(np.int64)
    girl = rng.random(n) >= (m.boy_p[band] if boy_p is None else boy_p)
    size = gm["cohort_size"]
    scaled = max(2, int(size * scale) // 2 * 2)
    k = rng.integers(0, scaled // 2, n) * 2 + girl
    year = (begin - age_days).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    origin = int(gm["gemeente_code"])
    year = year.clip(FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR)
    person = (year - FIRST_BIRTH_YEAR) * size + k
    birth = birth_days(seed, origin, person, size)
    # the birthday comes from the person's hash: step back a cohort where it falls after the start
    late = np.nonzero(birth > begin)[0]
    if len(late):
        person[late] = ((year[late] - 1).clip(FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR) - FIRST_BIRTH_YEAR) * size + k[late]
        birth[late] = birth_days(seed, origin, person[late], size)
    return person, birth, girl.astype(bool)


def _durations(rng, cells: np.ndarray) -> np.ndarray:
    """Duration in days from the CBS bins (uniform within a bin); residential care from its own, longer bins."""
    m = model()
    n = len(cells)
    verblijf = m.verblijf_hulpvorm[cells // len(m.verwijzers)]
    b = np.where(verblijf, rng.choice(len(m.duration_p), n, p=m.duration_p_verblijf),
                 rng.choice(len(m.duration_p), n, p=m.duration_p))
    lo, hi = m.duration_bins[b, 0], m.duration_bins[b, 1]
    return np.maximum(1, ((lo + rng.random(n) * (hi - lo)) * DAYS_PER_MONTH).round().astype(np.int64))


@cache
def _einde_codes() -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    cm = care_model()["einde_redenen"]
    m = model()
    codes, voortijdig = [], []
    for cat in m.einde:
        spec = cm[cat]
        if "code" in spec:
            codes.append((np.array([int(spec["code"])]), np.array([1.0])))
        else:
            c = spec["codes"]
            codes.append((np.array([int(k) for k in c]), np.array(list(c.values())) / sum(c.values())))
        voortijdig.append(spec["voortijdig"])
    return m.einde, codes, np.array(voortijdig)


def _end_reasons(rng, n: int, no_switch: bool = False):
    """Draw the CBS end category and the JW307 reden_beeindiging code."""
    cats, codes, _ = _einde_codes()
    m = model()
    c = rng.choice(len(cats), n, p=m.einde_p)
    reden = np.zeros(n, dtype=np.int64)
    for i, (vals, p) in enumerate(codes):
        sel = np.nonzero(c == i)[0]
        if len(sel):
            reden[sel] = vals[rng.choice(len(vals), len(sel), p=p)]
    if no_switch:   # a follow-up trajectory does not switch again
        reden[reden == 38] = 31
    return c, reden


def _care(rng, seed: int, regio: str, n: int, cells: np.ndarray, age: np.ndarray, girl: np.ndarray):
    """Product and aanbieder for each start, given its (hulpvorm, verwijzer) cell, age in years and sex (issue 12:
    products by age and sex, domains.draw_products); landelijk ingekochte zorg (55) goes to a national aanbieder."""
    m = model()
    hv = cells // len(m.verwijzers)
    product = np.full(n, -1, dtype=np.int64)
    aanbieder = np.full(n, -1, dtype=np.int64)
    prods = domains.product_weights()
    choice = domains.all_choices(seed, regio)
    for h_i, h in enumerate(m.hulpvormen):     # fixed order keeps the stream deterministic
        sel = np.nonzero(hv == h_i)[0]
        if not len(sel):
            continue
        if h in prods:
            product[sel] = domains.draw_products(rng, h, age[sel], girl[sel])
        if h in choice:
            idx, p = choice[h]
            aanbieder[sel] = idx[rng.choice(len(idx), len(sel), p=p)]
    lta = np.nonzero(domains.is_category(product, domains.LANDELIJK))[0]
    if len(lta):
        idx, p = choice["landelijk"]
        aanbieder[lta] = idx[rng.choice(len(idx), len(lta), p=p)]
    return product, aanbieder


def _tail(rng, n: int, spec: dict) -> np.ndarray:
    """Lognormal draws with the given median and p90, rounded and capped at max (at least 1)."""
    sigma = np.log(spec["p90"] / spec["median"]) / 1.2816
    return np.clip(np.round(spec["median"] * np.exp(sigma * rng.standard_normal(n))), 1, spec["max"]).astype(np.int64)


@cache
def _wait_specs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per catalogue product (and the dummy index -1): zero share, median, p90 and max of the waiting time."""
    w = care_model()["timing"]["wachttijd_dagen"]
    cats = producten_catalogus()["product_categorie"].to_list() + [None]
    specs = [w.get(c, w["default"]) for c in cats]
    return tuple(np.array([s[k] for s in specs], dtype=float) for k in ("zero_share", "median", "p90", "max"))


def _message_params(rng, n: int, product: np.ndarray) -> dict:
    """Per-trajectory draws that the message tables need (lead times, delays, waiting time, toegewezen volume)."""
    p = model().params
    tm = care_model()["timing"]
    cat = producten_catalogus()
    vmin = np.append(cat["volume_min"].to_numpy(), 1)[product]   # index -1 -> the appended dummy
    vmax = np.append(cat["volume_max"].to_numpy(), 1)[product]
    out = {
        "_req_lead": rng.integers(15, 41, n),
        "_ans_delay": rng.integers(*np.add(p["answer_werkdagen"], [0, 1]), n),
        "_onderzoek": rng.random(n) < p["request_in_onderzoek_share"],
        "_onderzoek_delay": rng.integers(1, 6, n),
        "_tw_lead": rng.integers(0, 11, n),
        "_tw_time": rng.integers(8 * 3600, 17 * 3600, n),
        "_start_delay": rng.integers(*np.add(p["start_message_werkdagen"], [0, 1]), n),
        "_stop_delay": rng.integers(*np.add(p["stop_message_werkdagen"], [0, 1]), n),
        "_ext_lead": rng.integers(5, 26, n),
        "_shorten_delay": rng.integers(1, 11, n),
        "_vol": rng.integers(vmin, vmax + 1),
    }
    # --- issue 12: timing. Late messages (beyond the 5 werkdagen of OP271/OP272/OP274), a long tail.
    for key, share, spec in (("_start_delay", "start_late_share", "message_late_werkdagen"),
                             ("_stop_delay", "stop_late_share", "message_late_werkdagen"),
                             ("_ans_delay", "answer_late_share", "answer_late_werkdagen")):
        late = rng.random(n) < tm[share]
        out[key] = np.where(late, 5 + _tail(rng, n, tm[spec]), out[key])
    # Waiting time from the toewijzing Ingangsdatum to the first day of care; the JW315 comes before the Ingangsdatum.
    zero, med, p90, mx = (a[product] for a in _wait_specs())
    sigma = np.log(p90 / med) / 1.2816
    wait = np.minimum(np.round(med * np.exp(sigma * rng.standard_normal(n))), mx).astype(np.int64)
    out["_wait"] = np.where(rng.random(n) < zero, 0, wait)
    out["_req_lead"] = out["_req_lead"] + out["_wait"]
    # The gemeente assigns more hours than the expected use (headroom); etmaal and arrangement counts stay as they are.
    eenheid = np.append(cat["eenheid"].to_numpy(), "14")[product]
    frequentie = np.append(cat["frequentie"].to_numpy(), "4")[product]
    room = ~np.isin(eenheid, ["14", "82"]) & (frequentie != "6")   # a totaal is a package, assigned as needed
    out["_vol"] = np.where(room, np.ceil(out["_vol"] * tm["toegewezen_ruimte"]), out["_vol"]).astype(np.int64)
    # Backdating (the share depends on the path, applied in messages.toewijzingen), a stop past the first plan, the
    # gemeente's choice to shorten after an early stop, and a toewijzing withdrawn before care (reden 13).
    lo, hi = tm["plan_later_days"]
    out.update({
        "_bd_u": rng.random(n), "_bd_lag": _tail(rng, n, tm["backdate_days"]),
        "_ext_u": rng.random(n), "_ext_lag": _tail(rng, n, tm["backdate_days"]),
        "_later": rng.random(n) < tm["plan_later_share"], "_later_days": rng.integers(lo, hi + 1, n),
        "_shorten": rng.random(n) < tm["shorten_share"],
        "_deleted": rng.random(n) < p["deleted_toewijzing_share"], "_del_days": rng.integers(1, 11, n),
        "_del_shift": rng.integers(7, 31, n),
    })
    return out


def _planned_end(rng, end: np.ndarray, reden_cat: np.ndarray) -> np.ndarray:
    _, _, voortijdig = _einde_codes()
    lo, hi = model().params["planned_overrun_months"]
    overrun = (rng.integers(lo, hi + 1, len(end)) * DAYS_PER_MONTH).astype(np.int64)
    # --- issue 12: timing. Care "volgens plan" sometimes ends a little before the planned Einddatum.
    tm = care_model()["timing"]
    elo, ehi = tm["plan_earlier_days"]
    earlier = np.where(rng.random(len(end)) < tm["plan_earlier_share"], rng.integers(elo, ehi + 1, len(end)), 0)
    return np.where(voortijdig[reden_cat], end + overrun, end + earlier)


def _ids(prefix: str, seq: np.ndarray, width: int, suffix: str = "") -> pl.Series:
    return prefix + pl.Series(seq, dtype=pl.Int64).cast(pl.String).str.zfill(width) + suffix


def _traject_key(gemeente, year, kind, origin, seq) -> np.ndarray:
    """The traject_id as one integer, unique per trajectory (kind 0 own start, 1 follow-up, 2 move out, 3 move in,
    `origin` the gemeente moved from, else 0): the internal key of its request's ReferentieAanbieder."""
    year, seq = np.asarray(year, dtype=np.int64), np.asarray(seq, dtype=np.int64)
    assert ((year >= 2000) & (year < 2100)).all() and ((seq >= 0) & (seq < 1_000_000)).all()
    return (((np.asarray(gemeente, dtype=np.int64) * 100 + year - 2000) * 4 + kind) * 10_000 + origin) * 1_000_000 + seq


def _frame(cols: dict) -> pl.DataFrame:
    return pl.DataFrame(cols).with_columns(pl.col("einde_cat").cast(pl.Int64))


OORSPRONG = ["nieuw", "herhaald", "gelijktijdig", "overstap", "verhuizing"]


def _year_starts(seed: int, scale: float, gm: dict, year: int, hist: dict | None) -> dict[str, np.ndarray]:
    """All starts of one (gemeente, year) partition, with their follow-ups after a provider switch.

    Returns plain numpy columns (codes as integers); the caller builds one frame per gemeente.
    """
    m, p = model(), model().params
    code = int(gm["gemeente_code"])
    rng = _rng(seed, code, year)
    season = np.array(p["seasonality"]) / np.mean(p["seasonality"])
    # issue 12: the gemeente's relative prevalence (CBS spread; mean 1 in every inkoopregio)
    lam = m.starts_per_youth * gm["youth"] * prevalence_factors()[gm["gemeente_code"]] * scale / 12 * season
    per_month = rng.poisson(lam)
    n = int(per_month.sum())
    month = np.repeat(np.arange(12), per_month)
    first = np.array([f"{year}-{mo + 1:02d}-01" for mo in range(12)], dtype="datetime64[D]")
    dim = (np.append(first[1:], np.datetime64(f"{year + 1}-01-01")) - first).astype(np.int64)
    begin = (first[month] - _EPOCH).astype(np.int64) + (rng.random(n) * dim[month]).astype(np.int64)

    cells = rng.choice(len(m.joint), n, p=m.joint)
    role = rng.random(n)
    repeat_share = calibration()["repeat_use_share_of_started"]["value"]
    is_repeat = role < repeat_share
    is_companion = (role >= repeat_share) & (role < repeat_share + p["companion_share"])
    person, birth, girl = _new_persons(rng, seed, gm, scale, begin,
                                       band_p=m.band_given_hulpvorm[cells // len(m.verwijzers)])
    origin = np.full(n, code, dtype=np.int64)
    oorsprong = np.zeros(n, dtype=np.int64)

    # Repeat users: a youth under 18 who had care here in the recent past.
    rep = np.nonzero(is_repeat)[0]
    if hist is not None and len(rep):
        jan1 = _day(f"{year}-01-01")
        ok = (hist["begin"] >= jan1 - int(p["repeat_recent_months"] * DAYS_PER_MONTH)) & (
            hist["birth"] > jan1 - int(18 * 365.25))
        cand = np.nonzero(ok)[0]
        if len(cand):
            # issue 12: weighted by how the care form's age pattern favours the candidate's age band
            pick = cand[domains.pick_by_age(rng, (jan1 + 182 - hist["birth"][cand]) / 365.25,
                                            cells[rep] // len(m.verwijzers))]
            for name, arr in (("person", person), ("birth", birth), ("girl", girl), ("origin", origin)):
                arr[rep] = hist[name][pick]
            oorsprong[rep] = 1
            # a repeat start cannot lie before the youth's birth (only possible with tiny pools)
            begin[rep] = np.maximum(begin[rep], birth[rep] + 1)
    # Companions: a second trajectory next to a new one, same youth and start date.
    comp = np.nonzero(is_companion)[0]
    fresh = np.nonzero(oorsprong == 0)[0]
    fresh = fresh[~np.isin(fresh, comp)]
    if len(comp) and len(fresh):
        host = fresh[domains.pick_by_age(rng, (begin[fresh] - birth[fresh]) / 365.25, cells[comp] // len(m.verwijzers))]
        for arr in (person, birth, girl, origin, begin):
            arr[comp] = arr[host]
        oorsprong[comp] = 2

    product, aanbieder = _care(rng, seed, gm["inkoopregio"], n, cells, (begin - birth) / 365.25, girl)
    duration = _durations(rng, cells)
    end = begin + duration - 1
    cat, reden = _end_reasons(rng, n)
    # a youth who would switch provider at 23 or older leaves youth care instead (uitstroom naar ander domein)
    reden[(reden == 38) & (end + 1 - birth >= int(23 * 365.25))] = 39
    planned = _planned_end(rng, end, cat)
    age_at_begin = (begin - birth) / 365.25
    is_jw315 = np.array([m.path[v] == "jw315" for v in range(len(m.verwijzers))])[cells % len(m.verwijzers)]
    params = _message_params(rng, n, product)
    # --- issue 12: triage. The answer to a JW315 follows the documented decision model (synthetic_data/decisions.py)
    regio_index = region_index(gm["inkoopregio"])
    pr = decisions.probabilities(seed, regio_index, cells, product, aanbieder, age_at_begin, girl,
                                 decisions.requested_months(begin, planned), params["_vol"], oorsprong)
    rejected, reden_afwijzing, params["_onderzoek"] = decisions.decide(rng, pr)
    rejected &= is_jw315
    out = {
        "year": np.full(n, year), "seq": np.arange(n), "follow_up": np.zeros(n, dtype=bool),
        "origin": origin, "person": person, "birth": birth, "girl": girl, "cell": cells, "product": product,
        "aanbieder": aanbieder, "begin": begin, "end": end, "planned_end": planned, "einde_cat": cat,
        "reden": reden, "oorsprong": oorsprong, "rejected": rejected,
        "reden_afwijzing": reden_afwijzing, **params,
        "_p_afwijzing": pr["p_afwijzing"], "_p_onderzoek": pr["p_onderzoek"],
    }
    domains.crisis(seed, code, year, out)   # issue 12: crisis is short, never rejected, often backdated
    reden = out["reden"]

    # Provider switch (reden 38): care goes on at another aanbieder from the next day.
    sw = np.nonzero((reden == 38) & ~rejected)[0]
    jbjr = domains.domain_starts(seed, scale, gm, year, out)   # issue 12: JB/JR trajectories, own stream
    if jbjr is not None:
        # a JB/JR maatregel is never decided by the gemeente's request model: its answer probabilities are 0
        n_j = len(jbjr["begin"])
        out_all = {c: np.concatenate([out[c], jbjr[c] if c in jbjr else np.zeros(n_j)]) for c in out}
    else:
        out_all = out
    if not len(sw):
        return out_all
    k = len(sw)
    f_rng = _rng(seed, code, year, _FOLLOW_UP_TAG)
    _, new_aanbieder = _care(f_rng, seed, gm["inkoopregio"], k, cells[sw], (end[sw] + 1 - birth[sw]) / 365.25, girl[sw])
    choice = domains.all_choices(seed, gm["inkoopregio"])
    lta = np.nonzero(domains.is_category(product[sw], domains.LANDELIJK))[0]
    if len(lta):   # landelijk ingekochte zorg goes on at another national aanbieder
        idx, pl_ = choice["landelijk"]
        new_aanbieder[lta] = idx[f_rng.choice(len(idx), len(lta), p=pl_)]
    for i in np.nonzero(new_aanbieder == aanbieder[sw])[0]:   # few rows: move to the next provider of that care form
        idx = choice.get(domains.care_key(m.hulpvormen[cells[sw][i] // len(m.verwijzers)], product[sw][i]),
                         (np.array([]),))[0]
        if len(idx) > 1:
            new_aanbieder[i] = idx[(np.searchsorted(idx, new_aanbieder[i]) + 1) % len(idx)]
    f_begin = end[sw] + 1
    f_end = f_begin + _durations(f_rng, cells[sw]) - 1
    f_cat, f_reden = _end_reasons(f_rng, k, no_switch=True)
    f_planned = _planned_end(f_rng, f_end, f_cat)
    f_params = _message_params(f_rng, k, product[sw])
    # a follow-up's request is granted, possibly after onderzoek (issue 12: triage)
    f_pr = decisions.probabilities(seed, regio_index, cells[sw], product[sw], new_aanbieder, (f_begin - birth[sw]) / 365.25,
                                   girl[sw], decisions.requested_months(f_begin, f_planned), f_params["_vol"],
                                   np.full(k, 3))
    _, _, f_params["_onderzoek"] = decisions.decide(f_rng, f_pr)
    follow = {
        "year": np.full(k, year), "seq": sw, "follow_up": np.ones(k, dtype=bool),
        "origin": origin[sw], "person": person[sw], "birth": birth[sw], "girl": girl[sw], "cell": cells[sw],
        "product": product[sw], "aanbieder": new_aanbieder, "begin": f_begin, "end": f_end,
        "planned_end": f_planned, "einde_cat": f_cat, "reden": f_reden,
        "oorsprong": np.full(k, 3), "rejected": np.zeros(k, dtype=bool), "reden_afwijzing": np.zeros(k, dtype=np.int64),
        **f_params, "_p_afwijzing": f_pr["p_afwijzing"], "_p_onderzoek": f_pr["p_onderzoek"],
    }
    return {c: np.concatenate([out_all[c], follow[c]]) for c in out}


@cache
def _peers(origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Other gemeenten of the origin's inkoopregio and their youth 0-19 (move destinations and weights)."""
    g = gemeenten_all()
    peers = g.filter((pl.col("inkoopregio") == _gemeente(origin)["inkoopregio"]) & (pl.col("gemeente_code") != origin))
    return peers["gemeente_code"].cast(pl.Int64).to_numpy(), (peers["jeugd_0_14"] + peers["jeugd_15_19"]).to_numpy()


@cache
def _ijw_cells_p() -> np.ndarray:
    m = model()
    nv = len(m.verwijzers)
    ijw = np.array([m.in_ijw_hulpvorm[c // nv] and m.path[c % nv] != "none" for c in range(len(m.joint))])
    pj = np.where(ijw, m.joint, 0.0)
    return pj / pj.sum()


def move_stream(seed: int, scale: float, origin: str, year: int) -> dict[str, np.ndarray] | None:
    """Youth in care who move from `origin` to another gemeente of its inkoopregio during `year`.

    Returns both halves as numpy columns: the trajectory that ends at the move in the origin (half 0) and the one
    that starts the next day in the destination (half 1). Any partition can recompute it from (seed, origin, year).
    """
    p = model().params
    gm = _gemeente(origin)
    dests, w = _peers(origin)
    if not len(dests):
        return None
    rng = _rng(seed, int(origin), year, _MOVE_STREAM)
    prevalence = calibration()["prevalence_lt23"]["value"]
    prevalence *= prevalence_factors()[origin]   # issue 12: youth in care in the origin follow its prevalence
    n = int(rng.poisson(p["move_share_per_year"] * prevalence * gm["youth"] * scale))
    if n == 0:
        return None
    dest = dests[rng.choice(len(w), n, p=w / w.sum())]
    jan1 = _day(f"{year}-01-01")
    move = jan1 + rng.integers(0, _day(f"{year + 1}-01-01") - jan1, n)
    begin = move - rng.integers(30, 366, n)
    # Only care that travels as iJw (the destination takes over a toewijzing) is modelled as moving.
    cells = rng.choice(len(_ijw_cells_p()), n, p=_ijw_cells_p())
    m = model()
    person, birth, girl = _new_persons(rng, seed, gm, scale, begin,
                                       band_p=m.band_given_hulpvorm[cells // len(m.verwijzers)])
    product, aanbieder = _care(rng, seed, gm["inkoopregio"], n, cells, (begin - birth) / 365.25, girl)
    o_params = _message_params(rng, n, product)
    d_end = move + _durations(rng, cells)   # the destination trajectory starts at move + 1
    d_cat, d_reden = _end_reasons(rng, n, no_switch=True)
    d_planned = _planned_end(rng, d_end, d_cat)
    d_params = _message_params(rng, n, product)
    lo, hi = p["planned_overrun_months"]
    o_planned = move + (rng.integers(lo, hi + 1, n) * DAYS_PER_MONTH).astype(np.int64)
    # a youth of 23 or older cannot start Jeugdwet care in the new gemeente: those do not move within the stream
    young = (move + 1 - birth) < int(23 * 365.25)
    if not young.all():
        keep = np.nonzero(young)[0]
        dest, move, begin, cells, person, birth, girl, product, aanbieder = (
            a[keep] for a in (dest, move, begin, cells, person, birth, girl, product, aanbieder))
        d_end, d_cat, d_reden, d_planned, o_planned = (a[keep] for a in (d_end, d_cat, d_reden, d_planned, o_planned))
        o_params = {k: v[keep] for k, v in o_params.items()}
        d_params = {k: v[keep] for k, v in d_params.items()}
        n = len(keep)
    both = lambda a, b: np.concatenate([a, b])  # noqa: E731
    twice = lambda a: np.concatenate([a, a])    # noqa: E731
    return {
        "half": np.repeat([0, 1], n), "year": np.full(2 * n, year), "seq": twice(np.arange(n)),
        "origin": np.full(2 * n, int(origin)), "gemeente": both(np.full(n, int(origin)), dest), "dest": twice(dest),
        "person": twice(person), "birth": twice(birth), "girl": twice(girl), "cell": twice(cells),
        "product": twice(product), "aanbieder": twice(aanbieder), "begin": both(begin, move + 1),
        "end": both(move, d_end), "planned_end": both(o_planned, d_planned),
        "einde_cat": both(np.full(n, -1), d_cat), "reden": both(np.full(n, 35), d_reden),
        **{k: both(o_params[k], d_params[k]) for k in o_params},
    }


@cache
def _region_moves(seed: int, scale: float, regio: str, last_year: int) -> pl.DataFrame:
    """All move streams of an inkoopregio up to `last_year` as one frame, computed once per process."""
    peers = gemeenten_all().filter(pl.col("inkoopregio") == regio)["gemeente_code"].to_list()
    first = model().params["epoch_year"]
    parts = [move_stream(seed, scale, o, y) for y in range(first, last_year + 1) for o in peers]
    parts = [d for d in parts if d is not None]
    if not parts:
        return pl.DataFrame()
    c = {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}
    tkey = _traject_key(c["gemeente"], c["year"], 2 + c["half"], np.where(c["half"] == 1, c["origin"], 0), c["seq"])
    code = lambda k: pl.Series(c.pop(k)).cast(pl.String).str.zfill(4)  # noqa: E731
    half, year, seq = c.pop("half"), pl.Series(c.pop("year")).cast(pl.String), pl.Series(c.pop("seq")).cast(pl.String).str.zfill(5)
    origin, gemeente, dest = code("origin"), code("gemeente"), code("dest")
    traject_id = pl.select(
        pl.when(pl.lit(half) == 0).then(origin + "-" + year + "-M" + seq)
        .otherwise(dest + "-" + year + "-V" + origin + seq)
    ).to_series()
    return _frame({
        "traject_id": traject_id, "_traject_key": tkey, "gemeente_code": gemeente, "origin_code": origin, "dest": dest,
        "half": pl.Series(half).replace_strict({0: "origin", 1: "dest"}, return_dtype=pl.String),
        "person_index": c.pop("person"),
        "reden_beeindiging": pl.Series(c.pop("reden")).cast(pl.String).str.zfill(2),
        "oorsprong": pl.Series(half).replace_strict({0: "nieuw", 1: "verhuizing"}, return_dtype=pl.String),
        "rejected": np.zeros(len(half), dtype=bool), "reden_afwijzing": pl.repeat("", len(half), eager=True),
        **c,
    })


def _avoid_stacking(seed: int, regio: str, df: pl.DataFrame, passes: int = 6) -> pl.DataFrame:
    """No gestapelde toewijzing (OP259): a youth's care with the same product at the same aanbieder may not overlap.

    A repeat or companion trajectory that would overlap moves to the next aanbieder of its care form; what still
    overlaps after a few passes (a care form with very few providers) is not simulated. `df` may hold several
    gemeenten of the inkoopregio: each is handled on its own (the gemeente is part of every key).
    """
    m = model()
    nv = len(m.verwijzers)
    choice = domains.all_choices(seed, regio)
    key = ["gemeente_code", "origin_code", "person_index", "product", "aanbieder"]
    # the toewijzing can run past an early end until the gemeente shortens it: use its unshortened end
    tw_end = pl.min_horizontal("planned_end", pl.col("begin") + 365 * ((pl.col("end") - pl.col("begin")) // 365 + 1) - 1)
    # Only a youth with the same product more than once can stack, whatever the aanbieder: work on those rows.
    maybe = (pl.col("in_ijw") & ~pl.col("rejected")).alias("_maybe")
    df = df.with_columns(maybe).with_columns(
        pl.col("_maybe") & pl.struct("gemeente_code", "origin_code", "person_index", "product", "_maybe").is_duplicated()
    )
    sub, rest = df.filter("_maybe"), df.filter(~pl.col("_maybe"))
    stacked = pl.Series("_stacked", [], dtype=pl.Boolean)
    for _ in range(passes):
        sub = sub.sort(*key, "begin", "traject_id")
        # stacked: the begin lies before the latest toewijzing end of the earlier rows of its key group (numpy on
        # the sorted rows: a window expression evaluates per group, a hundred times slower here)
        first = sub.select(pl.any_horizontal([pl.col(c) != pl.col(c).shift(1) for c in key]).fill_null(True)).to_series()
        first = first.to_numpy()
        ends = sub.select(tw_end).to_series().to_numpy()
        group = np.cumsum(first)
        assert len(ends) == 0 or np.abs(ends).max() < 1 << 30
        run_max = np.maximum.accumulate(ends + (group << 31)) - (group << 31)   # cum_max restarting at each group
        flags = np.zeros(len(ends), dtype=bool)
        flags[1:] = ~first[1:] & (sub["begin"].to_numpy()[1:] <= run_max[:-1])
        stacked = pl.Series("_stacked", flags)
        sub = sub.with_columns(stacked)
        rows = np.nonzero(flags)[0]
        if not len(rows):
            break
        aanbieder = sub["aanbieder"].to_numpy().copy()
        cells = sub["cell"].to_numpy()[rows]
        product = sub["product"].to_numpy()[rows]
        care = np.array([domains.care_key(m.hulpvormen[c // nv], p) for c, p in zip(cells, product)])
        for ck in np.unique(care):   # few rows: the next provider of the same care form
            r = rows[care == ck]
            idx = choice[ck][0]
            aanbieder[r] = idx[(np.searchsorted(idx, aanbieder[r]) + 1) % len(idx)]
        sub = sub.with_columns(pl.Series("aanbieder", aanbieder))
    if len(stacked):
        sub = sub.filter(~pl.col("_stacked")).drop("_stacked")
    return pl.concat([rest, sub], how="diagonal_relaxed").drop("_maybe")


def _history(seed: int, scale: float, code: str, last_year: int) -> dict[str, np.ndarray]:
    """The numpy columns of every start of one gemeente from the epoch to `last_year` (its own partition streams)."""
    p = model().params
    gm = _gemeente(code)
    parts, hist = [], None
    keep_months = int(p["repeat_recent_months"] * DAYS_PER_MONTH)
    for year in range(p["epoch_year"], last_year + 1):
        starts = _year_starts(seed, scale, gm, year, hist)
        parts.append(starts)
        ok = ~starts["rejected"]
        new = {c: starts[c][ok] for c in ("origin", "person", "birth", "girl", "begin")}
        if hist is not None:   # keep only the recent past as candidates for repeat use
            recent = hist["begin"] >= _day(f"{year}-01-01") - keep_months
            new = {c: np.concatenate([hist[c][recent], new[c]]) for c in new}
        hist = new
    cols = {c: np.concatenate([part[c] for part in parts]) for c in parts[0]}
    cols["gemeente"] = np.full(len(cols["year"]), int(code), dtype=np.int64)
    return cols


def _simulate_region(seed: int, scale: float, regio: str, codes: list[str], first_year: int,
                     last_year: int) -> pl.DataFrame:
    """`simulate_gemeente` for several gemeenten of one inkoopregio at once: the numpy draws per gemeente (its own
    streams), the frame work once for all of them, every step keyed or grouped by gemeente."""
    m = model()
    per = [_history(seed, scale, c, last_year) for c in codes]
    cols = {c: np.concatenate([h[c] for h in per]) for c in per[0]}
    gem = cols.pop("gemeente")
    tkey = _traject_key(gem, cols["year"], cols["follow_up"].astype(np.int64), 0, cols["seq"])
    code_str = pl.Series(gem).cast(pl.String).str.zfill(4)
    own = _frame({
        "_traject_key": tkey,
        "traject_id": code_str + "-" + pl.Series(cols.pop("year")).cast(pl.String) + "-"
        + pl.Series(cols.pop("seq")).cast(pl.String).str.zfill(6)
        + pl.Series(cols.pop("follow_up")).replace_strict({True: "-S", False: ""}, return_dtype=pl.String),
        "gemeente_code": code_str,
        "origin_code": pl.Series(cols.pop("origin")).cast(pl.String).str.zfill(4),
        "person_index": cols.pop("person"),
        "reden_beeindiging": pl.Series(cols.pop("reden")).cast(pl.String).str.zfill(2),
        "oorsprong": pl.Series(cols.pop("oorsprong")).replace_strict(dict(enumerate(OORSPRONG)), return_dtype=pl.String),
        "reden_afwijzing": pl.Series(cols.pop("reden_afwijzing")).cast(pl.String).replace("0", ""),
        **cols,
    }).with_columns(pl.lit(None, dtype=pl.String).alias("dest"))
    region_moves = _region_moves(seed, scale, regio, last_year)
    frames = [own]
    if region_moves.height:
        frames.append(region_moves.filter(
            ((pl.col("half") == "origin") & pl.col("origin_code").is_in(codes))
            | ((pl.col("half") == "dest") & pl.col("dest").is_in(codes))
        ).drop("half"))
    df = pl.concat(frames, how="diagonal_relaxed")
    ws, we = _day(f"{first_year}-01-01"), _day(f"{last_year}-12-31")
    nv = len(m.verwijzers)
    ijw_cell = pl.Series([bool(m.in_ijw_hulpvorm[c // nv]) and m.path[c % nv] != "none" for c in range(len(m.joint))])
    df = df.filter(pl.col("begin") <= we).with_columns(
        (pl.col("cell").replace_strict(pl.Series(range(len(m.joint))), ijw_cell) & (pl.col("product") >= 0)).alias("in_ijw")
    )
    df = _avoid_stacking(seed, regio, df)
    # Counted in order of start within the gemeente, so a trajectory keeps its count whichever years are generated.
    # The count stays internal (`_tw_seq`, the key of per-line hashes); the ToewijzingNummer is its keyed bijection,
    # unique in the gemeente but free of order. The count needs the whole history; the rows kept are those that
    # touch the years asked for, so the order, the count and the filter are computed on a few columns and only the
    # kept rows are gathered (and numbered).
    req_date = pl.col("begin") - pl.col("_req_lead")
    narrow = df.select(
        pl.arg_sort_by("gemeente_code", "begin", "traject_id").alias("_row"),
    ).with_columns(pl.col("_row").cast(pl.Int64))
    narrow = pl.concat([narrow, df.select(
        pl.col("gemeente_code").cast(pl.Int64).alias("_gm"),
        (pl.col("in_ijw") & ~pl.col("rejected")).alias("_given"),
        ((~pl.col("rejected") & (pl.col("end") >= ws)) | (pl.col("rejected") & req_date.is_between(ws, we))).alias("_keep"),
    )[narrow["_row"]]], how="horizontal")
    gm = narrow["_gm"].to_numpy()
    given = narrow["_given"].to_numpy()
    counts = np.cumsum(given, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, gm[1:] != gm[:-1]]) if len(gm) else np.zeros(0, dtype=np.int64)
    group = np.cumsum(np.r_[True, gm[1:] != gm[:-1]]) - 1 if len(gm) else np.zeros(0, dtype=np.int64)
    counts -= (counts[starts] - given[starts])[group]   # count within the gemeente
    keep = narrow["_keep"].to_numpy()
    df = df[narrow["_row"].to_numpy()[keep]].with_columns(
        pl.when(pl.Series(given[keep])).then(pl.Series(_TW_SEQ_BASE + counts[keep])).alias("_tw_seq")
    )
    lo, hi = TOEWIJZING_NUMMER_RANGE
    seq = df["_tw_seq"]
    has = seq.is_not_null().to_numpy()
    nummer = np.zeros(df.height, dtype=np.int64)
    nummer[has] = lo + opaque_number(seed, D_TOEWIJZING, seq.drop_nulls().to_numpy() - _TW_SEQ_BASE - 1,
                                     df["gemeente_code"].cast(pl.Int64).to_numpy()[has], size=hi - lo)
    # The ReferentieAanbieder a JW315 of this trajectory would carry: a keyed bijection of the traject id.
    ref = opaque_code(opaque_number(seed, D_VERZOEK, df["_traject_key"].to_numpy(), size=10 ** REFERENTIE_AANBIEDER[1]),
                      REFERENTIE_AANBIEDER)
    return df.with_columns(
        pl.when(pl.col("_tw_seq").is_not_null()).then(pl.Series(nummer)).alias("toewijzing_nummer"),
        ref.alias("_ref_aanbieder"),
    ).drop("_traject_key")


def simulate_gemeenten(seed: int, scale: float, codes: list[str], first_year: int, last_year: int) -> pl.DataFrame:
    """The trajectories of the gemeenten `codes` that touch the years asked for (internal columns).

    The simulation runs from the epoch so that long-running care is in the stock; toewijzing numbers are given in
    order of start over that whole history, then everything that ended before `first_year` is dropped. Every
    gemeente's rows are the same whichever other gemeenten are in `codes` (it only batches the frame work).
    """
    regios: dict[str, list[str]] = {}
    for c in codes:
        regios.setdefault(_gemeente(c)["inkoopregio"], []).append(c)
    frames = [_simulate_region(seed, scale, r, cs, first_year, last_year) for r, cs in regios.items()]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def simulate_gemeente(seed: int, scale: float, code: str, first_year: int, last_year: int) -> pl.DataFrame:
    """The trajectories of one gemeente that touch the years asked for (internal columns)."""
    return simulate_gemeenten(seed, scale, [code], first_year, last_year)
