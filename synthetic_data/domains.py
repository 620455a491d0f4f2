"""Care domains beyond the CBS jeugdhulp hulpvormen (issue 12): jeugdbescherming (48) and jeugdreclassering (47) by a
gecertificeerde instelling, crisis (46, short and often backdated), vervoer (42A03, a second ToegewezenProduct next to
dagbehandeling) and landelijk ingekochte zorg (55, aspecifiek with a Budget, at aanbieders outside the inkoopregio).

The parameters are in care_model.yaml (`domains`, with a source or "estimate" line each); the shares are calibration
targets (calibration.yaml `share_of_youth_in_care_*`). JB/JR starts use their own numpy stream per (seed, gemeente,
year); per-row draws after the simulation use keyed hashes (tags 350-399).
"""
from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from .model import AGE_BANDS, DAYS_PER_MONTH, model, product_weights
from .privacy import AGB_AANBIEDER_PREFIX, D_TOEWIJZING, TOEWIJZING_NUMMER_RANGE, keyed_uniform, opaque_number
from .providers import aanbieder_choice, aanbieders, region_index
from .reference import care_model, gemeenten_all, producten_catalogus

# keyed-hash tags of this module (350-399): vervoer 350, crisis 352-355, aanbieder weights 356, further second
# products 360+, their volumes 370+; 351 keys the numpy stream of the JB/JR starts
H_VERVOER, H_DOMAIN_STREAM, H_CRISIS, H_AANBIEDER, H_SECOND, H_SECOND_VOL = 350, 351, 352, 356, 360, 370
_DOMAIN_SEQ = 500_000                      # JB/JR trajectories count from here in their (gemeente, year)
_SECOND_SEQ = 7_000_000   # `_tw_seq` offset of a second product (keys of its claim lines; flows.SEQ_OFFSET is 5M)
_GI_K, _LANDELIJK_K = 9000, 9500           # AGB sequence numbers of the appended aanbieders (98RRKKKK)
_BAND_EDGES = np.array([b[0] for b in AGE_BANDS.values()][1:])
CRISIS, VERVOER, LANDELIJK = "46", "42A03", "55"


def _dm() -> dict:
    return care_model()["domains"]


# ------------------------------------------------------------------------------------------------------ aanbieders

@cache
def extra_aanbieders(seed: int, regio: str) -> pl.DataFrame:
    """Gecertificeerde instellingen and national (LTA) aanbieders appended to the region's pool, after its own rows."""
    dm = _dm()
    ri = region_index(regio)
    inside = set(gemeenten_all().filter(pl.col("inkoopregio") == regio)["gemeente_naam"].to_list())
    places = [p for p in dm["landelijk_vestigingen"] if p not in inside]
    first = aanbieders(seed, regio)["vestiging"][0]
    n_gi, n_l = dm["gi_per_regio"], dm["landelijk_per_regio"]
    gi = [f"Gecertificeerde Instelling Jeugdbescherming {regio}" if k == 0 else f"Jeugdbescherming en Reclassering {first}"
          for k in range(n_gi)]
    w = keyed_uniform(seed, H_AANBIEDER, ri, np.arange(n_gi + n_l))
    return pl.DataFrame({
        "agb_code": [f"{AGB_AANBIEDER_PREFIX}{ri:02d}{_GI_K + k:04d}" for k in range(n_gi)]
        + [f"{AGB_AANBIEDER_PREFIX}{ri:02d}{_LANDELIJK_K + k:04d}" for k in range(n_l)],
        "naam": gi + [f"Landelijk Expertisecentrum Jeugd {places[k % len(places)]}" for k in range(n_l)],
        "soort": ["gecertificeerde_instelling"] * n_gi + ["landelijk"] * n_l,
        "vestiging": [first] * n_gi + [places[k % len(places)] for k in range(n_l)],
        "inkoopregio": regio,
        "hulpvormen": ["jeugdbescherming,jeugdreclassering"] * n_gi + ["landelijk"] * n_l,
        "_gewicht": 0.5 + w,
        "landelijk": [False] * n_gi + [True] * n_l,
    })


def pool(seed: int, regio: str) -> pl.DataFrame:
    """The region's whole aanbieder pool: its own (position = the simulation's aanbieder index), then the extra ones."""
    return pl.concat([aanbieders(seed, regio).with_columns(pl.lit(False).alias("landelijk")),
                      extra_aanbieders(seed, regio)], how="diagonal_relaxed")


