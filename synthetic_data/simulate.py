"""The simulation: care trajectories per gemeente, month by month from the epoch to the last requested year.

One numpy Generator per (seed, gemeente, year) partition draws that year's starts; a separate stream per
(seed, gemeente, year) draws the youth who move to another gemeente of the same inkoopregio, so the receiving
gemeente can recompute its incoming youth without simulating the origin. Everything else is derived.

Each stream draws its row count and then one block of named per-row draws (`_Draws`), so a year of all gemeenten of
an inkoopregio runs as one vectorised pass while every partition's rows depend on its own streams only.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from . import decisions, domains
from .dictionary import pack
from .model import DAYS_PER_MONTH, model
from .people import FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR, birth_days, cohort_sizes
from .privacy import D_TOEWIJZING, D_VERZOEK, REFERENTIE_AANBIEDER, TOEWIJZING_NUMMER_RANGE, opaque_code, opaque_number
from .providers import region_index
from .reference import calibration, care_model, gemeenten_all, prevalence_factors, producten_catalogus

_EPOCH = np.datetime64("1970-01-01", "D")
_MOVE_STREAM = 7
_TW_SEQ_BASE = 1_000_000     # `_tw_seq` counts from 1_000_001 (the per-line hashes are keyed by it)


def _day(date: str) -> int:
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def _rng(*key: int) -> np.random.Generator:
    """The stream of a partition: numpy's default_rng(SeedSequence(key)) (PCG64)."""
    key = [int(k) for k in key]
    # SeedSequence reads a list of ints < 2**32 as one uint32 word each, as it reads a uint32 array; the array is
    # coerced without a Python loop (half the cost of a stream, thousands of streams per run)
    entropy = np.array(key, dtype=np.uint32) if all(0 <= k < 1 << 32 for k in key) else key
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


class _Draws:
    """The per-row draws of a batch of partitions, by name.

    Each partition's stream draws, after its row count, one block of uniforms (a row per named quantity) and one of
    standard normals for its n rows, whatever the data; the batch concatenates the blocks. So a row's draws depend on
    its own partition and the quantity's name only, never on the other partitions in the batch or on which branch
    other rows take: the simulation runs as one vectorised pass over all gemeenten of an inkoopregio and year while
    every partition stays independent (numpy calls per partition cost more than their draws at a few hundred rows).
    """

    def __init__(self, u_layout: dict[str, int], z_layout: dict[str, int], u: np.ndarray, z: np.ndarray):
        self._u, self._z, self.U, self.Z = u_layout, z_layout, u, z

    @staticmethod
    def layout(sizes: dict[str, int]) -> dict[str, slice]:
        out, i = {}, 0
        for name, k in sizes.items():
            out[name] = slice(i, i + k)
            i += k
        return out

    @classmethod
    def draw(cls, rngs_n: list[tuple[np.random.Generator, int]], u_layout: dict[str, slice],
             z_layout: dict[str, slice]) -> "_Draws":
        nu = max((s.stop for s in u_layout.values()), default=0)
        nz = max((s.stop for s in z_layout.values()), default=0)
        us = [rng.random((nu, n)) for rng, n in rngs_n] or [np.zeros((nu, 0))]
        zs = [rng.standard_normal((nz, n)) for rng, n in rngs_n] or [np.zeros((nz, 0))]
        return cls(u_layout, z_layout, np.concatenate(us, axis=1), np.concatenate(zs, axis=1))

    def u(self, name: str) -> np.ndarray:
        s = self._u[name]
        return self.U[s.start] if s.stop - s.start == 1 else self.U[s]

    def z(self, name: str) -> np.ndarray:
        return self.Z[self._z[name]]

    def take(self, rows: np.ndarray) -> "_Draws":
        return _Draws(self._u, self._z, self.U[:, rows], self.Z[:, rows])


