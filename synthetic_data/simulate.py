"""The simulation: care trajectories per gemeente, month by month from the epoch to the last requested year.

One numpy Generator per (seed, gemeente, year) partition draws that year's starts; a separate stream per
(seed, gemeente, year) draws the youth who move to another gemeente of the same inkoopregio, so the receiving
gemeente can recompute its incoming youth without simulating the origin. Everything else is derived.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .model import DAYS_PER_MONTH, model, products_by_hulpvorm
from .people import FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR, birth_dates, cohort_sizes
from .providers import aanbieder_choice
from .reference import calibration, care_model, gemeenten_all, producten_catalogus

_EPOCH = np.datetime64("1970-01-01", "D")
_MOVE_STREAM = 7
_FOLLOW_UP_TAG = 3


def _day(date: str) -> int:
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


@cache
def _gemeente(code: str) -> dict:
    g = gemeenten_all().filter(pl.col("gemeente_code") == code).row(0, named=True)
    c = cohort_sizes().filter(pl.col("gemeente_code") == code).row(0, named=True)
    return {**g, "cohort_size": c["cohort_size"], "youth": g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]}


def _new_persons(rng, seed: int, gm: dict, scale: float, begin: np.ndarray):
    """Draw fresh persons of the gemeente's pool for starts at `begin`: age band, age, sex, then the person index."""
    m = model()
    n = len(begin)
    band = rng.choice(len(m.age_p), n, p=m.age_p)
    lo = np.array([b[0] for b in m.age_bands])[band]
    hi = np.array([b[1] for b in m.age_bands])[band]
    age_days = ((lo + rng.random(n) * (hi - lo)) * 365.25).astype(np.int64)
    girl = rng.random(n) >= m.boy_p[band]
    size = gm["cohort_size"]
    scaled = max(2, int(size * scale) // 2 * 2)
    k = rng.integers(0, scaled // 2, n) * 2 + girl
    year = (begin - age_days).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    origin = np.full(n, int(gm["gemeente_code"]))
    sizes = np.full(n, size)
    for _ in range(2):  # the birthday comes from the person's hash: step back a cohort if it falls after the start
        year = year.clip(FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR)
        person = (year - FIRST_BIRTH_YEAR) * size + k
        birth = (birth_dates(seed, origin, person, sizes) - _EPOCH).astype(np.int64)
        year = np.where(birth > begin, year - 1, year)
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
            codes.append((np.array([spec["code"]]), np.array([1.0])))
        else:
            c = spec["codes"]
            codes.append((np.array(list(c)), np.array(list(c.values())) / sum(c.values())))
        voortijdig.append(spec["voortijdig"])
    return m.einde, codes, np.array(voortijdig)


def _end_reasons(rng, n: int, no_switch: bool = False):
    """Draw the CBS end category and the JW307 reden_beeindiging code."""
    cats, codes, _ = _einde_codes()
    m = model()
    c = rng.choice(len(cats), n, p=m.einde_p)
    reden = np.empty(n, dtype=object)
    for i, (vals, p) in enumerate(codes):
        sel = np.nonzero(c == i)[0]
        if len(sel):
            reden[sel] = vals[rng.choice(len(vals), len(sel), p=p)]
    if no_switch:   # a follow-up trajectory does not switch again
        reden[reden == "38"] = "31"
    return c, reden


def _care(rng, seed: int, regio: str, n: int, cells: np.ndarray):
    """Product and aanbieder for each start, given its (hulpvorm, verwijzer) cell."""
    m = model()
    hv = cells // len(m.verwijzers)
    product = np.full(n, -1, dtype=np.int64)
    aanbieder = np.full(n, -1, dtype=np.int64)
    prods = products_by_hulpvorm()
    choice = aanbieder_choice(seed, regio)
    for h_i, h in enumerate(m.hulpvormen):     # fixed order keeps the stream deterministic
        sel = np.nonzero(hv == h_i)[0]
        if not len(sel):
            continue
        if h in prods:
            idx, p = prods[h]
            product[sel] = idx[rng.choice(len(idx), len(sel), p=p)]
        if h in choice:
            idx, p = choice[h]
            aanbieder[sel] = idx[rng.choice(len(idx), len(sel), p=p)]
    return product, aanbieder


def _message_params(rng, n: int, product: np.ndarray) -> dict:
    """Per-trajectory draws that the message tables need (lead times, delays, toegewezen volume)."""
    p = model().params
    cat = producten_catalogus()
    vmin = np.append(cat["volume_min"].to_numpy(), 1)[product]   # index -1 -> the appended dummy
    vmax = np.append(cat["volume_max"].to_numpy(), 1)[product]
    return {
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


def _planned_end(rng, end: np.ndarray, reden_cat: np.ndarray) -> np.ndarray:
    _, _, voortijdig = _einde_codes()
    lo, hi = model().params["planned_overrun_months"]
    overrun = (rng.integers(lo, hi + 1, len(end)) * DAYS_PER_MONTH).astype(np.int64)
    return np.where(voortijdig[reden_cat], end + overrun, end)


def _frame(cols: dict) -> pl.DataFrame:
    return pl.DataFrame(cols).with_columns(pl.col("einde_cat").cast(pl.Int64))


def _year_starts(seed: int, scale: float, gm: dict, year: int, history: list[pl.DataFrame]):
    """All starts of one (gemeente, year) partition, with their follow-ups after a provider switch."""
    m, p = model(), model().params
    code = gm["gemeente_code"]
    rng = _rng(seed, int(code), year)
    season = np.array(p["seasonality"]) / np.mean(p["seasonality"])
    lam = m.starts_per_youth * gm["youth"] * scale / 12 * season
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
    person, birth, girl = _new_persons(rng, seed, gm, scale, begin)
    origin = np.full(n, code, dtype=object)
    oorsprong = np.full(n, "nieuw", dtype=object)

    # Repeat users: a youth under 18 who had care here in the recent past.
    hist = pl.concat(history) if history else None
    rep = np.nonzero(is_repeat)[0]
    if hist is not None and hist.height and len(rep):
        jan1 = _day(f"{year}-01-01")
        cand = hist.filter(
            (pl.col("begin") >= jan1 - int(p["repeat_recent_months"] * DAYS_PER_MONTH))
            & (pl.col("birth") > jan1 - int(18 * 365.25))
        )
        if cand.height:
            pick = rng.integers(0, cand.height, len(rep))
            person[rep] = cand["person_index"].to_numpy()[pick]
            birth[rep] = cand["birth"].to_numpy()[pick]
            girl[rep] = cand["girl"].to_numpy()[pick]
            origin[rep] = cand["origin_code"].to_numpy()[pick]
            oorsprong[rep] = "herhaald"
            # a repeat start cannot lie before the youth's birth (only possible with tiny pools)
            begin[rep] = np.maximum(begin[rep], birth[rep] + 1)
    # Companions: a second trajectory next to a new one, same youth and start date.
    comp = np.nonzero(is_companion)[0]
    fresh = np.nonzero(oorsprong == "nieuw")[0]
    fresh = fresh[~np.isin(fresh, comp)]
    if len(comp) and len(fresh):
        host = fresh[rng.integers(0, len(fresh), len(comp))]
        for arr in (person, birth, girl, origin, begin):
            arr[comp] = arr[host]
        oorsprong[comp] = "gelijktijdig"

    product, aanbieder = _care(rng, seed, gm["inkoopregio"], n, cells)
    duration = _durations(rng, cells)
    end = begin + duration - 1
    cat, reden = _end_reasons(rng, n)
    planned = _planned_end(rng, end, cat)
    age_at_begin = (begin - birth) / 365.25
    reject_p = np.where(age_at_begin >= 18, p["request_reject_share_18plus"], p["request_reject_share"])
    is_jw315 = np.array([m.path[v] == "jw315" for v in range(len(m.verwijzers))])[cells % len(m.verwijzers)]
    rejected = is_jw315 & (rng.random(n) < reject_p) & (oorsprong != "gelijktijdig")
    reden_afwijzing = np.where(
        age_at_begin >= 18, "9", np.array(["7", "4", "6", "3"])[rng.choice(4, n, p=[0.5, 0.2, 0.15, 0.15])]
    )
    params = _message_params(rng, n, product)
    seq = np.arange(n)
    main = _frame({
        "traject_id": [f"{code}-{year}-{s:06d}" for s in seq],
        "gemeente_code": code, "origin_code": origin.astype(str), "person_index": person, "birth": birth,
        "girl": girl, "cell": cells, "product": product, "aanbieder": aanbieder, "begin": begin, "end": end,
        "planned_end": planned, "einde_cat": cat, "reden_beeindiging": reden.astype(str),
        "oorsprong": oorsprong.astype(str), "rejected": rejected, "reden_afwijzing": reden_afwijzing, **params,
    })

    # Provider switch (reden 38): care goes on at another aanbieder from the next day.
    sw = np.nonzero((reden == "38") & ~rejected)[0]
    frames = [main]
    if len(sw):
        k = len(sw)
        f_rng = _rng(seed, int(code), year, _FOLLOW_UP_TAG)
        _, new_aanbieder = _care(f_rng, seed, gm["inkoopregio"], k, cells[sw])
        same = new_aanbieder == aanbieder[sw]
        choice = aanbieder_choice(seed, gm["inkoopregio"])
        for i in np.nonzero(same)[0]:   # few rows: move to the next provider of the same care form
            idx = choice.get(m.hulpvormen[cells[sw][i] // len(m.verwijzers)], (np.array([]),))[0]
            if len(idx) > 1:
                new_aanbieder[i] = idx[(np.searchsorted(idx, new_aanbieder[i]) + 1) % len(idx)]
        f_begin = end[sw] + 1
        f_end = f_begin + _durations(f_rng, cells[sw]) - 1
        f_cat, f_reden = _end_reasons(f_rng, k, no_switch=True)
        frames.append(_frame({
            "traject_id": [f"{code}-{year}-{s:06d}-S" for s in sw],
            "gemeente_code": code, "origin_code": origin[sw].astype(str), "person_index": person[sw],
            "birth": birth[sw], "girl": girl[sw], "cell": cells[sw], "product": product[sw],
            "aanbieder": new_aanbieder, "begin": f_begin, "end": f_end,
            "planned_end": _planned_end(f_rng, f_end, f_cat), "einde_cat": f_cat,
            "reden_beeindiging": f_reden.astype(str), "oorsprong": "overstap", "rejected": False,
            "reden_afwijzing": "", **_message_params(f_rng, k, product[sw]),
        }))
    return pl.concat(frames)


@cache
def move_stream(seed: int, scale: float, origin: str, year: int) -> pl.DataFrame:
    """Youth in care who move from `origin` to another gemeente of its inkoopregio during `year`.

    Each row holds both halves: the trajectory that ends at the move in the origin and the one that starts the next
    day in the destination. Any partition can recompute it from (seed, origin, year) alone.
    """
    m, p = model(), model().params
    gm = _gemeente(origin)
    peers = gemeenten_all().filter(
        (pl.col("inkoopregio") == gm["inkoopregio"]) & (pl.col("gemeente_code") != origin)
    )
    if peers.height == 0:
        return pl.DataFrame()
    rng = _rng(seed, int(origin), year, _MOVE_STREAM)
    prevalence = calibration()["prevalence_lt23"]["value"]
    n = int(rng.poisson(p["move_share_per_year"] * prevalence * gm["youth"] * scale))
    if n == 0:
        return pl.DataFrame()
    w = (peers["jeugd_0_14"] + peers["jeugd_15_19"]).to_numpy().astype(float)
    dest = peers["gemeente_code"].to_numpy()[rng.choice(len(w), n, p=w / w.sum())]
    jan1 = _day(f"{year}-01-01")
    ndays = _day(f"{year + 1}-01-01") - jan1
    move = jan1 + rng.integers(0, ndays, n)
    begin = move - rng.integers(30, 366, n)
    # Only care that travels as iJw (the destination takes over a toewijzing) is modelled as moving.
    ijw = np.array([m.in_ijw_hulpvorm[c // len(m.verwijzers)] and m.path[c % len(m.verwijzers)] != "none"
                    for c in range(len(m.joint))])
    pj = np.where(ijw, m.joint, 0.0)
    cells = rng.choice(len(pj), n, p=pj / pj.sum())
    person, birth, girl = _new_persons(rng, seed, gm, scale, begin)
    product, aanbieder = _care(rng, seed, gm["inkoopregio"], n, cells)
    o_params = _message_params(rng, n, product)
    d_end = move + _durations(rng, cells)   # the destination trajectory starts at move + 1
    d_cat, d_reden = _end_reasons(rng, n, no_switch=True)
    d_planned = _planned_end(rng, d_end, d_cat)
    d_params = _message_params(rng, n, product)
    lo, hi = p["planned_overrun_months"]
    o_planned = move + (rng.integers(lo, hi + 1, n) * DAYS_PER_MONTH).astype(np.int64)
    seq = np.arange(n)
    common = {"origin_code": origin, "person_index": person, "birth": birth, "girl": girl, "product": product,
              "aanbieder": aanbieder, "rejected": False, "reden_afwijzing": ""}
    out = _frame({
        "traject_id": [f"{origin}-{year}-M{s:05d}" for s in seq], "gemeente_code": origin, **common,
        "cell": cells, "begin": begin, "end": move, "planned_end": o_planned, "einde_cat": np.full(n, -1, dtype=np.int64),
        "reden_beeindiging": "35", "oorsprong": "nieuw", "dest": dest, **o_params,
    })
    dest_half = _frame({
        "traject_id": [f"{d}-{year}-V{origin}{s:05d}" for d, s in zip(dest, seq)], "gemeente_code": dest, **common,
        "cell": cells, "begin": move + 1, "end": d_end, "planned_end": d_planned, "einde_cat": d_cat,
        "reden_beeindiging": d_reden.astype(str), "oorsprong": "verhuizing", "dest": dest, **d_params,
    })
    return pl.concat([out.with_columns(pl.lit("origin").alias("half")), dest_half.with_columns(pl.lit("dest").alias("half"))])


def simulate_gemeente(seed: int, scale: float, code: str, last_year: int) -> pl.DataFrame:
    """Every trajectory of one gemeente that started from the epoch up to the end of `last_year` (internal columns)."""
    p = model().params
    gm = _gemeente(code)
    history: list[pl.DataFrame] = []
    frames = []
    for year in range(p["epoch_year"], last_year + 1):
        starts = _year_starts(seed, scale, gm, year, history[-2:])
        frames.append(starts)
        history.append(starts.filter(~pl.col("rejected")).select("origin_code", "person_index", "birth", "girl", "begin"))
    own = pl.concat(frames).with_columns(pl.lit(None, dtype=pl.String).alias("dest"))
    peers = gemeenten_all().filter(pl.col("inkoopregio") == gm["inkoopregio"])["gemeente_code"].to_list()
    moves = []
    for year in range(p["epoch_year"], last_year + 1):
        for origin in peers:
            s = move_stream(seed, scale, origin, year)
            if s.height:
                moves.append(s.filter(
                    ((pl.col("half") == "origin") & (pl.col("origin_code") == code))
                    | ((pl.col("half") == "dest") & (pl.col("dest") == code))
                ).drop("half"))
    df = pl.concat([own, *moves], how="diagonal_relaxed") if moves else own
    window_end = _day(f"{last_year}-12-31")
    return df.filter(pl.col("begin") <= window_end)