@cache
def domain_choice(seed: int, regio: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """JB/JR hulpvorm or 'landelijk' -> (pool indices, probabilities), indices after the region's own aanbieders."""
    off = aanbieders(seed, regio).height
    extra = extra_aanbieders(seed, regio)
    out = {}
    for key in ("jeugdbescherming", "jeugdreclassering", "landelijk"):
        idx = np.nonzero(extra["hulpvormen"].str.split(",").list.contains(key).to_numpy())[0]
        w = extra["_gewicht"].to_numpy()[idx]
        out[key] = (idx + off, w / w.sum())
    return out


def care_key(hulpvorm: str, product: int) -> str:
    """The key of `all_choices` for a trajectory: landelijk ingekochte zorg stays with the national aanbieders."""
    return "landelijk" if _category_mask(LANDELIJK)[product] else hulpvorm


def all_choices(seed: int, regio: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {**aanbieder_choice(seed, regio), **domain_choice(seed, regio)}


# ------------------------------------------------------------------------------------------ products by age and sex

def age_band(age_years: np.ndarray) -> np.ndarray:
    return np.searchsorted(_BAND_EDGES, age_years, side="right")


def pick_in_partition(u: np.ndarray, w: np.ndarray, cand_part: np.ndarray, row_part: np.ndarray, n_parts: int,
                      uniform_if_flat: bool = True) -> np.ndarray:
    """Per row, a position in the candidates of its own partition drawn with weights `w` (inverse cdf of the
    partition's segment of the cumulative weights, given one uniform `u` per row); the candidates are ordered by
    partition. Where all of a partition's weights are zero: uniform over its candidates, or -1 with
    `uniform_if_flat=False`; -1 where the partition has no candidate. One vectorised pass over a batch of partitions,
    each row's pick depending on its own partition only."""
    counts = np.bincount(cand_part, minlength=n_parts)
    end = np.cumsum(counts)
    lo, hi = (end - counts)[row_part], end[row_part]
    cw = np.concatenate([[0.0], np.cumsum(w, dtype=np.float64)])
    base = cw[lo]
    total = cw[hi] - base
    pos = np.clip(np.searchsorted(cw, base + u * total, side="right") - 1, lo, np.maximum(hi - 1, lo))
    flat = total <= 0
    if uniform_if_flat:
        pos = np.where(flat, lo + (u * (hi - lo)).astype(np.int64), pos)
    return np.where((hi > lo) & (uniform_if_flat | ~flat), pos, -1)


def pick_by_age(u: np.ndarray, cand_age: np.ndarray, cand_part: np.ndarray, row_hv: np.ndarray, row_part: np.ndarray,
                n_parts: int) -> np.ndarray:
    """Positions in the candidates (repeat users, hosts of a companion) of each row's own partition for rows of care
    forms `row_hv`: weighted by P(band | hulpvorm) / P(band), so the care form's age pattern shows while the
    candidates' own age mix is kept overall (the band shares of model().band_given_hulpvorm average to P(band));
    -1 where the row's partition has no candidate."""
    ratio = _band_ratio()
    band = age_band(cand_age)
    out = np.full(len(row_hv), -1, dtype=np.int64)
    for h in np.unique(row_hv):
        rows = np.nonzero(row_hv == h)[0]
        out[rows] = pick_in_partition(u[rows], ratio[h, band], cand_part, row_part[rows], n_parts)
    return out


@cache
def _band_ratio() -> np.ndarray:
    m = model()
    return m.band_given_hulpvorm / m.age_p[None, :]


_AGE_YEARS = (-1, 40)   # whole years of age the product tables cover; any age outside draws as its nearest end


@cache
def _product_cdfs(h: str) -> np.ndarray:
    """Per whole year of age (from _AGE_YEARS[0]) and sex (0 boy, 1 girl): the unnormalised cumulative product weights
    of hulpvorm `h`, zero outside the product's age limits. The band is a function of the whole years (the band edges
    are whole years), and no product's limits reach the ends of _AGE_YEARS, so clipping the age to them is exact."""
    pw = product_weights()[h]
    years = np.arange(*_AGE_YEARS)
    band = age_band(years.astype(float))
    out = np.zeros((len(years), 2, len(pw["p"])))
    for girl in (0, 1):
        w = (pw["girl_w"] if girl else pw["boy_w"]).T[band]
        w = np.where((years[:, None] >= pw["lo"][None, :]) & (years[:, None] <= pw["hi"][None, :]), w, 0.0)
        empty = w.sum(1) == 0
        w[empty] = pw["p"]         # defensive: never happens with the shipped catalogue (a test checks the limits)
        out[:, girl] = np.cumsum(w, 1)
    out.flags.writeable = False
    return out


def draw_products(u: np.ndarray, h: str, age_years: np.ndarray, girl: np.ndarray) -> np.ndarray:
    """Product index per row of hulpvorm `h` given age, sex and one uniform per row: weights per band and sex, zero
    outside the product's age limits (every hulpvorm keeps a product open to all ages, so a row always has one)."""
    pw = product_weights()[h]
    years = np.clip(np.floor(age_years), _AGE_YEARS[0], _AGE_YEARS[1] - 1).astype(np.int64) - _AGE_YEARS[0]
    cdf = _product_cdfs(h)[years, np.asarray(girl, dtype=np.int64)]
    u = u * cdf[:, -1]
    return pw["index"][np.minimum((cdf < u[:, None]).sum(1), cdf.shape[1] - 1)]


@cache
def _product_attr() -> dict[str, np.ndarray]:
    cat = producten_catalogus()
    return {"categorie": np.append(cat["product_categorie"].to_numpy(), ""),
            "code": np.append(cat["product_code"].fill_null("").to_numpy(), "")}


@cache
def _category_mask(cat: str) -> np.ndarray:
    """Per product index (and the dummy -1): whether its categorie is `cat` (computed once: comparing strings per
    row costs more than the draws around it)."""
    mask = _product_attr()["categorie"] == cat
    mask.flags.writeable = False
    return mask


def is_category(product: np.ndarray, cat: str) -> np.ndarray:
    return _category_mask(cat)[product]


def product_index(code: str) -> int:
    return int(np.nonzero(_product_attr()["code"] == code)[0][0])


# ------------------------------------------------------------------------------------------- JB / JR trajectories

@cache
def _month_bins(code: str) -> tuple[np.ndarray, np.ndarray]:
    """The duration bins ("lo-hi" months) of a domain product and their cumulative shares, parsed once."""
    spec = _dm()["duration_months"][code]
    bins = np.array([[float(x) for x in k.split("-")] for k in spec])
    return bins, np.cumsum(list(spec.values())) / sum(spec.values())


def _months(u_bin: np.ndarray, u: np.ndarray, code: str) -> np.ndarray:
    """Duration in months of a domain product: its bin from `u_bin`, uniform within the bin from `u`."""
    bins, cdf = _month_bins(code)
    b = np.minimum(np.searchsorted(cdf, u_bin, side="right"), len(cdf) - 1)
    return bins[b, 0] + u * (bins[b, 1] - bins[b, 0])


@cache
def _domain_rate(d: str) -> float:
    """JB/JR starts per youth 0-22 per year so that the youth with the maatregel make the target share of youth in care:
    steady state, youth with it in a year = starts x (1 + mean duration in years)."""
    from .reference import calibration
    cal = calibration()
    pw = product_weights()[d]
    codes = producten_catalogus()["product_code"].to_numpy()[pw["index"]]
    dur = _dm()["duration_months"]
    mean = sum(p * sum((np.mean([float(x) for x in k.split("-")]) * v) for k, v in dur[c].items()) / sum(dur[c].values())
               for c, p in zip(codes, pw["p"])) / 12
    # JB stops at 18 and older youth leave: about a fifth of the nominal duration is cut off (estimate, measured)
    mean *= 0.8
    return cal[f"share_of_youth_in_care_{d}"]["value"] * cal["prevalence_lt23"]["value"] / (1 + mean)


@cache
def _domain_spec() -> dict:
    """Per JB/JR hulpvorm: age band weights, boys' share, referrer codes and shares, as arrays (computed once)."""
    m, dm = model(), _dm()
    out = {}
    for d in m.domain_hulpvormen:
        vp = dm["verwijzer"][d]
        out[d] = {"bands": np.array(dm["age_bands"][d], dtype=float), "boys": float(dm["boys_share"][d]),
                  "vw": np.array([m.verwijzers.index(v) for v in vp]),
                  "vw_p": np.array(list(vp.values()), dtype=float) / sum(vp.values()),
                  "hv": m.hulpvormen.index(d), "rate": _domain_rate(d)}
    return out


@cache
def _domain_layout() -> tuple[dict, dict]:
    """The named per-row draws of a JB/JR stream (simulate._Draws)."""
    from . import simulate as sim
    one = {"hosted": 1, "begin": 1, "host": 1, "host_offset": 1, "band": 1, "age": 1, "sex": 1, "kidx": 1,
           "product": 1, "vw": 1, "aanbieder": 1, "month_bin": 1, "months": 1, "einde": 1, "einde_code": 1,
           "overrun": 1, "earlier": 1, "earlier_days": 1, "msg": sim._N_UNIFORM}
    return sim._Draws.layout(one), sim._Draws.layout({"msg": sim._N_NORMAL})


def domain_starts(seed: int, scale: float, gms: list[dict], year: int,
                  base: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """JB and JR trajectories of the (gemeente, year) partitions of `gms` (one inkoopregio; `base` their jeugdhulp
    starts, ordered by partition `part`): most for youth who start jeugdhulp that year (same person), the rest for
    fresh persons. Own numpy stream per partition, so the jeugdhulp draws do not change; one vectorised pass."""
    from . import simulate as sim
    m, dm, spec = model(), _dm(), _domain_spec()
    nv = len(m.verwijzers)
    doms = list(spec)
    rates = np.array([spec[x]["rate"] for x in doms])
    rngs, dom = [], []
    for gm in gms:
        rng = sim._rng(seed, int(gm["gemeente_code"]), year, H_DOMAIN_STREAM)
        counts = rng.poisson(rates * gm["youth"] * scale)
        rngs.append((rng, int(counts.sum())))
        dom.append(np.repeat(np.arange(len(doms)), counts))
    if not sum(k for _, k in rngs):
        return None
    d = sim._Draws.draw(rngs, *_domain_layout())
    g = len(gms)
    part = np.repeat(np.arange(g), [k for _, k in rngs])
    code = np.array([int(gm["gemeente_code"]) for gm in gms], dtype=np.int64)[part]
    size = np.array([gm["cohort_size"] for gm in gms], dtype=np.int64)[part]
    dom = np.concatenate(dom)
    n = len(dom)
    bands = np.stack([spec[x]["bands"] for x in doms])[dom]
    boys = np.array([spec[x]["boys"] for x in doms])[dom]
    jan1, next1 = sim._day(f"{year}-01-01"), sim._day(f"{year + 1}-01-01")
    hosted = d.u("hosted") < dm["with_jeugdhulp_share"]
    begin = jan1 + sim._uniform_ints(d.u("begin"), 0, next1 - jan1 - 1)
    person = np.zeros(n, dtype=np.int64)
    birth = np.zeros(n, dtype=np.int64)
    girl = np.zeros(n, dtype=bool)
    origin = code.copy()
    oorsprong = np.zeros(n, dtype=np.int64)
    # hosts: fresh jeugdhulp starts of the partition's year, weighted to the maatregel's age bands and sex
    cand = np.nonzero((base["oorsprong"] == 0) & ~base["rejected"] & ~base["follow_up"])[0]
    c_part = base["part"][cand]
    c_band = age_band((base["begin"][cand] - base["birth"][cand]) / 365.25)
    c_girl = base["girl"][cand].astype(int)
    # candidates per (partition, band, sex): a bincount (np.add.at is many times slower; counts are exact in float)
    shape = (g, bands.shape[1], 2)
    cnt = np.bincount(np.ravel_multi_index((c_part, c_band, c_girl), shape), minlength=int(np.prod(shape)))
    cnt = cnt.reshape(shape).astype(np.float64)
    for j, x in enumerate(doms):
        h = np.nonzero(hosted & (dom == j))[0]
        if not len(h) or not len(cand):
            continue
        target = spec[x]["bands"][:, None] * np.array([spec[x]["boys"], 1 - spec[x]["boys"]])[None, :]
        w = target[c_band, c_girl] / cnt[c_part, c_band, c_girl]
        pos = pick_in_partition(d.u("host")[h], w, c_part, part[h], g, uniform_if_flat=False)
        h, pick = h[pos >= 0], cand[pos[pos >= 0]]
        person[h], birth[h], girl[h], origin[h] = (base[c][pick] for c in ("person", "birth", "girl", "origin"))
        begin[h] = base["begin"][pick] + sim._uniform_ints(d.u("host_offset")[h], 0, 30)
        oorsprong[h] = 2
    f = np.nonzero(oorsprong == 0)[0]
    if len(f):
        person[f], birth[f], girl[f] = sim._new_persons(d.take(f), seed, code[f], size[f], scale, begin[f],
                                                        bands[f] / bands[f].sum(1, keepdims=True), boy_p=boys[f])
    age = (begin - birth) / 365.25
    is_jr = np.array([x == "jeugdreclassering" for x in doms])[dom]
    keep = np.nonzero(np.where(is_jr, (age >= 12) & (age < 23), (age >= 0) & (age < 17.9)))[0]
    k = len(keep)
    if not k:
        return None
    d = d.take(keep)
    dom, begin, person, birth, girl, origin, oorsprong, age, is_jr, part, code = (
        a[keep] for a in (dom, begin, person, birth, girl, origin, oorsprong, age, is_jr, part, code))
    product = np.zeros(k, dtype=np.int64)
    cells = np.zeros(k, dtype=np.int64)
    aanbieder = np.zeros(k, dtype=np.int64)
    choice = domain_choice(seed, gms[0]["inkoopregio"])
    for j, x in enumerate(doms):
        sel = np.nonzero(dom == j)[0]
        if not len(sel):
            continue
        product[sel] = draw_products(d.u("product")[sel], x, age[sel], girl[sel])
        cells[sel] = spec[x]["hv"] * nv + spec[x]["vw"][sim._pick(sim.cdf_of(spec[x]["vw_p"]), d.u("vw")[sel])]
        idx, p = choice[x]
        aanbieder[sel] = idx[sim._pick(sim.cdf_of(p), d.u("aanbieder")[sel])]
    codes = _product_attr()["code"][product]
    months = np.zeros(k)
    for c in np.unique(codes):
        sel = codes == c
        months[sel] = _months(d.u("month_bin")[sel], d.u("months")[sel], c)
    end = begin + np.maximum(1, (months * DAYS_PER_MONTH).round().astype(np.int64)) - 1
    end = np.where(is_jr, end, np.minimum(end, birth + int(18 * 365.25) - 1))   # a JB maatregel ends at 18
    end = np.maximum(end, begin)
    cat, reden = sim._end_reasons(d, "", no_switch=True)
    return {
        "year": np.full(k, year), "seq": _DOMAIN_SEQ + sim._rank_in(part, g), "follow_up": np.zeros(k, dtype=bool),
        "gemeente": code, "part": part,
        "origin": origin, "person": person, "birth": birth, "girl": girl, "cell": cells, "product": product,
        "aanbieder": aanbieder, "begin": begin, "end": end, "planned_end": sim._planned_end(d, "", end, cat),
        "einde_cat": cat, "reden": reden, "oorsprong": oorsprong, "rejected": np.zeros(k, dtype=bool),
        "reden_afwijzing": np.zeros(k, dtype=np.int64), **sim._message_params(d, "", product),
    }


# ---------------------------------------------------------------------------------------------------------- crisis

@cache
def jw315_cell() -> np.ndarray:
    """Per (hulpvorm, verwijzer) cell: whether its request path is a JW315."""
    m = model()
    nv = len(m.verwijzers)
    return np.array([m.path[c % nv] == "jw315" for c in range(len(m.hulpvormen) * nv)])

def crisis(seed: int, code: np.ndarray, year: int, out: dict[str, np.ndarray]) -> None:
    """Crisis starts (categorie 46): short, never rejected, no provider switch, and mostly backdated: the JW301 (and
    the JW315 before it) comes days after the ingangsdatum, the JW305 after the JW301. Keyed hashes per trajectory."""
    sel = np.nonzero(is_category(out["product"], CRISIS))[0]
    if not len(sel):
        return
    dm = _dm()
    u = [keyed_uniform(seed, H_CRISIS + j, code[sel], year, out["seq"][sel]) for j in range(4)]
    codes = _product_attr()["code"][out["product"][sel]]
    months = np.zeros(len(sel))
    for c in np.unique(codes):
        bins, cdf = _month_bins(c)
        s = codes == c
        b = np.minimum(np.searchsorted(cdf, u[0][s], side="right"), len(cdf) - 1)
        months[s] = bins[b, 0] + u[1][s] * (bins[b, 1] - bins[b, 0])
    begin = out["begin"][sel]
    end = begin + np.maximum(1, (months * DAYS_PER_MONTH).round().astype(np.int64)) - 1
    out["planned_end"][sel] = end + (out["planned_end"][sel] - out["end"][sel])
    out["end"][sel] = end
    out["rejected"][sel] = False
    out["reden"][sel] = np.where(out["reden"][sel] == 38, 31, out["reden"][sel])
    lo, hi = dm["crisis_backdate_days"]
    back = u[2] < dm["crisis_backdated_share"]
    lag = np.where(back, lo + (u[3] * (hi - lo + 1)).astype(np.int64), 0)
    # the JW301 comes in the year care began (a claim line of December needs its toewijzing in the same year's data)
    dec31 = (begin.astype("datetime64[D]").astype("datetime64[Y]") + 1).astype("datetime64[D]").astype(np.int64) - 1
    back &= begin + lag + 10 <= dec31
    lag = np.where(back, lag, 0)
    jw315 = jw315_cell()[out["cell"][sel]]
    out["_tw_lead"][sel] = np.where(back & ~jw315, -lag, out["_tw_lead"][sel])
    out["_req_lead"][sel] = np.where(back & jw315, -lag, out["_req_lead"][sel])
    out["_onderzoek"][sel] = np.where(back, False, out["_onderzoek"][sel])
    # the JW305 stays within 5 werkdagen of the start (OP271 is a WARN rule kept at zero here; lateness is modelled
    # by the message timing)


# -------------------------------------------------------------------------------------- several-product toewijzing

def _second_specs() -> list[dict]:
    """(host product indices, second product index, share, follows host volume) per kind of second product."""
    dm = _dm()
    specs = [{"with": [product_index(c) for c in ("41A00", "41A03")], "product": product_index(VERVOER),
              "share": dm["vervoer_share_of_dagbehandeling"], "follows": True}]
    for sp in dm.get("second_products", []):
        specs.append({"with": [product_index(str(c)) for c in sp["with"]], "product": product_index(str(sp["product"])),
                      "share": float(sp["share"]), "follows": False})
    return specs


def _second_hosts(seed: int, hosts: pl.DataFrame, j: int, sp: dict) -> pl.DataFrame:
    """The rows of `hosts` that get second product kind `j` (spec `sp`) before the stacking checks: a host product,
    the kind's share by a keyed hash of the host's toewijzing, and the second product's age limits."""
    host = hosts.filter(pl.col("product").is_in(sp["with"]))
    if not host.height:
        return host
    gm = host["gemeente_code"].cast(pl.Int64).to_numpy()
    u = keyed_uniform(seed, H_SECOND + j if j else H_VERVOER, gm, host["_tw_seq"].to_numpy())
    years = np.floor((host["begin"] - host["birth"]).to_numpy() / 365.25)
    row = producten_catalogus().row(sp["product"], named=True)
    ok = (u < sp["share"]) & (years >= row["leeftijd_min"]) & (years <= row["leeftijd_max"])
    return host.filter(pl.Series(ok))


def second_products_taken(seed: int, df: pl.DataFrame) -> pl.DataFrame:
    """(gemeente_code, bsn, agb_code, product) of every second product a host in `df` may get (flows.plan_vow does
    not ask a JW317 for a new product the youth gets, or may get, at that aanbieder: it would stack, OP259)."""
    hosts = df.filter(pl.col("in_ijw") & ~pl.col("rejected") & pl.col("_tw_seq").is_not_null())
    parts = [_second_hosts(seed, hosts, j, sp).select("gemeente_code", "bsn", "agb_code",
                                                      pl.lit(sp["product"], dtype=pl.Int64).alias("product"))
             for j, sp in enumerate(_second_specs())]
    return pl.concat(parts).unique()


def with_second_products(seed: int, df: pl.DataFrame, contracts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Second ToegewezenProducten in the same JW301 as a host toewijzing: same client, aanbieder, dates and decision
    time, their own ToewijzingNummer. Vervoer (42A03) goes with dagbehandeling and claims one day per dagdeel of it;
    the other kinds (care_model.yaml `second_products`) claim their own volume. Returns the enriched frame with these
    rows added and the map (gemeente, nummer) -> the host's nummer of the kinds whose claims follow the host."""
    lo, hi = TOEWIJZING_NUMMER_RANGE
    size = hi - lo
    cat = producten_catalogus()
    prod_cols = ["product_categorie", "product_code", "eenheid", "frequentie", "tarief", "levering_min", "levering_max"]
    prod = contracts.select("inkoopregio", pl.col("product_index").cast(pl.Int64).alias("product"), *prod_cols)
    key = ["gemeente_code", "bsn", "agb_code"]
    tw_end = pl.min_horizontal("planned_end", pl.col("begin") + 365 * ((pl.col("end") - pl.col("begin")) // 365 + 1) - 1)
    given = pl.col("in_ijw") & ~pl.col("rejected") & pl.col("_tw_seq").is_not_null()
    # a toewijzing made in answer to a JW317 (synthetic_data.flows, traject id "-W") gets no second product
    hosts = given & ~pl.col("traject_id").str.ends_with("-W")
    extras, follows = [], []
    specs = _second_specs()
    # the host rows of every kind at once (each kind's hosts keep their order in it): one pass over the wide frame
    host_rows = df.filter(hosts & pl.col("product").is_in(sorted({h for sp in specs for h in sp["with"]})))
    for j, sp in enumerate(specs):
        host = _second_hosts(seed, host_rows, j, sp)
        if not host.height:
            continue
        row = cat.row(sp["product"], named=True)
        gm = host["gemeente_code"].cast(pl.Int64).to_numpy()
        seq = host["_tw_seq"].to_numpy() - 1_000_001
        nummer = lo + opaque_number(seed, D_TOEWIJZING, size - 1 - seq - j * 20_000_000, gm, size=size)
        uv = keyed_uniform(seed, H_SECOND_VOL + j, gm, host["_tw_seq"].to_numpy())
        vol = row["volume_min"] + np.floor(uv * (row["volume_max"] - row["volume_min"] + 1)).astype(np.int64)
        extra = host.drop(prod_cols).with_columns(
            pl.col("toewijzing_nummer").alias("_second_of"),
            pl.Series("toewijzing_nummer", nummer, dtype=pl.Int64),
            (pl.col("_tw_seq") + _SECOND_SEQ + j * 2_000_000).alias("_tw_seq"),
            pl.lit(sp["product"], dtype=pl.Int64).alias("product"),
            (pl.min_horizontal("_vol", row["volume_max"]) if sp["follows"] else pl.Series("_vol", vol)).alias("_vol"),
            pl.lit(None, dtype=pl.String).alias("_ref_aanbieder"),
        ).join(prod, on=["inkoopregio", "product"], how="left")
        # no gestapelde toewijzing (OP259): not next to a running toewijzing of the same product at that aanbieder,
        # and of two overlapping hosts only the first gets it. A JW317's new product ("-W") is left out: it exists
        # only when its request's year is generated, and flows.plan_vow never asks one a host gets as second product.
        same = df.lazy().filter(given & (pl.col("product") == sp["product"]) & ~pl.col("traject_id").str.ends_with("-W")).select(
            *key, pl.col("begin").alias("_b"), tw_end.alias("_e")).collect()   # lazy: only these columns are filtered
        clash = extra.select(*key, "toewijzing_nummer", "begin", tw_end.alias("_end")).join(same, on=key).filter(
            (pl.col("_b") <= pl.col("_end")) & (pl.col("begin") <= pl.col("_e")))
        extra = extra.join(clash.select("gemeente_code", "toewijzing_nummer").unique(),
                           on=["gemeente_code", "toewijzing_nummer"], how="anti")
        extra = extra.sort(*key, "begin", "toewijzing_nummer").filter(
            ~(pl.col("begin") <= tw_end.cum_max().shift(1).over(key)).fill_null(False))
        extras.append(extra.select(df.columns + ["_second_of"]))
        if sp["follows"]:
            follows.append(extra.select("gemeente_code", "toewijzing_nummer", "_second_of"))
    if not extras:
        return df, pl.DataFrame(schema={"gemeente_code": pl.String, "toewijzing_nummer": pl.Int64, "_second_of": pl.Int64})
    both = pl.concat([df, *extras], how="diagonal_relaxed")
    second = pl.concat(follows) if follows else pl.DataFrame(
        schema={"gemeente_code": pl.String, "toewijzing_nummer": pl.Int64, "_second_of": pl.Int64})
    return both, second


# --- issue 13: the ProductCode of a claim on an aspecifiek toewijzing (care_model.yaml domains.declaratie_productcode)
def declaratie_productcode() -> dict[str, str]:
    """{product_categorie: the code a claim line of an aspecifiek toewijzing of that categorie declares}."""
    return {str(k): str(v) for k, v in (_dm().get("declaratie_productcode") or {}).items()}


def _declaratie_code(categorie: str = "product_categorie", code: str = "product_code") -> pl.Expr:
    """`code`, or where it is empty the categorie's declaratie code (the contract's code of an aspecifiek product)."""
    m = declaratie_productcode()
    return pl.coalesce(pl.col(code), pl.col(categorie).replace_strict(m, default=None, return_dtype=pl.String))


def with_declaratie_codes(contracts: pl.DataFrame) -> pl.DataFrame:
    """The contract list as the producten table: an aspecifiek product's row names the code its claims carry (TR381
    checks a JW323 ProductCode against this list; the toewijzing itself stays categorie-only)."""
    return contracts.with_columns(_declaratie_code().alias("product_code"))
# --- end issue 13


def finish_lines(lines: pl.DataFrame, second: pl.DataFrame) -> pl.DataFrame:
    """Claim lines of the domains: eenheid 83 (budget) lines claim euro's (IngediendBedrag = GeleverdVolume in
    eurocent, no ProductTarief, CD087) and carry the contract's code of their categorie (JW323 requires a ProductCode;
    issue 13); a vervoer line claims one day per dagbehandeling dagdeel of its host in the same product period (a
    credit equals its debet because both follow the same host volume)."""
    euro = pl.col("eenheid") == "83"
    lines = lines.with_columns(
        pl.when(euro).then(None).otherwise("product_tarief").alias("product_tarief"),
        pl.when(euro).then("geleverd_volume").otherwise("ingediend_bedrag").alias("ingediend_bedrag"),
        pl.when(euro).then(_declaratie_code()).otherwise("product_code").alias("product_code"),   # issue 13
    )
    if not second.height:
        return lines
    # Only the second products' lines change, and only their hosts' debets are read: join those few rows (with
    # their positions) instead of the whole claim table, then write the new volumes back in place (same row order).
    key = ["gemeente_code", "toewijzing_nummer"]
    li = lines.select(*key, "begindatum", "debet_credit", "geleverd_volume", "product_tarief").with_row_index("_i")
    hosts = second.select("gemeente_code", pl.col("_second_of").alias("toewijzing_nummer")).unique()
    # the lines of the second products and of their hosts, found in one pass over the claim table
    li = li.join(pl.concat([second.select(key), hosts]).unique(), on=key, how="semi")
    sec = li.join(second, on=key, how="inner")
    if not sec.height:
        return lines
    host_vol = li.filter(pl.col("debet_credit") == "D").join(hosts, on=key, how="semi").group_by(
        "gemeente_code", pl.col("toewijzing_nummer").alias("_second_of"), "begindatum").agg(
        pl.col("geleverd_volume").max().alias("_host_vol"))
    sec = sec.join(host_vol, on=["gemeente_code", "_second_of", "begindatum"], how="left").select(
        "_i", pl.min_horizontal("geleverd_volume", pl.col("_host_vol").fill_null(0)).alias("_vol"), "product_tarief")
    rows = sec["_i"].to_numpy()
    vol = lines["geleverd_volume"].to_numpy().copy()
    vol[rows] = sec["_vol"].to_numpy()
    bedrag = lines["ingediend_bedrag"].clone().scatter(rows, sec["_vol"] * sec["product_tarief"])
    keep = np.ones(lines.height, dtype=bool)
    keep[rows] = vol[rows] > 0
    return lines.with_columns(pl.Series("geleverd_volume", vol, dtype=pl.Int64), bedrag).filter(pl.Series(keep))