def _pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index per uniform into a normalised cumulative distribution (numpy's choice: searchsorted right)."""
    return np.minimum(cdf.searchsorted(u, side="right"), len(cdf) - 1)


def cdf_of(p: np.ndarray) -> np.ndarray:
    """The cumulative distribution of weights `p`, normalised by its last value (as numpy's choice builds it)."""
    c = np.cumsum(p)
    return c / c[-1]


def running_max(values: np.ndarray, new_group: np.ndarray) -> np.ndarray:
    """The running maximum of `values` (|v| < 2**30) restarting where `new_group` is True, on rows sorted by group:
    one numpy pass (a window expression evaluates per group, ten to a hundred times slower on these tables)."""
    group = np.cumsum(new_group, dtype=np.int64)
    assert len(values) == 0 or np.abs(values).max() < 1 << 30
    return np.maximum.accumulate(values + (group << 31)) - (group << 31)


@cache
def _cdf(key: str) -> np.ndarray:
    m = model()
    p = {"joint": m.joint, "duration": m.duration_p, "duration_verblijf": m.duration_p_verblijf,
         "einde": m.einde_p, "ijw_cells": _ijw_cells_p()}[key]
    c = cdf_of(p)
    c.flags.writeable = False
    return c


@cache
def _choice_cdfs(seed: int, regio: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """domains.all_choices with each probability vector as a normalised cdf (once per process and region)."""
    return {k: (idx, cdf_of(p)) for k, (idx, p) in domains.all_choices(seed, regio).items()}


@cache
def _age_band_bounds() -> tuple[np.ndarray, np.ndarray]:
    bands = model().age_bands
    return np.array([b[0] for b in bands]), np.array([b[1] for b in bands])


@cache
def _gemeenten() -> dict[str, dict]:
    """Per gemeente code: its row of gemeenten_all with its cohort size and youth 0-22 (one pass over the table, not
    a filter per gemeente)."""
    size = dict(cohort_sizes().select("gemeente_code", "cohort_size").iter_rows())
    return {g["gemeente_code"]: {**g, "cohort_size": size[g["gemeente_code"]],
                                 "youth": g["jeugd_0_14"] + g["jeugd_15_19"] + g["jeugd_20_22"]}
            for g in gemeenten_all().iter_rows(named=True)}


def _gemeente(code: str) -> dict:
    return _gemeenten()[code]


_PERSON_U = {"band": 1, "age": 1, "sex": 1, "kidx": 1}


def _new_persons(d: _Draws, seed: int, origin: np.ndarray, size: np.ndarray, scale: float, begin: np.ndarray,
                 band_p: np.ndarray, boy_p: np.ndarray | None = None):
    """Draw fresh persons of each row's gemeente pool (`origin`, its cohort `size`) for starts at `begin`: age band
    from the row's own band distribution (`band_p`, rows x bands: the band given the care form, issue 12), age, sex
    (`boy_p` per row, else the CBS share of the band), then the person index."""
    m = model()
    cdf = np.cumsum(band_p, 1)
    band = np.minimum((cdf < d.u("band")[:, None] * cdf[:, -1:]).sum(1), len(m.age_p) - 1)
    band_lo, band_hi = _age_band_bounds()
    lo = band_lo[band]
    # The birthday comes from the person's hash and can add up to a year: draw the oldest band below 22 so nobody
    # starts care at 23 or older (the Jeugdwet ends there).
    hi = np.minimum(band_hi[band], 22)
    age_days = ((lo + d.u("age") * (hi - lo)) * 365.25).astype(np.int64)
    girl = d.u("sex") >= (m.boy_p[band] if boy_p is None else boy_p)
    scaled = np.maximum(2, (size * scale).astype(np.int64) // 2 * 2)
    k = (d.u("kidx") * (scaled // 2)).astype(np.int64) * 2 + girl
    year = (begin - age_days).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    year = year.clip(FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR)
    person = (year - FIRST_BIRTH_YEAR) * size + k
    birth = birth_days(seed, origin, person, size)
    # the birthday comes from the person's hash: step back a cohort where it falls after the start
    late = np.nonzero(birth > begin)[0]
    if len(late):
        person[late] = ((year[late] - 1).clip(FIRST_BIRTH_YEAR, LAST_BIRTH_YEAR) - FIRST_BIRTH_YEAR) * size[late] + k[late]
        birth[late] = birth_days(seed, origin[late], person[late], size[late])
    return person, birth, girl.astype(bool)


def _durations(d: _Draws, p: str, cells: np.ndarray) -> np.ndarray:
    """Duration in days from the CBS bins (uniform within a bin); residential care from its own, longer bins."""
    m = model()
    verblijf = m.verblijf_hulpvorm[cells // len(m.verwijzers)]
    u = d.u(p + "dur_bin")
    b = np.where(verblijf, _pick(_cdf("duration_verblijf"), u), _pick(_cdf("duration"), u))
    lo, hi = m.duration_bins[b, 0], m.duration_bins[b, 1]
    return np.maximum(1, ((lo + d.u(p + "dur") * (hi - lo)) * DAYS_PER_MONTH).round().astype(np.int64))


@cache
def _einde_codes() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The CBS end categories, per category the JW307 codes and their cdf (padded to one width), and voortijdig."""
    cm = care_model()["einde_redenen"]
    m = model()
    codes, voortijdig = [], []
    for cat in m.einde:
        spec = cm[cat]
        if "code" in spec:
            codes.append(({int(spec["code"]): 1.0}))
        else:
            codes.append({int(k): float(v) for k, v in spec["codes"].items()})
        voortijdig.append(spec["voortijdig"])
    width = max(len(c) for c in codes)
    vals = np.zeros((len(codes), width), dtype=np.int64)
    cdf = np.ones((len(codes), width))
    for i, c in enumerate(codes):
        vals[i, :len(c)] = list(c)
        vals[i, len(c):] = vals[i, len(c) - 1]
        cdf[i, :len(c)] = np.cumsum(list(c.values())) / sum(c.values())
    return m.einde, vals, cdf, np.array(voortijdig)


_END_U = {"einde": 1, "einde_code": 1}


def _end_reasons(d: _Draws, p: str, no_switch: bool = False):
    """Draw the CBS end category and the JW307 reden_beeindiging code."""
    _, vals, cdf, _ = _einde_codes()
    c = _pick(_cdf("einde"), d.u(p + "einde"))
    j = np.minimum((cdf[c] <= d.u(p + "einde_code")[:, None]).sum(1), vals.shape[1] - 1)
    reden = vals[c, j]
    if no_switch:   # a follow-up trajectory does not switch again
        reden[reden == 38] = 31
    return c, reden


def _by_hulpvorm(cells: np.ndarray):
    """(hulpvorm, row positions) for each hulpvorm of the model with rows among `cells`, in the model's order."""
    m = model()
    hv = cells // len(m.verwijzers)
    for h_i, h in enumerate(m.hulpvormen):
        sel = np.nonzero(hv == h_i)[0]
        if len(sel):
            yield h, sel


def _products(d: _Draws, p: str, cells: np.ndarray, age: np.ndarray, girl: np.ndarray) -> np.ndarray:
    """Product per start given its (hulpvorm, verwijzer) cell, age in years and sex (issue 12: domains.draw_products)."""
    product = np.full(len(cells), -1, dtype=np.int64)
    u = d.u(p + "product")
    for h, sel in _by_hulpvorm(cells):
        if h in domains.product_weights():
            product[sel] = domains.draw_products(u[sel], h, age[sel], girl[sel])
    return product


def _aanbieders(d: _Draws, p: str, choice: dict, cells: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Aanbieder per start from the region's choice for its care form; landelijk ingekochte zorg (55) goes to a
    national aanbieder."""
    aanbieder = np.full(len(cells), -1, dtype=np.int64)
    u = d.u(p + "aanbieder")
    for h, sel in _by_hulpvorm(cells):
        if h in choice:
            idx, cdf = choice[h]
            aanbieder[sel] = idx[_pick(cdf, u[sel])]
    lta = np.nonzero(domains.is_category(product, domains.LANDELIJK))[0]
    if len(lta):
        idx, cdf = choice["landelijk"]
        aanbieder[lta] = idx[_pick(cdf, d.u(p + "lta")[lta])]
    return aanbieder


@cache
def _wait_specs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per catalogue product (and the dummy index -1): zero share, median, p90 and max of the waiting time."""
    w = care_model()["timing"]["wachttijd_dagen"]
    cats = producten_catalogus()["product_categorie"].to_list() + [None]
    specs = [w.get(c, w["default"]) for c in cats]
    return tuple(np.array([s[k] for s in specs], dtype=float) for k in ("zero_share", "median", "p90", "max"))


@cache
def _product_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per catalogue product (and the dummy index -1, appended): volume_min, volume_max, and whether the toegewezen
    volume gets headroom. Built once per process."""
    cat = producten_catalogus()
    vmin = np.append(cat["volume_min"].to_numpy(), 1)
    vmax = np.append(cat["volume_max"].to_numpy(), 1)
    eenheid = np.append(cat["eenheid"].to_numpy(), "14")
    frequentie = np.append(cat["frequentie"].to_numpy(), "4")
    # The gemeente assigns more hours than the expected use (headroom); etmaal and arrangement counts stay as they
    # are, and a totaal is a package, assigned as needed.
    room = ~np.isin(eenheid, ["14", "82"]) & (frequentie != "6")
    for a in (vmin, vmax, room):
        a.flags.writeable = False
    return vmin, vmax, room


def _tail_of(z: np.ndarray, spec: dict) -> np.ndarray:
    """Lognormal values with the given median and p90 from standard normal draws, rounded, capped at max (>= 1)."""
    sigma = np.log(spec["p90"] / spec["median"]) / 1.2816
    return np.clip(np.round(spec["median"] * np.exp(sigma * z)), 1, spec["max"]).astype(np.int64)


def _uniform_ints(u: np.ndarray, lo, hi) -> np.ndarray:
    """Integers uniform in [lo, hi] (both included) from uniforms [0, 1)."""
    return (u * (np.asarray(hi) - lo + 1)).astype(np.int64) + lo


_N_UNIFORM, _N_NORMAL = 23, 6   # draws per trajectory of _message_params


def _message_params(d: _Draws, p: str, product: np.ndarray) -> dict:
    """Per-trajectory draws that the message tables need (lead times, delays, waiting time, toegewezen volume)."""
    pm = model().params
    tm = care_model()["timing"]
    vmin_all, vmax_all, room_all = _product_arrays()
    u, z = d.u(p + "msg"), d.z(p + "msg")
    out = {
        "_req_lead": _uniform_ints(u[0], 15, 40),
        "_ans_delay": _uniform_ints(u[1], *pm["answer_werkdagen"]),
        "_onderzoek": u[2] < pm["request_in_onderzoek_share"],
        "_onderzoek_delay": _uniform_ints(u[3], 1, 5),
        "_tw_lead": _uniform_ints(u[4], 0, 10),
        "_tw_time": _uniform_ints(u[5], 8 * 3600, 17 * 3600 - 1),
        "_start_delay": _uniform_ints(u[6], *pm["start_message_werkdagen"]),
        "_stop_delay": _uniform_ints(u[7], *pm["stop_message_werkdagen"]),
        "_ext_lead": _uniform_ints(u[8], 5, 25),
        "_shorten_delay": _uniform_ints(u[9], 1, 10),
        "_vol": _uniform_ints(u[10], vmin_all[product], vmax_all[product]),   # index -1 -> the appended dummy
    }
    # --- issue 12: timing. Late messages (beyond the 5 werkdagen of OP271/OP272/OP274), a long tail.
    for j, (key, share, spec) in enumerate((("_start_delay", "start_late_share", "message_late_werkdagen"),
                                            ("_stop_delay", "stop_late_share", "message_late_werkdagen"),
                                            ("_ans_delay", "answer_late_share", "answer_late_werkdagen"))):
        out[key] = np.where(u[11 + j] < tm[share], 5 + _tail_of(z[j], tm[spec]), out[key])
    # Waiting time from the toewijzing Ingangsdatum to the first day of care; the JW315 comes before the Ingangsdatum.
    zero, med, p90, mx = (a[product] for a in _wait_specs())
    sigma = np.log(p90 / med) / 1.2816
    wait = np.minimum(np.round(med * np.exp(sigma * z[3])), mx).astype(np.int64)
    out["_wait"] = np.where(u[14] < zero, 0, wait)
    out["_req_lead"] = out["_req_lead"] + out["_wait"]
    # The gemeente assigns more hours than the expected use (headroom, see _product_arrays).
    room = room_all[product]
    out["_vol"] = np.where(room, np.ceil(out["_vol"] * tm["toegewezen_ruimte"]), out["_vol"]).astype(np.int64)
    # Backdating (the share depends on the path, applied in messages.toewijzingen), a stop past the first plan, the
    # gemeente's choice to shorten after an early stop, and a toewijzing withdrawn before care (reden 13).
    out.update({
        "_bd_u": u[15], "_bd_lag": _tail_of(z[4], tm["backdate_days"]),
        "_ext_u": u[16], "_ext_lag": _tail_of(z[5], tm["backdate_days"]),
        "_later": u[17] < tm["plan_later_share"], "_later_days": _uniform_ints(u[18], *tm["plan_later_days"]),
        "_shorten": u[19] < tm["shorten_share"],
        "_deleted": u[20] < pm["deleted_toewijzing_share"], "_del_days": _uniform_ints(u[21], 1, 10),
        "_del_shift": _uniform_ints(u[22], 7, 30),
    })
    return out


_PLAN_U = {"overrun": 1, "earlier": 1, "earlier_days": 1}


def _planned_end(d: _Draws, p: str, end: np.ndarray, reden_cat: np.ndarray) -> np.ndarray:
    _, _, _, voortijdig = _einde_codes()
    lo, hi = model().params["planned_overrun_months"]
    overrun = (_uniform_ints(d.u(p + "overrun"), lo, hi) * DAYS_PER_MONTH).astype(np.int64)
    # --- issue 12: timing. Care "volgens plan" sometimes ends a little before the planned Einddatum.
    tm = care_model()["timing"]
    elo, ehi = tm["plan_earlier_days"]
    earlier = np.where(d.u(p + "earlier") < tm["plan_earlier_share"], _uniform_ints(d.u(p + "earlier_days"), elo, ehi), 0)
    return np.where(voortijdig[reden_cat], end + overrun, end + earlier)


def _traject_key(gemeente, year, kind, origin, seq) -> np.ndarray:
    """The traject_id as one integer, unique per trajectory (kind 0 own start, 1 follow-up, 2 move out, 3 move in,
    `origin` the gemeente moved from, else 0): the internal key of its request's ReferentieAanbieder."""
    year, seq = np.asarray(year, dtype=np.int64), np.asarray(seq, dtype=np.int64)
    assert ((year >= 2000) & (year < 2100)).all() and ((seq >= 0) & (seq < 1_000_000)).all()
    return (((np.asarray(gemeente, dtype=np.int64) * 100 + year - 2000) * 4 + kind) * 10_000 + origin) * 1_000_000 + seq


OORSPRONG = ["nieuw", "herhaald", "gelijktijdig", "overstap", "verhuizing"]


@cache
def _months_of(year: int) -> tuple[np.ndarray, np.ndarray]:
    """The first day (days since the epoch) and the length of each month of `year`."""
    first = np.array([f"{year}-{mo + 1:02d}-01" for mo in range(12)], dtype="datetime64[D]")
    dim = (np.append(first[1:], np.datetime64(f"{year + 1}-01-01")) - first).astype(np.int64)
    return (first - _EPOCH).astype(np.int64), dim


def _rank_in(part: np.ndarray, n_parts: int) -> np.ndarray:
    """Position of each row within its partition, for rows ordered by partition."""
    counts = np.bincount(part, minlength=n_parts)
    return np.arange(len(part)) - np.repeat(np.cumsum(counts) - counts, counts)


# The named draws per start of a (gemeente, year) stream (_Draws): the start, the person, the care, its end and
# messages, the decision, and the same again for the follow-up after a provider switch ("f_").
_ONE_U = {"dur_bin": 1, "dur": 1, **_END_U, **_PLAN_U, "msg": _N_UNIFORM, "decide": 3, "aanbieder": 1, "lta": 1}
_START_U = _Draws.layout({"begin": 1, "cell": 1, "role": 1, **_PERSON_U, "repeat": 1, "host": 1, "product": 1,
                          **_ONE_U, **{"f_" + k: v for k, v in _ONE_U.items()}})
_START_Z = _Draws.layout({"msg": _N_NORMAL, "f_msg": _N_NORMAL})


def _year_starts(seed: int, scale: float, gms: list[dict], year: int, hist: dict | None) -> list[dict[str, np.ndarray]]:
    """All starts of the (gemeente, year) partitions of `gms` (one inkoopregio), with their follow-ups after a
    provider switch, as one batch: draws per partition stream (_Draws), everything else over the batch, grouped by
    partition (`part`, the index into `gms`) where rows of one partition interact.

    Returns chunks of plain numpy columns (codes as integers), all with the same columns: the starts, the JB/JR
    trajectories, the follow-ups (joined only where needed); `hist` holds the recent starts (candidates for repeat
    use), its rows ordered by partition.
    """
    m, pm = model(), model().params
    nv = len(m.verwijzers)
    regio = gms[0]["inkoopregio"]
    season = np.array(pm["seasonality"]) / np.mean(pm["seasonality"])
    rngs, months = [], []
    for gm in gms:
        rng = _rng(seed, int(gm["gemeente_code"]), year)
        # issue 12: the gemeente's relative prevalence (CBS spread; mean 1 in every inkoopregio)
        lam = m.starts_per_youth * gm["youth"] * prevalence_factors()[gm["gemeente_code"]] * scale / 12 * season
        per_month = rng.poisson(lam)
        months.append(np.repeat(np.arange(12), per_month))
        rngs.append((rng, int(per_month.sum())))
    d = _Draws.draw(rngs, _START_U, _START_Z)
    g = len(gms)
    part = np.repeat(np.arange(g), [n for _, n in rngs])
    n = len(part)
    codes = np.array([int(gm["gemeente_code"]) for gm in gms], dtype=np.int64)
    sizes = np.array([gm["cohort_size"] for gm in gms], dtype=np.int64)
    code, size = codes[part], sizes[part]
    seq = _rank_in(part, g)
    month = np.concatenate(months) if months else np.zeros(0, dtype=np.int64)
    first, dim = _months_of(year)
    begin = first[month] + (d.u("begin") * dim[month]).astype(np.int64)

    cells = _pick(_cdf("joint"), d.u("cell"))
    role = d.u("role")
    repeat_share = calibration()["repeat_use_share_of_started"]["value"]
    is_repeat = role < repeat_share
    is_companion = (role >= repeat_share) & (role < repeat_share + pm["companion_share"])
    person, birth, girl = _new_persons(d, seed, code.copy(), size, scale, begin, m.band_given_hulpvorm[cells // nv])
    origin = code.copy()
    oorsprong = np.zeros(n, dtype=np.int64)

    # Repeat users: a youth under 18 who had care here in the recent past.
    rep = np.nonzero(is_repeat)[0]
    if hist is not None and len(rep):
        jan1 = _day(f"{year}-01-01")
        ok = (hist["begin"] >= jan1 - int(pm["repeat_recent_months"] * DAYS_PER_MONTH)) & (
            hist["birth"] > jan1 - int(18 * 365.25))
        cand = np.nonzero(ok)[0]
        # issue 12: weighted by how the care form's age pattern favours the candidate's age band
        pick = domains.pick_by_age(d.u("repeat")[rep], (jan1 + 182 - hist["birth"][cand]) / 365.25, hist["part"][cand],
                                   cells[rep] // nv, part[rep], g)
        rep, pick = rep[pick >= 0], cand[pick[pick >= 0]]
        for name, arr in (("person", person), ("birth", birth), ("girl", girl), ("origin", origin)):
            arr[rep] = hist[name][pick]
        oorsprong[rep] = 1
        # a repeat start cannot lie before the youth's birth (only possible with tiny pools)
        begin[rep] = np.maximum(begin[rep], birth[rep] + 1)
    # Companions: a second trajectory next to a new one, same youth and start date.
    comp = np.nonzero(is_companion)[0]
    fresh = np.nonzero((oorsprong == 0) & ~is_companion)[0]
    if len(comp):
        host = domains.pick_by_age(d.u("host")[comp], (begin[fresh] - birth[fresh]) / 365.25, part[fresh],
                                   cells[comp] // nv, part[comp], g)
        comp, host = comp[host >= 0], fresh[host[host >= 0]]
        for arr in (person, birth, girl, origin, begin):
            arr[comp] = arr[host]
        oorsprong[comp] = 2

    choice = _choice_cdfs(seed, regio)
    product = _products(d, "", cells, (begin - birth) / 365.25, girl)
    aanbieder = _aanbieders(d, "", choice, cells, product)
    end = begin + _durations(d, "", cells) - 1
    cat, reden = _end_reasons(d, "")
    # a youth who would switch provider at 23 or older leaves youth care instead (uitstroom naar ander domein)
    reden[(reden == 38) & (end + 1 - birth >= int(23 * 365.25))] = 39
    planned = _planned_end(d, "", end, cat)
    age_at_begin = (begin - birth) / 365.25
    is_jw315 = domains.jw315_cell()[cells]
    params = _message_params(d, "", product)
    # --- issue 12: triage. The answer to a JW315 follows the documented decision model (synthetic_data/decisions.py)
    regio_index = region_index(regio)
    pr = decisions.probabilities(seed, regio_index, cells, product, aanbieder, age_at_begin, girl,
                                 decisions.requested_months(begin, planned), params["_vol"], oorsprong)
    rejected, reden_afwijzing, params["_onderzoek"] = decisions.decide(d.u("decide"), pr)
    rejected &= is_jw315
    out = {
        "year": np.full(n, year), "seq": seq, "follow_up": np.zeros(n, dtype=bool), "gemeente": code, "part": part,
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
    parts = [out]
    jbjr = domains.domain_starts(seed, scale, gms, year, out)   # issue 12: JB/JR trajectories, own stream
    if jbjr is not None:
        # a JB/JR maatregel is never decided by the gemeente's request model: its answer probabilities are 0
        n_j = len(jbjr["begin"])
        parts.append({c: jbjr[c] if c in jbjr else np.zeros(n_j) for c in out})
    if len(sw):
        parts.append(_follow_ups(d.take(sw), seed, choice, regio_index, {c: out[c][sw] for c in out}, sw))
    return parts


def _follow_ups(f: _Draws, seed: int, choice: dict, regio_index: int, base: dict, sw: np.ndarray) -> dict:
    """The trajectories that go on at another aanbieder the day after a provider switch (rows `sw` of the batch,
    their base columns and draws `f`)."""
    m = model()
    k = len(sw)
    new_aanbieder = _aanbieders(f, "f_", choice, base["cell"], base["product"])
    for i in np.nonzero(new_aanbieder == base["aanbieder"])[0]:   # few rows: the next provider of that care form
        idx = choice.get(domains.care_key(m.hulpvormen[base["cell"][i] // len(m.verwijzers)], base["product"][i]),
                         (np.array([]),))[0]
        if len(idx) > 1:
            new_aanbieder[i] = idx[(np.searchsorted(idx, new_aanbieder[i]) + 1) % len(idx)]
    f_begin = base["end"] + 1
    f_end = f_begin + _durations(f, "f_", base["cell"]) - 1
    f_cat, f_reden = _end_reasons(f, "f_", no_switch=True)
    f_planned = _planned_end(f, "f_", f_end, f_cat)
    f_params = _message_params(f, "f_", base["product"])
    # a follow-up's request is granted, possibly after onderzoek (issue 12: triage)
    f_pr = decisions.probabilities(seed, regio_index, base["cell"], base["product"], new_aanbieder,
                                   (f_begin - base["birth"]) / 365.25, base["girl"],
                                   decisions.requested_months(f_begin, f_planned), f_params["_vol"], np.full(k, 3))
    _, _, f_params["_onderzoek"] = decisions.decide(f.u("f_decide"), f_pr)
    return {
        **base, "follow_up": np.ones(k, dtype=bool), "aanbieder": new_aanbieder,
        "begin": f_begin, "end": f_end, "planned_end": f_planned, "einde_cat": f_cat, "reden": f_reden,
        "oorsprong": np.full(k, 3), "rejected": np.zeros(k, dtype=bool), "reden_afwijzing": np.zeros(k, dtype=np.int64),
        **f_params, "_p_afwijzing": f_pr["p_afwijzing"], "_p_onderzoek": f_pr["p_onderzoek"],
    }


@cache
def _region_gemeenten(regio: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gemeenten of an inkoopregio in table order: codes, codes as integers, youth 0-19."""
    g = gemeenten_all().filter(pl.col("inkoopregio") == regio)
    return (g["gemeente_code"].to_numpy(), g["gemeente_code"].cast(pl.Int64).to_numpy(),
            (g["jeugd_0_14"] + g["jeugd_15_19"]).to_numpy())


@cache
def _peers(origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Other gemeenten of the origin's inkoopregio and their youth 0-19 (move destinations and weights)."""
    codes, codes_i, youth = _region_gemeenten(_gemeente(origin)["inkoopregio"])
    other = codes != origin
    return codes_i[other], youth[other]


@cache
def _ijw_cells_p() -> np.ndarray:
    m = model()
    nv = len(m.verwijzers)
    ijw = np.array([m.in_ijw_hulpvorm[c // nv] and m.path[c % nv] != "none" for c in range(len(m.joint))])
    pj = np.where(ijw, m.joint, 0.0)
    return pj / pj.sum()


_MOVE_ONE = {"dur_bin": 1, "dur": 1, **_END_U, **_PLAN_U, "msg": _N_UNIFORM}
_MOVE_U = _Draws.layout({"dest": 1, "move": 1, "back": 1, "cell": 1, **_PERSON_U, "product": 1, "aanbieder": 1,
                         "lta": 1, "o_msg": _N_UNIFORM, "o_overrun": 1, **{"d_" + k: v for k, v in _MOVE_ONE.items()}})
_MOVE_Z = _Draws.layout({"o_msg": _N_NORMAL, "d_msg": _N_NORMAL})


def move_streams(seed: int, scale: float, origins: list[str], year: int) -> dict[str, np.ndarray] | None:
    """Youth in care who move from each of `origins` (one inkoopregio) to another gemeente of it during `year`.

    Returns both halves as numpy columns: the trajectory that ends at the move in the origin (half 0) and the one
    that starts the next day in the destination (half 1). Each origin's rows come from its own stream (seed, origin,
    year), so any partition can recompute them.
    """
    pm, m = model().params, model()
    prevalence = calibration()["prevalence_lt23"]["value"]
    rngs, dests, gms = [], [], []
    for o in origins:
        peers, w = _peers(o)
        if not len(peers):
            continue
        rng = _rng(seed, int(o), year, _MOVE_STREAM)
        gm = _gemeente(o)
        # issue 12: youth in care in the origin follow its prevalence
        n = int(rng.poisson(pm["move_share_per_year"] * prevalence * prevalence_factors()[o] * gm["youth"] * scale))
        if n:
            rngs.append((rng, n))
            dests.append((peers, np.cumsum(w) / w.sum()))
            gms.append(gm)
    if not rngs:
        return None
    d = _Draws.draw(rngs, _MOVE_U, _MOVE_Z)
    part = np.repeat(np.arange(len(rngs)), [n for _, n in rngs])
    origin = np.array([int(gm["gemeente_code"]) for gm in gms], dtype=np.int64)[part]
    size = np.array([gm["cohort_size"] for gm in gms], dtype=np.int64)[part]
    dest = np.zeros(len(part), dtype=np.int64)
    u_dest = d.u("dest")
    for i, (peers, cdf) in enumerate(dests):
        sel = part == i
        dest[sel] = peers[_pick(cdf, u_dest[sel])]
    jan1 = _day(f"{year}-01-01")
    move = jan1 + _uniform_ints(d.u("move"), 0, _day(f"{year + 1}-01-01") - jan1 - 1)
    begin = move - _uniform_ints(d.u("back"), 30, 365)
    # Only care that travels as iJw (the destination takes over a toewijzing) is modelled as moving.
    cells = _pick(_cdf("ijw_cells"), d.u("cell"))
    person, birth, girl = _new_persons(d, seed, origin, size, scale, begin,
                                       m.band_given_hulpvorm[cells // len(m.verwijzers)])
    product = _products(d, "", cells, (begin - birth) / 365.25, girl)
    aanbieder = _aanbieders(d, "", _choice_cdfs(seed, gms[0]["inkoopregio"]), cells, product)
    o_params = _message_params(d, "o_", product)
    d_end = move + _durations(d, "d_", cells)   # the destination trajectory starts at move + 1
    d_cat, d_reden = _end_reasons(d, "d_", no_switch=True)
    d_planned = _planned_end(d, "d_", d_end, d_cat)
    d_params = _message_params(d, "d_", product)
    lo, hi = pm["planned_overrun_months"]
    o_planned = move + (_uniform_ints(d.u("o_overrun"), lo, hi) * DAYS_PER_MONTH).astype(np.int64)
    # a youth of 23 or older cannot start Jeugdwet care in the new gemeente: those do not move within the stream
    keep = np.nonzero((move + 1 - birth) < int(23 * 365.25))[0]
    dest, move, begin, cells, person, birth, girl, product, aanbieder, origin, part = (
        a[keep] for a in (dest, move, begin, cells, person, birth, girl, product, aanbieder, origin, part))
    d_end, d_cat, d_reden, d_planned, o_planned = (a[keep] for a in (d_end, d_cat, d_reden, d_planned, o_planned))
    o_params = {k: v[keep] for k, v in o_params.items()}
    d_params = {k: v[keep] for k, v in d_params.items()}
    n = len(keep)
    seq = _rank_in(part, len(rngs))
    both = lambda a, b: np.concatenate([a, b])  # noqa: E731
    twice = lambda a: np.concatenate([a, a])    # noqa: E731
    return {
        "half": np.repeat([0, 1], n), "year": np.full(2 * n, year), "seq": twice(seq),
        "origin": twice(origin), "gemeente": both(origin, dest), "dest": twice(dest),
        "person": twice(person), "birth": twice(birth), "girl": twice(girl), "cell": twice(cells),
        "product": twice(product), "aanbieder": twice(aanbieder), "begin": both(begin, move + 1),
        "end": both(move, d_end), "planned_end": both(o_planned, d_planned),
        "einde_cat": both(np.full(n, -1), d_cat), "reden": both(np.full(n, 35), d_reden),
        **{k: both(o_params[k], d_params[k]) for k in o_params},
    }


@cache
def _region_moves(seed: int, scale: float, regio: str, last_year: int) -> dict[str, np.ndarray] | None:
    """All move streams of an inkoopregio up to `last_year` (numpy columns), computed once per process."""
    peers = gemeenten_all().filter(pl.col("inkoopregio") == regio)["gemeente_code"].to_list()
    first = model().params["epoch_year"]
    parts = [move_streams(seed, scale, peers, y) for y in range(first, last_year + 1)]
    parts = [d for d in parts if d is not None]
    if not parts:
        return None
    c = {k: np.concatenate([d[k] for d in parts]) for k in parts[0]}
    for a in c.values():
        a.flags.writeable = False   # cached: shared by every later call
    return c


def _avoid_stacking(seed: int, regio: str, cols: dict[str, np.ndarray], passes: int = 6) -> np.ndarray:
    """No gestapelde toewijzing (OP259): a youth's care with the same product at the same aanbieder may not overlap.

    A repeat or companion trajectory that would overlap moves to the next aanbieder of its care form; what still
    overlaps after a few passes (a care form with very few providers) is not simulated. `cols` (numpy columns) may
    hold several gemeenten of the inkoopregio: each is handled on its own (the gemeente is part of every key).
    Changes `cols["aanbieder"]` in place and returns the positions of the rows dropped. Numpy on index arrays: the
    frame operations on the whole history cost several times more.
    """
    m = model()
    nv = len(m.verwijzers)
    choice = _choice_cdfs(seed, regio)   # its pool indices are those of domains.all_choices
    gm, origin, person, product = cols["gemeente"], cols["origin"], cols["person"], cols["product"]
    begin, tk = cols["begin"], cols["_traject_key"]
    aanbieder = cols["aanbieder"]
    # Only a youth with the same product more than once can stack, whatever the aanbieder: work on those rows.
    maybe = np.nonzero(cols["in_ijw"] & ~cols["rejected"])[0]
    youth_keys = [gm[maybe], origin[maybe], person[maybe], product[maybe]]
    packed = pack(youth_keys)
    if len(packed) == 1:   # one hashed column: the duplicates and their group ranks
        packed = packed[0]
        dup = pl.Series(packed).is_duplicated().to_numpy()
        sub = maybe[dup]
        group = np.unique(packed[dup], return_inverse=True)[1].astype(np.int64)
    else:
        o = np.lexsort(youth_keys[::-1])
        same = np.zeros(len(o), dtype=bool)
        same[1:] = np.logical_and.reduce([k[o][1:] == k[o][:-1] for k in youth_keys])
        dup = same.copy()
        dup[:-1] |= same[1:]
        sub = maybe[o[dup]]
        group = (np.cumsum(~same) - 1)[dup]
    # the toewijzing can run past an early end until the gemeente shortens it: use its unshortened end
    end = cols["end"][sub]
    tw_end = np.minimum(cols["planned_end"][sub], begin[sub] + 365 * ((end - begin[sub]) // 365 + 1) - 1)
    s_product, s_begin, s_aanbieder = product[sub], begin[sub], aanbieder[sub].copy()
    tk_rank = np.empty(len(sub), dtype=np.int64)   # the traject key is unique: the order is total
    tk_rank[np.argsort(tk[sub])] = np.arange(len(sub))
    flags = np.zeros(0, dtype=bool)
    order = np.arange(len(sub))
    for _ in range(passes):
        # by youth and product (group), aanbieder, begin, traject key
        key = pack([group, s_aanbieder, s_begin, tk_rank])
        order = np.argsort(key[0]) if len(key) == 1 else np.lexsort((tk_rank, s_begin, s_aanbieder, group))
        g_o, a_o = group[order], s_aanbieder[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (g_o[1:] != g_o[:-1]) | (a_o[1:] != a_o[:-1])
        # stacked: the begin lies before the latest toewijzing end of the earlier rows of its key group
        run_max = running_max(tw_end[order], first)
        flags = np.zeros(len(order), dtype=bool)
        flags[1:] = ~first[1:] & (s_begin[order][1:] <= run_max[:-1])
        rows = order[np.nonzero(flags)[0]]
        if not len(rows):
            break
        cells = cols["cell"][sub[rows]]
        care = np.array([domains.care_key(m.hulpvormen[c // nv], p) for c, p in zip(cells, s_product[rows])])
        for ck in np.unique(care):   # few rows: the next provider of the same care form
            r = rows[care == ck]
            idx = choice[ck][0]
            s_aanbieder[r] = idx[(np.searchsorted(idx, s_aanbieder[r]) + 1) % len(idx)]
    aanbieder[sub] = s_aanbieder
    return sub[order[flags]] if len(flags) else np.zeros(0, dtype=np.int64)


def _history(seed: int, scale: float, codes: list[str], last_year: int) -> list[dict[str, np.ndarray]]:
    """The numpy columns of every start of the gemeenten `codes` (one inkoopregio) from the epoch to `last_year`: a
    batch per year over all of them, each partition from its own streams. Returned as chunks in order (their
    concatenation is the history), so that only the columns and rows needed are ever joined."""
    p = model().params
    gms = [_gemeente(c) for c in codes]
    chunks, hist = [], None
    keep_months = int(p["repeat_recent_months"] * DAYS_PER_MONTH)
    for year in range(p["epoch_year"], last_year + 1):
        parts = _year_starts(seed, scale, gms, year, hist)
        chunks.extend(parts)
        ok = ~np.concatenate([q["rejected"] for q in parts])
        new = {c: np.concatenate([q[c] for q in parts])[ok] for c in ("origin", "person", "birth", "girl", "begin", "part")}
        if hist is not None:   # keep only the recent past as candidates for repeat use
            recent = hist["begin"] >= _day(f"{year}-01-01") - keep_months
            new = {c: np.concatenate([hist[c][recent], new[c]]) for c in new}
        order = np.argsort(new["part"], kind="stable")   # by partition, each in its own order of arrival
        hist = {c: v[order] for c, v in new.items()}
    for q in chunks:
        del q["part"]
    return chunks


# The columns the stacking check and the numbering read on the whole history (the others are gathered only for the
# rows kept).
_KEY_COLUMNS = ("gemeente", "origin", "person", "product", "aanbieder", "cell", "begin", "end", "planned_end",
                "_req_lead", "in_ijw", "rejected", "_traject_key")


def _simulate_region(seed: int, scale: float, regio: str, codes: list[str], first_year: int,
                     last_year: int) -> pl.DataFrame:
    """`simulate_gemeente` for several gemeenten of one inkoopregio at once: the numpy draws per gemeente (its own
    streams), the frame work once for all of them, every step keyed or grouped by gemeente. The whole history is
    handled as numbers; the identifiers and codes as strings are built only for the rows kept."""
    m = model()
    frames = _history(seed, scale, codes, last_year)
    for own in frames:
        own["kind"] = own.pop("follow_up").astype(np.int64)   # 0 own start, 1 follow-up (traject id "-S")
        own["orig_key"] = np.zeros(len(own["kind"]), dtype=np.int64)
    moves = _region_moves(seed, scale, regio, last_year)
    if moves is not None:
        codes_i = np.array([int(c) for c in codes], dtype=np.int64)
        sel = np.nonzero(np.where(moves["half"] == 0, np.isin(moves["origin"], codes_i), np.isin(moves["dest"], codes_i)))[0]
        mv = {k: v[sel] for k, v in moves.items()}
        half = mv.pop("half")
        n = len(half)
        mv.update({"kind": 2 + half, "orig_key": np.where(half == 1, mv["origin"], 0),
                   "oorsprong": np.where(half == 1, OORSPRONG.index("verhuizing"), 0),
                   "rejected": np.zeros(n, dtype=bool), "reden_afwijzing": np.zeros(n, dtype=np.int64)})
        frames.append(mv)
    ws, we = _day(f"{first_year}-01-01"), _day(f"{last_year}-12-31")
    nv = len(m.verwijzers)
    ijw_cell = np.array([bool(m.in_ijw_hulpvorm[c // nv]) and m.path[c % nv] != "none" for c in range(len(m.joint))])
    for f in frames:   # numpy on the columns before the frame: polars' filter and replace_strict cost more here
        ok = f["begin"] <= we
        if not ok.all():
            ok = np.nonzero(ok)[0]
            for c in list(f):
                f[c] = f[c][ok]
        f["in_ijw"] = ijw_cell[f["cell"]] & (f["product"] >= 0)
        f["_traject_key"] = _traject_key(f["gemeente"], f["year"], f["kind"], f["orig_key"], f["seq"])
    # The chunks (own starts per year, then moves) as one table: the key columns joined, the stacking check on them,
    # and a frame only of the rows kept, gathered from the chunks (a column a chunk lacks is null there).
    names = list(frames[0]) + [c for f in frames[1:] for c in f if c not in frames[0]]
    lens = [len(f["begin"]) for f in frames]
    cols = {c: np.concatenate([f[c] for f in frames]) for c in _KEY_COLUMNS}
    dropped = _avoid_stacking(seed, regio, cols)
    alive = np.ones(len(cols["begin"]), dtype=bool)
    alive[dropped] = False
    alive = np.nonzero(alive)[0]
    # Counted in order of start within the gemeente, so a trajectory keeps its count whichever years are generated.
    # The count stays internal (`_tw_seq`, the key of per-line hashes); the ToewijzingNummer is its keyed bijection,
    # unique in the gemeente but free of order. The count needs the whole history; the rows kept are those that
    # touch the years asked for, so the order, the count and the filter are computed on a few columns and only the
    # kept rows are gathered (and numbered).
    row = alive[np.lexsort((cols["_traject_key"][alive], cols["begin"][alive], cols["gemeente"][alive]))]
    gm = cols["gemeente"][row]
    rejected = cols["rejected"][row]
    given = cols["in_ijw"][row] & ~rejected
    req_date = cols["begin"][row] - cols["_req_lead"][row]
    keep = (~rejected & (cols["end"][row] >= ws)) | (rejected & (req_date >= ws) & (req_date <= we))
    counts = np.cumsum(given, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, gm[1:] != gm[:-1]]) if len(gm) else np.zeros(0, dtype=np.int64)
    group = np.cumsum(np.r_[True, gm[1:] != gm[:-1]]) - 1 if len(gm) else np.zeros(0, dtype=np.int64)
    counts -= (counts[starts] - given[starts])[group]   # count within the gemeente
    take = row[keep]
    off = np.cumsum([0] + lens)
    chunk = np.searchsorted(off, take, side="right") - 1
    where = [np.nonzero(chunk == i)[0] for i in range(len(frames))]
    local = [take[w] - off[i] for i, w in enumerate(where)]
    out = {}
    for c in names:
        name = "person_index" if c == "person" else c
        if c in cols:
            out[name] = pl.Series(name, cols[c][take])
            continue
        have = [f.get(c) for f in frames]
        v = np.empty(len(take), dtype=np.result_type(*[h.dtype for h in have if h is not None]))
        for h, w, li in zip(have, where, local):
            if h is not None:
                v[w] = h[li]
        if all(h is not None for h in have):
            out[name] = pl.Series(name, v)
        else:   # null where the chunk lacks the column
            valid = np.zeros(len(take), dtype=bool)
            for h, w in zip(have, where):
                valid[w] = h is not None
            v[~valid] = 0
            out[name] = pl.select(pl.when(pl.Series(valid)).then(pl.Series(v))).to_series().alias(name)
    df = pl.DataFrame(out).with_columns(
        pl.when(pl.Series(given[keep])).then(pl.Series(_TW_SEQ_BASE + counts[keep])).alias("_tw_seq")
    )
    lo, hi = TOEWIJZING_NUMMER_RANGE
    seq = df["_tw_seq"]
    has = seq.is_not_null().to_numpy()
    nummer = np.zeros(df.height, dtype=np.int64)
    nummer[has] = lo + opaque_number(seed, D_TOEWIJZING, seq.drop_nulls().to_numpy() - _TW_SEQ_BASE - 1,
                                     df["gemeente"].to_numpy()[has], size=hi - lo)
    # The ReferentieAanbieder a JW315 of this trajectory would carry: a keyed bijection of the traject id.
    ref = opaque_code(opaque_number(seed, D_VERZOEK, df["_traject_key"].to_numpy(), size=10 ** REFERENTIE_AANBIEDER[1]),
                      REFERENTIE_AANBIEDER)
    code = lambda c: pl.col(c).cast(pl.String).str.zfill(4)  # noqa: E731
    kind, seq = pl.col("kind"), pl.col("seq").cast(pl.String)
    g, o, d, year = pl.col("_g"), pl.col("_o"), pl.col("_d"), pl.col("_y")
    # the codes as strings once, then the traject id as one concatenation of per-row pieces
    return df.with_columns(code("gemeente").alias("_g"), code("origin").alias("_o"), code("dest").alias("_d"),
                           pl.col("year").cast(pl.String).alias("_y")).with_columns(
        # the traject id: own start GGGG-YYYY-SSSSSS (a follow-up "-S"), move out OOOO-YYYY-MSSSSS, move in
        # DDDD-YYYY-VOOOOSSSSS
        pl.concat_str(pl.when(kind <= 1).then(g).when(kind == 2).then(o).otherwise(d), pl.lit("-"), year,
                      pl.when(kind <= 1).then(pl.lit("-")).when(kind == 2).then(pl.lit("-M")).otherwise(pl.lit("-V") + o),
                      pl.when(kind <= 1).then(seq.str.zfill(6)).otherwise(seq.str.zfill(5)),
                      pl.when(kind == 1).then(pl.lit("-S")).otherwise(pl.lit(""))).alias("traject_id"),
        g.alias("gemeente_code"), o.alias("origin_code"),
        pl.when(kind >= 2).then(d).alias("dest"),
        pl.col("reden").cast(pl.String).str.zfill(2).alias("reden_beeindiging"),
        pl.col("oorsprong").replace_strict(dict(enumerate(OORSPRONG)), return_dtype=pl.String),
        pl.col("reden_afwijzing").cast(pl.String).replace("0", ""),
        pl.col("einde_cat").cast(pl.Int64),
        pl.when(pl.col("_tw_seq").is_not_null()).then(pl.Series(nummer)).alias("toewijzing_nummer"),
        ref.alias("_ref_aanbieder"),
    ).drop("_traject_key", "kind", "orig_key", "year", "seq", "gemeente", "origin", "reden", "_g", "_o", "_d", "_y")


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
